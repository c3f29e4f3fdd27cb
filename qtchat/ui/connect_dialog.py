"""The connect dialog: server, port, username, recent servers, or host a server on this computer.

It drives a ChatClient itself and stays open until the login succeeds, showing
the server's own words inline when it fails (no cascade of message boxes).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient
from qtchat.client.host import join_addresses, start_local_server
from qtchat.client.settings import ClientSettings
from qtchat.server import ChatServer


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
        for entry in settings.recent:
            self.host.addItem(entry)
        self.host.setEditText(settings.host)
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
        self.error.setStyleSheet("#errorLabel { color: #c62828; font-weight: bold; }")
        self.error.hide()

        form = QFormLayout()
        form.addRow("&Server:", self.host)
        form.addRow("&Port:", self.port)
        form.addRow("&Username:", self.user)
        form.addRow("Pass&word:", self.password)
        form.addRow("", self.register)
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
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        client.logged_in.connect(self._on_logged_in)
        client.login_failed.connect(self._on_failed)
        self._on_hosting(self.hosting.isChecked())
        self.port.valueChanged.connect(lambda _: self._on_hosting(self.hosting.isChecked()))
        for changed in (self.host.currentTextChanged, self.user.textChanged, self.hosting.toggled,
                        self.password.textChanged, self.register.toggled):
            changed.connect(lambda *_: self.error.hide())  # an old error is not about the new values
        (self.user if self.host.currentText() else self.host).setFocus()

    def _on_host_text(self, text: str) -> None:
        if ":" in text and text.rsplit(":", 1)[1].isdigit():
            host, port = text.rsplit(":", 1)
            if 0 < int(port) < 65536:
                self.port.setValue(int(port))
                self.host.setEditText(host)

    def _on_hosting(self, on: bool) -> None:
        self.host.setEnabled(not on)
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
        for w in (self.host, self.port, self.user, self.password, self.register, self.hosting, self.connect_button):
            w.setEnabled(not busy)
        if not busy:
            self.host.setEnabled(not self.hosting.isChecked())
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
        password = self.password.text()
        if self.register.isChecked() and len(password) < 8:
            self.show_error("To register the name, choose a password of at least 8 characters.")
            self.password.setFocus()
            return
        self.error.hide()
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
        self.client.connect_to(host, port, user)

    def _on_logged_in(self, welcome: object) -> None:
        if not self._connecting:
            return
        self._connecting = False
        self.settings.remember(self.host.currentText().strip() or "127.0.0.1", self.port.value(),
                               self.user.text().strip(), self.hosting.isChecked())
        self._busy(False)
        self.accept()

    def _on_failed(self, code: str, text: str) -> None:
        if not self._connecting:
            return
        self._connecting = False
        self._busy(False)
        self.show_error(text)
        if code.startswith("name"):
            self.user.setFocus()
            self.user.selectAll()
        elif code in ("auth_required", "auth_failed", "bad_password", "account_required"):
            self.password.setFocus()
            self.password.selectAll()
