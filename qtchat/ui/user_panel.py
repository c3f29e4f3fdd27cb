"""The user list beside the conversation: who is in the room (or the person you talk to), with a filter,
double-click to talk privately and a menu to mention, message, kick or ban."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QListView, QMenu, QVBoxLayout, QWidget

from qtchat.client import ChatClient, Conversation
from qtchat.client.models import UserListModel, literal_html

from .bidi import IsolatedNames, isolate


class UserProxy(QSortFilterProxyModel):
    """The user list as shown: a room operator's name with "@" before it, someone away dimmed with "(away)" after
    it and their message in the tooltip (names and messages isolated, so that a right-to-left one cannot move
    the sign or the words around it)."""

    AWAY_MARK = "(away)"

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        away = super().data(index, UserListModel.AwayRole)
        if role == Qt.ItemDataRole.DisplayRole:
            name = str(super().data(index, role))
            shown = f"@{isolate(name)}" if super().data(index, UserListModel.OperatorRole) else name
            return f"{isolate(shown)} {self.AWAY_MARK}" if away is not None else shown
        if away is not None and role == Qt.ItemDataRole.ForegroundRole:
            return QApplication.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if away is not None and role == Qt.ItemDataRole.ToolTipRole:
            name = isolate(str(super().data(index, UserListModel.NameRole)))
            return literal_html(f"{name}\naway: {isolate(away)}" if away else f"{name}\naway")
        return super().data(index, role)


class UserPanel(QWidget):
    """Signals:
    message_requested(name): talk privately with this person (a double-click, or the menu).
    mention_requested(name): put this name into the input.
    operator_requested(what, name): an operator chose "kick" or "ban" for this person.
    """

    message_requested = Signal(str)
    mention_requested = Signal(str)
    operator_requested = Signal(str, str)

    def __init__(self, client: ChatClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.label = QLabel("Users")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setContentsMargins(6, 4, 6, 0)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Find a user")
        self.filter.setClearButtonEnabled(True)
        self.proxy = UserProxy(self)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.list = QListView()
        self.list.setModel(self.proxy)
        self.list.setItemDelegate(IsolatedNames(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setAccessibleName("Users")
        self.list.setToolTip("Double-click to talk privately")
        self.list.doubleClicked.connect(lambda index: self._message(self.user_at(index)))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)

    def show_conversation(self, conv: Conversation) -> None:
        """List the people of this conversation."""
        self.proxy.setSourceModel(conv.users)
        self.show_count(conv)

    def show_count(self, conv: Conversation) -> None:
        self.label.setText(f"Users \N{EM DASH} {conv.users.rowCount()}" if conv.is_room else "People")

    def user_at(self, index: QModelIndex) -> str:
        name = self.proxy.data(index, UserListModel.NameRole)
        return name if isinstance(name, str) else ""

    def _message(self, name: str) -> None:
        if name and name != self.client.me:
            self.message_requested.emit(name)

    def _menu(self, pos: QPoint) -> None:
        name = self.user_at(self.list.indexAt(pos))
        if not name:
            return
        menu = QMenu(self)
        if name != self.client.me:
            private = menu.addAction("Message privately")
            private.triggered.connect(lambda: self._message(name))
        mention = menu.addAction("Mention")
        mention.triggered.connect(lambda: self.mention_requested.emit(name))
        if self.client.operator and name != self.client.me:
            menu.addSeparator()
            kick = menu.addAction("Kick\N{HORIZONTAL ELLIPSIS}")
            kick.triggered.connect(lambda: self.operator_requested.emit("kick", name))
            ban = menu.addAction("Ban for a day\N{HORIZONTAL ELLIPSIS}")
            ban.triggered.connect(lambda: self.operator_requested.emit("ban", name))
        menu.exec(self.list.viewport().mapToGlobal(pos))
