"""The search panel: results of a server-side search, newest first; picking one opens the room there."""

from __future__ import annotations

import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QTextCharFormat, QTextLayout, QTextOption
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from qtchat.client.search import SearchModel, match_spans
from qtchat.protocol import Message

from .bidi import isolate, mark_overrides
from .dates import Dates
from .message_delegate import utf16_ranges
from .sidebar import draw_item_base

PAD = 6
SNIPPET_LEAD = 40  # characters kept before the first match when a long message is cut
SNIPPET_CHARS = 300  # of a result's text at most laid out (one line, cut by the panel's width anyway)


def snippet(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """The text on one line, starting shortly before its first match, and the spans moved with it."""
    flat = " ".join(text.split("\n"))
    cut = max(0, spans[0][0] - SNIPPET_LEAD) if spans else 0
    if cut:
        space = flat.find(" ", cut, spans[0][0])  # start at a word
        cut = space + 1 if space >= 0 else cut
    if not cut:
        return flat[:SNIPPET_CHARS], [(s, min(e, SNIPPET_CHARS)) for s, e in spans if s < SNIPPET_CHARS]
    end = cut + SNIPPET_CHARS
    return "\N{HORIZONTAL ELLIPSIS}" + flat[cut:end], [(s - cut + 1, min(e, end) - cut + 1) for s, e in spans if s < end]


def result_meta(msg: Message, dates: Dates | None = None) -> str:
    """A result's first line: "#room · sender · when", the room and the name each isolated."""
    return f"#{isolate(msg.room)} \N{MIDDLE DOT} {isolate(msg.sender)} \N{MIDDLE DOT} {when(msg.ts, dates)}"


def when(ts: int, dates: Dates | None = None) -> str:
    """The date when it is not today, and the time (as the conversation views write it, 12 or 24 hours: ``dates``)."""
    if dates is not None:
        day = time.strftime("%Y-%m-%d", time.localtime(max(0, ts) / 1000))
        today = time.strftime("%Y-%m-%d")
        return dates.stamp(ts) if day == today else f"{day} {dates.stamp(ts)}"
    t = time.localtime(ts / 1000)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M", t)


class ResultDelegate(QStyledItemDelegate):
    """Two lines per result: "#room · sender · when" dimmed, then the text (plain) with the query's words bold."""

    def __init__(self, model: SearchModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = model
        self.dates = Dates()  # the times, as the conversation views write them (set_hours)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        fm = QFontMetrics(option.font)
        return QSize(100, 2 * fm.lineSpacing() + 2 * PAD + 2)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        msg = index.data(SearchModel.MessageRole)
        if not isinstance(msg, Message):
            return
        opt, selected = draw_item_base(self, p, option, index)
        rect: QRect = opt.rect
        palette: QPalette = opt.palette
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        font = QFont(opt.font)
        fm = QFontMetrics(font)
        width = rect.width() - 2 * PAD
        p.save()
        p.setClipRect(rect)
        dim = QColor(text_color)
        dim.setAlpha(150)
        p.setPen(dim)
        p.setFont(font)
        meta = fm.elidedText(result_meta(msg, self.dates), Qt.TextElideMode.ElideRight, width)
        p.drawText(rect.left() + PAD, rect.top() + PAD + fm.ascent(), meta)
        # the text: laid out as plain text, never parsed as markup; the matches in bold
        text, spans = snippet(msg.text, match_spans(msg.text, self.search.query))
        layout = QTextLayout(mark_overrides(text), font)  # its own paragraph: only overrides could lie
        option_text = QTextOption()
        option_text.setWrapMode(QTextOption.WrapMode.NoWrap)
        layout.setTextOption(option_text)
        bold = QTextCharFormat()
        bold.setFontWeight(QFont.Weight.Bold)
        ranges = []
        for start, end, _ in utf16_ranges(text, [(s, e, "") for s, e in spans]):
            fr = QTextLayout.FormatRange()
            fr.start, fr.length, fr.format = start, end - start, bold
            ranges.append(fr)
        layout.setFormats(ranges)
        layout.beginLayout()
        line = layout.createLine()
        if line.isValid():
            line.setLineWidth(10 ** 6)
        layout.endLayout()
        p.setPen(text_color)
        p.setClipRect(QRect(rect.left() + PAD, rect.top(), width, rect.height()))
        layout.draw(p, QPointF(rect.left() + PAD, rect.top() + PAD + fm.lineSpacing() + 2))
        p.restore()


class SearchPanel(QWidget):
    """Signals:
    result_activated(Message): the user picked a result (a click or Enter).
    closed(): the user closed the panel.
    """

    result_activated = Signal(object)
    closed = Signal()

    SCOPES = ("All my rooms", "This room")

    def __init__(self, model: SearchModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.active_room: str | None = None  # the room "This room" searches (None: not a room)
        title = QLabel("Search")
        title.setTextFormat(Qt.TextFormat.PlainText)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.scope = QComboBox()
        self.scope.addItems(self.SCOPES)
        self.scope.setAccessibleName("Where to search")
        self.scope.currentIndexChanged.connect(lambda _: self.search(self.model.query))
        close = QToolButton()
        close.setText("\N{MULTIPLICATION SIGN}")
        close.setAutoRaise(True)
        close.setToolTip("Close the search (Esc)")
        close.setAccessibleName("Close the search")
        close.clicked.connect(self.closed)
        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 0, 0)
        header.addWidget(title)
        header.addWidget(self.scope, 1)
        header.addWidget(close)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setContentsMargins(6, 0, 6, 0)
        self.list = QListView()
        self.list.setModel(model)
        self.delegate = ResultDelegate(model, self.list)
        self.list.setItemDelegate(self.delegate)
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setAccessibleName("Search results")
        self.list.setToolTip("Click a result to open its room there")
        self.list.clicked.connect(self._activate)
        self.list.activated.connect(self._activate)
        self.list.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.more_button = QPushButton("Older results")
        self.more_button.clicked.connect(model.load_more)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.status)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.more_button)
        model.state_changed.connect(self._show_state)
        self._show_state()

    def search(self, query: str) -> bool:
        """Search for ``query`` in the chosen scope; the results (or why there are none) show here."""
        if not query.strip():
            return False
        in_room = self.scope.currentIndex() == 1 and self.active_room is not None
        return self.model.start(query, self.active_room if in_room else None)

    def set_hours(self, hours: str) -> None:
        """Times in 12 or 24 hours, or as the locale writes them (View > Time of day), as the views do."""
        self.delegate.dates = Dates(hours)
        self.list.viewport().update()

    def set_active_room(self, room: str | None) -> None:
        self.active_room = room
        self.scope.setItemText(1, f"#{room}" if room else "This room")

    def _show_state(self) -> None:
        self.status.setText(self.model.status)
        self.more_button.setVisible(self.model.more)
        self.more_button.setEnabled(not self.model.searching)

    def _on_scrolled(self, value: int) -> None:
        if value >= self.list.verticalScrollBar().maximum() > 0:
            self.model.load_more()  # at the end of the list: the next page

    def _activate(self, index: QModelIndex) -> None:
        msg = index.data(SearchModel.MessageRole)
        if isinstance(msg, Message):
            self.result_activated.emit(msg)
