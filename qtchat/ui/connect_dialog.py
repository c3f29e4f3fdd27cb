"""The connect dialog: server, port, username, recent servers, or host a server on this computer.

It drives a ChatClient itself and stays open until the login succeeds, showing
the server's own words inline when it fails (no cascade of message boxes).

With TLS, a certificate the system cannot verify shows its fingerprint with
"Trust and connect"; a certificate other than the one trusted before shows a
loud error with both fingerprints and only a way to forget the old one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import CertificateProblem, ChatClient, Failure, Reason
from qtchat.client.reasons import login_code
from qtchat.client.settings import ClientSettings
from qtchat.hosting import join_addresses, start_local_server
from qtchat.protocol import MIN_PASSWORD, ErrorCode
from qtchat.protocol.addresses import parse_address, parse_addresses
from qtchat.server import ChatServer
from qtchat.tls import format_fingerprint

from .wording import reason_text

ERROR_COLOR, ERROR_COLOR_DARK = "#c62828", "#ff8a80"  # the dark red is hard to read on a dark window

# refusals about the name: the name field takes the focus; about the password: the password field
NAME_ERRORS = frozenset({ErrorCode.NAME_INVALID, ErrorCode.NAME_RESERVED, ErrorCode.NAME_TAKEN,
                         ErrorCode.NAME_REGISTERED})
PASSWORD_ERRORS = frozenset({ErrorCode.AUTH_REQUIRED, ErrorCode.AUTH_FAILED, ErrorCode.BAD_PASSWORD,
                             ErrorCode.ACCOUNT_REQUIRED})


def grouped_fingerprint(fingerprint: str) -> str:
    """``AB:CD:...`` in two lines of 16 pairs: easy to compare by eye."""
    pairs = format_fingerprint(fingerprint).split(":")
    return "\n".join(":".join(pairs[i:i + 16]) for i in range(0, len(pairs), 16))


class ConnectDialog(QDialog):
    def __init__(self, client: ChatClient, settings: ClientSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.settings = settings
        self.server: ChatServer | None = None  # set when hosting
        self._connecting = False
        self.setWindowTitle("Connect to a qtchat server")

        intro = QLabel("Join a chat server, or host one here so that others on your network can join you.")
        intro.setWordWrap(True)
        self.host = QComboBox()
        self.host.setEditable(True)
        self.host.setAccessibleName("Server")
        self.host.setToolTip("The server's address: a host name or IP address, with :port for another port than "
                             "the one below. A server with several addresses (the nodes of a cluster): list them "
                             "separated by commas, for example chat1.example.org, chat2.example.org:4322, "
                             "[2001:db8::1]:4321. qtchat tries them in turn, and another one if a connection drops.")
        for entry in settings.recent:
            self.host.addItem(entry)
        self.host.setEditText(settings.host)
        line = self.host.lineEdit()
        if line is not None:
            line.setPlaceholderText("host or host:port; several separated by commas")
        self.host.currentTextChanged.connect(self._on_host_text)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(settings.port)
        self.port.setAccessibleName("Port")
        self.user = QLineEdit(settings.user)
        self.user.setMaxLength(32)
        self.user.setPlaceholderText("1-32 characters")
        self.user.setAccessibleName("Username")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("only for a registered name")
        self.password.setAccessibleName("Password")
        self.register = QCheckBox("Register this name with this password")
        self.register.setToolTip("Protects the name: from then on only this password logs in with it")
        self.tls = QCheckBox("&Encrypted (TLS)")
        self.tls.setChecked(settings.tls)
        self.tls.setToolTip("Connect inside TLS: the server must have been started with a certificate.")
        self.hosting = QCheckBox("Host a server on this computer")
        self.hosting.setChecked(settings.hosting)
        self.hosting.toggled.connect(self._on_hosting)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # the server's words, never markup
        self.error.setObjectName("errorLabel")
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        self.error.setStyleSheet(f"#errorLabel {{ color: {ERROR_COLOR_DARK if dark else ERROR_COLOR}; font-weight: bold; }}")
        self.error.hide()
        self.problem: CertificateProblem | None = None
        self._build_certificate_box()

        form = QFormLayout()
        form.addRow("&Server:", self.host)
        form.addRow("&Port:", self.port)
        form.addRow("&Username:", self.user)
        form.addRow("Pass&word:", self.password)
        form.addRow("", self.register)
        form.addRow("", self.tls)
        form.addRow("", self.hosting)
        self.buttons = QDialogButtonBox()
        self.connect_button = self.buttons.addButton("&Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.error)
        layout.addWidget(self.cert_box)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        client.logged_in.connect(self._on_logged_in)
        client.login_failed.connect(self._on_failed)
        client.certificate_unknown.connect(self._on_certificate_unknown)
        client.certificate_changed.connect(self._on_certificate_changed)
        self._on_hosting(self.hosting.isChecked())
        self.port.valueChanged.connect(lambda _: self._on_hosting(self.hosting.isChecked()))
        for changed in (self.host.currentTextChanged, self.user.textChanged, self.hosting.toggled,
                        self.password.textChanged, self.register.toggled, self.port.valueChanged, self.tls.toggled):
            changed.connect(lambda *_: self._clear_errors())  # an old error is not about the new values
        (self.user if self.host.currentText() else self.host).setFocus()

    def _build_certificate_box(self) -> None:
        self.cert_box = QFrame()
        self.cert_box.setFrameShape(QFrame.Shape.StyledPanel)
        self.cert_intro = QLabel()
        self.cert_fingerprint = QLabel()
        self.cert_summary = QLabel()
        for label in (self.cert_intro, self.cert_fingerprint, self.cert_summary):
            label.setTextFormat(Qt.TextFormat.PlainText)  # certificate names are the server's words
            label.setWordWrap(True)
        self.cert_fingerprint.setWordWrap(False)
        self.cert_fingerprint.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.cert_fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cert_fingerprint.setAccessibleName("Certificate fingerprint (SHA-256)")
        self.trust_button = QPushButton("&Trust and connect")
        self.trust_button.clicked.connect(self._trust)
        self.forget_button = QPushButton("&Forget the old certificate\N{HORIZONTAL ELLIPSIS}")
        self.forget_button.clicked.connect(self._ask_forget)
        self.cert_cancel = QPushButton("Cancel")
        self.cert_cancel.clicked.connect(self._clear_errors)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.forget_button)
        buttons.addWidget(self.trust_button)
        buttons.addWidget(self.cert_cancel)
        box = QVBoxLayout(self.cert_box)
        box.addWidget(self.cert_intro)
        box.addWidget(self.cert_fingerprint)
        box.addWidget(self.cert_summary)
        box.addLayout(buttons)
        self.cert_box.hide()
        self._confirm: QMessageBox | None = None

    def _clear_errors(self) -> None:
        self.error.hide()
        self.cert_box.hide()
        self.problem = None

    def _on_host_text(self, text: str) -> None:
        """A recent server chosen: as it was used last (one address: its port goes to the port field). Typed
        text stays as it is: a port in it counts for that address (start() reads it)."""
        if text not in self.settings.recent:
            return
        self.tls.setChecked(text in self.settings.recent_tls)
        if "," in text or text.count(":") != 1:
            return  # several addresses (each keeps its port), or an IPv6 address
        try:
            host, port = parse_address(text)
        except ValueError:
            return  # not an address (yet): Connect says what is wrong
        self.port.setValue(port)
        self.host.setEditText(host)

    def _on_hosting(self, on: bool) -> None:
        self.host.setEnabled(not on)
        self.tls.setEnabled(not on)  # a server hosted here is plain (for the local network)
        if not on and self.server is not None:
            self.server.shutdown("the host stopped hosting")
            self.server = None
        if on:
            self.hint.setText(f"qtchat will run a server on port {self.port.value()} of this computer; "
                              "the address others should use is shown once it runs.")
        else:
            self.hint.setText("")
        self.hint.setVisible(on)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def _busy(self, busy: bool) -> None:
        for w in (self.host, self.port, self.user, self.password, self.register, self.tls, self.hosting,
                  self.connect_button, self.trust_button, self.forget_button):
            w.setEnabled(not busy)
        if not busy:
            self.host.setEnabled(not self.hosting.isChecked())
            self.tls.setEnabled(not self.hosting.isChecked())
        self.connect_button.setText("Connecting\N{HORIZONTAL ELLIPSIS}" if busy else "&Connect")

    def start(self) -> None:
        """Validate the form and start connecting (and hosting)."""
        user = self.user.text().strip()
        if not user:
            self.show_error("Choose a username.")
            self.user.setFocus()
            return
        host = self.host.currentText().strip() or "127.0.0.1"
        port = self.port.value()
        if not self.hosting.isChecked():
            try:
                parse_addresses(host, port)
            except ValueError as exc:
                self.show_error(str(exc))
                self.host.setFocus()
                return
        tls = self.tls.isChecked() and not self.hosting.isChecked()
        password = self.password.text()
        if self.register.isChecked() and len(password) < MIN_PASSWORD:
            self.show_error(f"To register the name, choose a password of at least {MIN_PASSWORD} characters.")
            self.password.setFocus()
            return
        self._clear_errors()
        if self.hosting.isChecked():
            if self.server is not None and self.server.port != port:
                self.server.shutdown("moved to another port")
                self.server = None
            if self.server is None:
                try:
                    self.server = start_local_server(port)
                except OSError as exc:
                    self.show_error(f"Cannot host on port {port}: {exc}. Pick another port.")
                    return
                self.hint.setText("Others on your network can join at " + ", ".join(join_addresses(self.server)))
            host = "127.0.0.1"
        self._busy(True)
        self._connecting = True
        self.client.password = password or None  # kept in memory for reconnects, never saved
        self.client.register_on_login = self.register.isChecked()
        self.client.connect_to(host, port, user, tls=tls)

    def _on_logged_in(self, welcome: object) -> None:
        if not self._connecting:
            return
        self._connecting = False
        self.settings.remember(self.host.currentText().strip() or "127.0.0.1", self.port.value(),
                               self.user.text().strip(), self.hosting.isChecked(),
                               self.tls.isChecked() and not self.hosting.isChecked())
        self._busy(False)
        self.accept()

    def _on_failed(self, raw_code: str, reason: Reason) -> None:
        if not self._connecting:
            return
        self._connecting = False
        self._busy(False)
        code = login_code(raw_code)
        if code is Failure.CERTIFICATE_UNKNOWN and self.cert_box.isVisible():
            return  # the certificate box says it all, with the way on
        self.show_error(reason_text(reason))
        if code in NAME_ERRORS:
            self.user.setFocus()
            self.user.selectAll()
        elif code in PASSWORD_ERRORS:
            self.password.setFocus()
            self.password.selectAll()

    # ------------------------------------------------------------ certificates

    def _on_certificate_unknown(self, host: str, port: int, fingerprint: str, summary: str) -> None:
        if self._connecting:
            self.show_certificate_problem(CertificateProblem(Failure.CERTIFICATE_UNKNOWN, host, port, fingerprint, None,
                                                             summary))

    def _on_certificate_changed(self, host: str, port: int, pinned: str, presented: str) -> None:
        if self._connecting:
            self.show_certificate_problem(self.client.certificate_problem or CertificateProblem(
                Failure.CERTIFICATE_CHANGED, host, port, presented, pinned, ""))

    def show_certificate_problem(self, problem: CertificateProblem, error: str | None = None) -> None:
        """Show what is wrong with the server's certificate, and what the user can do about it; the
        form shows that server (TLS ticked)."""
        where = f"{problem.host}:{problem.port}"
        try:
            given = parse_addresses(self.host.currentText(), self.port.value())
        except ValueError:
            given = []
        if (problem.host, problem.port) not in given:  # the form shows the server at fault
            self.host.setEditText(problem.host)
            self.port.setValue(problem.port)
        self.tls.setChecked(True)
        self.hosting.setChecked(False)
        self.problem = problem
        if problem.code is Failure.CERTIFICATE_CHANGED:
            assert problem.pinned is not None
            self.cert_intro.setText(
                f"Do not connect: {where} presented a different certificate from the one you trusted before. "
                "Someone may be pretending to be the server, or its operator replaced the certificate. Only "
                "the operator can tell you which: ask them (not through this chat) before you forget the old one.")
            self.cert_fingerprint.setText(f"Trusted before:\n{grouped_fingerprint(problem.pinned)}\n"
                                          f"Presented now:\n{grouped_fingerprint(problem.fingerprint)}")
            if error:
                self.show_error(error)
        else:
            self.cert_intro.setText(
                f"The server {where} uses a certificate this computer cannot verify (for example one its "
                "operator made). Connect only if its SHA-256 fingerprint below is the one the operator gave you:")
            self.cert_fingerprint.setText(grouped_fingerprint(problem.fingerprint))
            self.error.hide()
        self.cert_summary.setText(problem.summary)
        self.cert_summary.setVisible(bool(problem.summary))
        unknown = problem.code is Failure.CERTIFICATE_UNKNOWN
        self.trust_button.setVisible(unknown)
        self.forget_button.setVisible(not unknown)
        self.cert_box.show()
        (self.trust_button if unknown else self.cert_cancel).setFocus()

    def _trust(self) -> None:
        problem = self.problem
        if problem is None or problem.code is not Failure.CERTIFICATE_UNKNOWN:
            return
        self.client.trust_certificate(problem.host, problem.port, problem.fingerprint)
        self.start()

    def _ask_forget(self) -> None:
        problem = self.problem
        if problem is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Forget the old certificate?",
                          f"Forget the certificate you trusted for {problem.host}:{problem.port}?\n\n"
                          "qtchat then connects again and shows the new certificate's fingerprint. Trust it only "
                          "if the server's operator confirms it.", parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        forget = box.addButton("Forget it", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def done() -> None:
            if box.clickedButton() is forget:
                self.client.forget_certificate(problem.host, problem.port)
                self.start()  # and shows the new certificate to check
            box.deleteLater()
            self._confirm = None

        box.finished.connect(done)
        self._confirm = box
        box.open()
