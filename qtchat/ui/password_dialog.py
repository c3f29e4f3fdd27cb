"""Change the password of the registered name you are logged in with: current, new, and new again.

The dialog stays open while the server checks (a second or so during a login storm) and shows its answer:
it closes when the new password is in force, and says why when it is not, so that nothing typed is lost.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient, Failure

# what qtchat-server asks of a password; the server decides, checking here only saves a round trip
from qtchat.protocol import MAX_PASSWORD, MIN_PASSWORD, ErrorCode

from .wording import password_failure_text

REASONS: dict[str, str] = {  # the codes, as a heading for the sentence
    ErrorCode.AUTH_FAILED: "Not changed",
    ErrorCode.BAD_PASSWORD: "Not changed",
    ErrorCode.TOO_MANY_ATTEMPTS: "Not changed",
    ErrorCode.ACCOUNT_REQUIRED: "Not changed",
    ErrorCode.SERVER_BUSY: "The server is busy",
    Failure.NETWORK: "Connection lost",
}


class PasswordDialog(QDialog):
    def __init__(self, client: ChatClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.setWindowTitle(f"Change the password of {client.me}")  # a window title is plain text
        self.old_edit, self.new_edit, self.again_edit = QLineEdit(), QLineEdit(), QLineEdit()
        for edit, name in ((self.old_edit, "Current password"), (self.new_edit, "New password"),
                           (self.again_edit, "New password again")):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setMaxLength(MAX_PASSWORD)
            edit.setAccessibleName(name)
            edit.textChanged.connect(self._check)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # the server's sentences are never rich text
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Change password")
        buttons.accepted.connect(self._submit)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("&Current password:", self.old_edit)
        form.addRow("&New password:", self.new_edit)
        form.addRow("New password &again:", self.again_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        client.password_changed.connect(self._on_changed)
        client.password_change_failed.connect(self._on_failed)
        self._check()
        self.resize(420, self.sizeHint().height())

    def problem(self) -> str | None:
        """What keeps the fields from being sent, as a sentence; None when they can go."""
        old, new, again = self.old_edit.text(), self.new_edit.text(), self.again_edit.text()
        if not old:
            return "Type your current password."
        if len(new) < MIN_PASSWORD:
            return f"The new password needs at least {MIN_PASSWORD} characters."
        if new == old:
            return "The new password is the same as the current one."
        if again != new:
            return "Type the new password twice, the same both times."
        return None

    def _check(self) -> None:
        waiting = self.client.changing_password
        problem = self.problem()
        self.ok_button.setEnabled(problem is None and not waiting)
        if not waiting:
            self.status.setText(problem or "")

    def _submit(self) -> None:
        if self.problem() is not None or self.client.changing_password:
            return
        try:
            self.client.change_password(self.old_edit.text(), self.new_edit.text())
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        for edit in (self.old_edit, self.new_edit, self.again_edit):
            edit.setEnabled(False)
        self.ok_button.setEnabled(False)
        self.status.setText("Checking with the server\N{HORIZONTAL ELLIPSIS}")

    def _on_changed(self) -> None:
        self.accept()

    def _on_failed(self, code: str, text: str) -> None:
        for edit in (self.old_edit, self.new_edit, self.again_edit):
            edit.setEnabled(True)
        if ErrorCode.parse(code) is ErrorCode.AUTH_FAILED:
            self.old_edit.clear()
            self.old_edit.setFocus()
        self._check()
        self.status.setText(f"{REASONS.get(code, 'Not changed')}: {password_failure_text(code, text)}")

    def done(self, result: int) -> None:
        self.client.password_changed.disconnect(self._on_changed)
        self.client.password_change_failed.disconnect(self._on_failed)
        super().done(result)
