"""Join a room: type a name (a new name creates the room) or pick one of the server's rooms."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient
from qtchat.client.models import literal_html
from qtchat.protocol import RoomInfo


class RoomDialog(QDialog):
    def __init__(self, client: ChatClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Join a room")
        self.client = client
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Room name (a new name creates the room)")
        self.name_edit.setMaxLength(64)
        self.rooms = QListWidget()
        self.rooms.setAccessibleName("Rooms on this server")
        self.status = QLabel("Asking the server for its rooms\N{HORIZONTAL ELLIPSIS}")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.join_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.join_button.setText("Join")
        self.join_button.setEnabled(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.status)
        layout.addWidget(self.rooms, 1)
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(lambda text: self.join_button.setEnabled(bool(text.strip())))
        self.rooms.currentItemChanged.connect(self._on_pick)
        self.rooms.itemDoubleClicked.connect(self._join_picked)
        client.room_list.connect(self._on_rooms)
        if not client.request_rooms():
            self.status.setText("Not connected: you will join when the connection is back.")
        self.resize(420, 360)

    @property
    def room_name(self) -> str:
        return self.name_edit.text().strip().removeprefix("#")

    def _on_pick(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.name_edit.setText(item.data(Qt.ItemDataRole.UserRole))

    def _join_picked(self, item: QListWidgetItem) -> None:
        self._on_pick(item)
        self.accept()

    def _on_rooms(self, rooms: list[RoomInfo]) -> None:
        self.rooms.clear()
        joined = [r for r in rooms if self.client.room(r.name) is None]
        for info in sorted(joined, key=lambda r: (-(r.members or 0), r.name.casefold())):
            people = f"{info.members} {'person' if info.members == 1 else 'people'}"
            text = f"#{info.name}  \N{EM DASH} {people}" + (f"\n{info.topic}" if info.topic else "")
            item = QListWidgetItem(text)  # list items are plain text
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(literal_html(info.topic))
            self.rooms.addItem(item)
        self.status.setText("Rooms you are not in yet:" if joined else "You are in every room; type a name to create one.")

    def done(self, result: int) -> None:
        self.client.room_list.disconnect(self._on_rooms)
        super().done(result)
