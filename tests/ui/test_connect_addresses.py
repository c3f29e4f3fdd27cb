"""The connect dialog takes several addresses of one server (issue 15), typed as a person types them."""

from __future__ import annotations

import socket
from typing import Any

from PySide6.QtCore import Qt

from qtchat.client import ChatClient, ClientState
from qtchat.client.settings import ClientSettings
from qtchat.ui.connect_dialog import ConnectDialog


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dialog_for(qtbot: Any) -> tuple[ConnectDialog, ChatClient]:
    client = ChatClient()
    dialog = ConnectDialog(client, ClientSettings())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog, client


def type_server(qtbot: Any, dialog: ConnectDialog, text: str) -> None:
    line = dialog.host.lineEdit()
    assert line is not None
    line.setFocus()
    line.selectAll()
    qtbot.keyClick(line, Qt.Key.Key_Delete)
    qtbot.keyClicks(line, text)


def test_several_typed_addresses_connect_on_the_one_that_answers(server: Any, qtbot: Any) -> None:
    dialog, client = dialog_for(qtbot)
    line = dialog.host.lineEdit()
    assert line is not None and "several" in line.placeholderText() and "commas" in dialog.host.toolTip()
    dead = dead_port()
    typed = f"127.0.0.1:{dead}, 127.0.0.1:{server.port}"
    type_server(qtbot, dialog, typed)
    assert dialog.host.currentText() == typed  # typing a port is not taken out of the field halfway
    assert dialog.port.value() == 4321
    qtbot.keyClicks(dialog.user, "alice")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.keyClick(dialog.user, Qt.Key.Key_Return)
    assert client.state is ClientState.ONLINE and client.port == server.port
    settings = ClientSettings()
    assert settings.host == typed  # saved as the user typed it, for next time
    assert settings.recent[0] == f"127.0.0.1:{dead},127.0.0.1:{server.port}"
    client.quit()

    again, _ = dialog_for(qtbot)  # the recent entry comes back whole (each address keeps its port)
    again.host.setCurrentText(settings.recent[0])
    assert again.host.currentText() == settings.recent[0]


def test_a_bad_address_in_the_list_is_named_and_nothing_connects(qtbot: Any) -> None:
    dialog, client = dialog_for(qtbot)
    type_server(qtbot, dialog, "chat1.example.org, chat2.example.org:99999")
    qtbot.keyClicks(dialog.user, "alice")
    qtbot.keyClick(dialog.user, Qt.Key.Key_Return)
    assert dialog.error.isVisible()
    assert "chat2.example.org:99999" in dialog.error.text() and "1 to 65535" in dialog.error.text()
    assert client.state is ClientState.OFFLINE and client.addresses == []
    assert dialog.connect_button.isEnabled() and dialog.isVisible()
