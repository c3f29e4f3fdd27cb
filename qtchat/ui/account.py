"""The account and operator questions the main window asks: a password to register the name with,
and why to kick or ban someone."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from qtchat.client import ChatClient, Conversation
from qtchat.client.models import literal_html
from qtchat.protocol import MIN_PASSWORD

BAN_MINUTES = 24 * 60  # "Ban for a day"


def ask_to_register(parent: QWidget, client: ChatClient, lobby: Conversation) -> None:
    """Ask for a password (twice) and register the name we are logged in with; problems go to the lobby."""
    echo = QLineEdit.EchoMode.Password
    title = f"Register {client.me}"
    password, ok = QInputDialog.getText(parent, title, f"Password (at least {MIN_PASSWORD} characters):", echo)
    if not ok or not password:
        return
    again, ok = QInputDialog.getText(parent, title, "The same password again:", echo)
    if not ok:
        return
    if again != password:
        lobby.error("Not registered: the two passwords differ.")
    elif len(password) < MIN_PASSWORD:
        lobby.error(f"Not registered: a password needs at least {MIN_PASSWORD} characters.")
    else:
        try:
            client.register_name(password)
        except ValueError as exc:
            lobby.error(f"Not registered: {exc}")


def ask_operator_action(parent: QWidget, client: ChatClient, conv: Conversation, what: str, name: str) -> None:
    """Ask why, then kick (``what`` "kick") or ban for a day; a refusal goes to ``conv``."""
    reason, ok = QInputDialog.getText(parent, f"{what.title()} {name}", literal_html(f"Why {what} {name}? (they are told)"))
    if not ok:
        return
    try:
        if what == "kick":
            client.kick(name, reason.strip())
        else:
            client.ban(name, BAN_MINUTES, reason.strip())
    except ValueError as exc:
        conv.error(f"Not done: {exc}")
