"""Searching the server's history: the results list as a Qt model (no widgets).

The server does the searching (``search`` / ``results`` frames, SQLite FTS5);
``SearchModel`` asks, keeps the results of the current query newest first,
pages on to older ones, and knows which words to mark in each result. Picking
a result is the Workspace's business (``Workspace.show_message``).
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from qtchat.protocol import Message, SearchResults, name_key

from .session import ChatClient

Index = QModelIndex | QPersistentModelIndex

# what the server counts as a word: letters and digits; anything else separates words
_WORD = re.compile(r"[^\W_]+")


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where the words of ``query`` match in ``text`` as word prefixes, case-insensitively, as the server
    matches them: sorted (start, end) character ranges, not overlapping."""
    words = sorted({w.casefold() for w in _WORD.findall(query)}, key=len, reverse=True)
    if not words:
        return []
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in words) + ")", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


class SearchModel(QAbstractListModel):
    """The results of one search, newest first, each a Message with its room.

    Signals:
        state_changed(): searching started or finished, or results arrived (see ``status``).
    """

    MessageRole = int(Qt.ItemDataRole.UserRole) + 1
    state_changed = Signal()
    PAGE = 50

    def __init__(self, client: ChatClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.query = ""
        self.room: str | None = None  # None: every room we are in
        self.results: list[Message] = []
        self.more = False
        self.searching = False
        self.error = ""
        self._asked_before: int | None = None  # the page on its way
        client.search_results.connect(self._on_results)
        client.search_failed.connect(self._on_failed)
        client.connection_lost.connect(self._on_connection_lost)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.results)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.results):
            return None
        msg = self.results[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{msg.room} {msg.sender}: {msg.text}"
        if role == self.MessageRole:
            return msg
        return None

    def start(self, query: str, room: str | None = None) -> bool:
        """Search anew; False (with ``error`` set) when the query cannot be sent."""
        self.beginResetModel()
        self.results = []
        self.more = False
        self.endResetModel()
        self.query, self.room = query.strip(), room
        return self._ask(None)

    def load_more(self) -> bool:
        """The next page of older results, if there are more and none is on its way."""
        if not self.more or self.searching or not self.results:
            return False
        return self._ask(self.results[-1].id)

    def clear(self) -> None:
        self.beginResetModel()
        self.results, self.more, self.query, self.error, self.searching = [], False, "", "", False
        self.endResetModel()
        self.state_changed.emit()

    @property
    def status(self) -> str:
        """One line on how the search went, for the panel's header."""
        if self.error:
            return self.error
        if self.searching and not self.results:
            return "Searching\N{HORIZONTAL ELLIPSIS}"
        if not self.query:
            return ""
        if not self.results:
            return "No messages found." if self.room is None else f"Nothing found in #{self.room}."
        count = f"{len(self.results)}{'+' if self.more else ''}"
        return f"{count} message{'s' if len(self.results) != 1 or self.more else ''} found"

    def _ask(self, before: int | None) -> bool:
        self.error = ""
        self._asked_before = before
        try:
            sent = self.client.search(self.query, self.room, before, self.PAGE)
        except ValueError as exc:
            self.error = f"Cannot search: {exc}."
            sent = False
        else:
            if not sent:
                self.error = "Not connected: search needs the server."
        self.searching = sent
        self.state_changed.emit()
        return sent

    def _on_connection_lost(self) -> None:
        if self.searching:  # the answer went with the connection
            self.searching = False
            self.error = "The connection dropped before the answer came: search again."
            self.state_changed.emit()

    def _on_failed(self, code: str, text: str) -> None:
        if self.searching:  # refused (the server's words say why): nothing more comes for it
            self.searching = False
            self.error = text
            self.state_changed.emit()

    def _on_results(self, answer: SearchResults) -> None:
        scope = name_key(answer.room) if answer.room is not None else None
        if not self.searching or answer.query != self.query or answer.before != self._asked_before \
                or scope != (name_key(self.room) if self.room else None):
            return  # the answer to a search since replaced (the same words asked again count too)
        known = {m.id for m in self.results}
        fresh = [m for m in answer.results if m.id not in known]
        if fresh:
            first = len(self.results)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self.results.extend(fresh)
            self.endInsertRows()
        self.more = answer.more
        self.searching = False
        self.state_changed.emit()
