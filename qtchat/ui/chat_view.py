"""The message view: a virtualised list over MessageLog, painted by MessageDelegate (message_delegate.py).

QListView with rows of different heights lays out every row again whenever rows
are inserted, which at 100,000 rows and thousands of inserts a second cannot
keep up. ChatView keeps the height of each row and their running sum, appends
to both when rows arrive, and paints only the rows in sight, so inserting and
scrolling cost the same at 100 rows or 1,000,000.

Each day begins with its separator ("Today", "Yesterday", a date: dates.py), drawn as the top of the row
of its first line: the rows stay the model's. Past local midnight the separators are drawn again.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QEvent, QModelIndex, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QClipboard,
    QContextMenuEvent,
    QDesktopServices,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QMenu, QToolButton, QWidget

from qtchat.client.models import ChatLine, MessageLog, literal_html
from qtchat.protocol import REACTIONS

from .dates import LOCALE, Dates
from .message_delegate import MessageDelegate, find_urls, is_long, utf16_len, utf16_slice
from .text_viewer import TextViewer

__all__ = ["ChatView", "MessageDelegate", "find_urls"]


class ChatView(QAbstractScrollArea):
    """The scrolling conversation.

    Signals:
        link_activated(str): a link was clicked (it is also opened).
        unseen_changed(int): messages arrived while scrolled up; 0 once back at the bottom.
        near_top(): scrolled to within a screen of the oldest line (time to load older ones).
        near_bottom(): scrolled down to the last line (time to load newer ones, when the view shows
            older messages than the newest).
        line_activated(ChatLine): a line that does something was clicked, or chosen with Enter (the
            last one in sight): a "more" line (load the next messages). A long message, drawn collapsed,
            opens itself whole in a TextViewer (``viewer``) the same ways ("show more", Enter, the menu).
    """

    link_activated = Signal(str)
    unseen_changed = Signal(int)
    near_top = Signal()
    near_bottom = Signal()
    line_activated = Signal(object)
    edit_requested = Signal(object)
    delete_requested = Signal(object)
    reply_requested = Signal(object)
    quote_activated = Signal(object)  # a reply's quote was clicked: show the message it answers
    react_requested = Signal(object, str)  # give or take back our reaction (a chip clicked, or the menu)

    def __init__(self, parent: QWidget | None = None, hours: str = LOCALE,
                 clock: Callable[[], float] = time.time) -> None:
        """``hours``: times in "24" or "12" hours, or as the locale does; ``clock``: "now" (seconds)."""
        super().__init__(parent)
        self.may_edit: Callable[[ChatLine], bool] = lambda line: False  # editing.py sets them
        self.may_delete: Callable[[ChatLine], bool] = lambda line: False
        self.may_answer: Callable[[ChatLine], bool] = lambda line: False  # reply, react (the server knows them)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # always on: a scroll bar that appears would narrow the text and re-measure every row
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.viewport().setMouseTracking(True)
        self.viewport().setAutoFillBackground(False)
        self.delegate = MessageDelegate(self.font(), self.palette(), Dates(hours, clock=clock))
        self.model: MessageLog | None = None
        self._tops: list[int] = []
        self._heights: list[int] = []
        self._total = 0
        self._width = 0
        self._unseen = 0
        self.open_links = True
        self.follow = True  # at the bottom, stay there as lines arrive (off while showing older messages)
        self._switching = False
        self._anchor: tuple[int, int] | None = None  # selection: (row, UTF-16 offset) where the drag began
        self._end: tuple[int, int] | None = None
        self.viewer: TextViewer | None = None  # the last long message opened whole
        self.new_button = QToolButton(self.viewport())
        self.new_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.new_button.setAutoRaise(False)
        self.new_button.hide()
        self.new_button.clicked.connect(self.scroll_to_bottom)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._relayout_timer = QTimer(self)
        self._relayout_timer.setSingleShot(True)
        self._relayout_timer.setInterval(30)
        self._relayout_timer.timeout.connect(self._relayout)
        self.today = self.delegate.dates.today()
        self._day_timer = QTimer(self)  # at midnight "Today" becomes "Yesterday"
        self._day_timer.setSingleShot(True)
        self._day_timer.timeout.connect(self._on_day_timer)
        self._day_timer.start(self.delegate.dates.ms_to_midnight())

    # ------------------------------------------------------------ model

    def set_model(self, model: MessageLog, keep_place: bool = False) -> None:
        """Show this log; at its newest line, or with ``keep_place`` at the line that is at the top now
        (when the new log holds it too)."""
        place = self._top_place() if keep_place else None
        if self.model is not None:
            self.model.rowsInserted.disconnect(self._on_rows_inserted)
            self.model.dataChanged.disconnect(self._on_data_changed)
            self.model.modelReset.disconnect(self._relayout)
            self.model.rowsRemoved.disconnect(self._on_rows_removed)
            self.model.reading = False
        self.model = model
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rowsRemoved.connect(self._on_rows_removed)
        model.dataChanged.connect(self._on_data_changed)
        model.modelReset.connect(self._relayout)
        self._anchor = self._end = None
        self._set_unseen(0)
        self._switching = True  # where the view lands is not the reader scrolling: load nothing for it
        try:
            self._relayout()
            if place is not None and model.holds(place[0]):
                self.verticalScrollBar().setValue(self._tops[place[0].row] + place[1])
            else:
                self.scroll_to_bottom()
        finally:
            self._switching = False

    def set_hours(self, hours: str) -> None:
        """Times in "24" or "12" hours, or as the locale does ("locale"): every row is measured again (the
        time column's width changes), the line at the top staying in place."""
        place = None if self.at_bottom else self._top_place()
        self.delegate.set_hours(hours)
        if self.model is None:
            return
        for line in self.model.lines:
            line.layout = None
        self._relayout()
        if place is not None and self.model.holds(place[0]):
            self.verticalScrollBar().setValue(self._tops[place[0].row] + place[1])

    def _on_day_timer(self) -> None:
        today = self.delegate.dates.today()
        if today != self.today:
            self.today = today
            self.viewport().update()  # the separators' words are those of the new day
        self._day_timer.start(self.delegate.dates.ms_to_midnight())

    def _top_place(self) -> tuple[ChatLine, int] | None:
        """The line at the top of the viewport, and how far down it the viewport begins."""
        row = self.row_at(0)
        if row < 0 or self.model is None:
            return None
        return self.model.lines[row], self.verticalScrollBar().value() - self._tops[row]

    def reveal(self, line: ChatLine) -> None:
        """Scroll so that this line is in the middle of the view."""
        if self.model is None or not self.model.holds(line) or line.row >= len(self._tops):
            return
        row = line.row
        self.verticalScrollBar().setValue(self._tops[row] - max(0, self.viewport().height() - self._heights[row]) // 2)
        self.viewport().update()

    @property
    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    @property
    def unseen(self) -> int:
        return self._unseen

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _width_now(self) -> int:
        return self.viewport().width()

    def _relayout(self) -> None:
        """Measure every row again (after a resize or a reset)."""
        if self.model is None:
            return
        stick = self.at_bottom
        width = self._width = self._width_now()
        height = self.delegate.height
        heights = [height(line, width) for line in self.model.lines]
        tops = [0] * len(heights)
        y = 0
        for i, h in enumerate(heights):
            tops[i] = y
            y += h
        self._heights, self._tops, self._total = heights, tops, y
        self._update_scrollbar(stick)
        self.viewport().update()

    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if self.model is None:
            return
        if first == 0 and self._heights:  # older lines at the top: keep what the reader sees in place
            self._prepend(last + 1)
            return
        if first != len(self._heights):  # in the middle (missed messages loaded): measure, keep the place
            self._keep_place_around(first, last - first + 1)
            return
        stick = self.at_bottom and self.follow
        width = self._width
        height = self.delegate.height
        y = self._total
        lines = self.model.lines
        for row in range(first, last + 1):
            h = height(lines[row], width)
            self._tops.append(y)
            self._heights.append(h)
            y += h
        self._total = y
        self._update_scrollbar(stick)
        if not stick and self.follow:
            self._set_unseen(self._unseen + sum(1 for r in range(first, last + 1) if lines[r].kind == "msg"))
        self.viewport().update()

    def _prepend(self, count: int) -> None:
        assert self.model is not None
        bar = self.verticalScrollBar()
        stick = self.at_bottom
        value = bar.value()
        width, height = self._width, self.delegate.height
        new = [height(line, width) for line in self.model.lines[:count]]
        added = sum(new)
        tops = []
        y = 0
        for h in new:
            tops.append(y)
            y += h
        self._tops = tops + [t + added for t in self._tops]
        self._heights = new + self._heights
        self._total += added
        self._update_scrollbar(stick)
        if not stick:
            bar.setValue(value + added)
        self.viewport().update()

    def _on_rows_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        """The log let its oldest lines go (it is bounded): what the reader sees stays in place."""
        if self.model is None:
            return
        count = last + 1
        if first != 0 or count > len(self._heights):
            self._keep_place_around(first, -(last - first + 1))
            return
        bar = self.verticalScrollBar()
        stick = self.at_bottom
        value = bar.value()
        removed = self._tops[count] if count < len(self._tops) else self._total
        self._heights = self._heights[count:]
        self._tops = [t - removed for t in self._tops[count:]]
        self._total -= removed
        self._anchor = self._end = None  # the selection's rows moved
        self._update_scrollbar(stick)
        if not stick:
            bar.setValue(max(0, value - removed))
        self.viewport().update()

    def _keep_place_around(self, first: int, added: int) -> None:
        """Rows were inserted (``added`` > 0) or removed at ``first``: measure again, the line at the top
        of the view (when it was not one removed) staying where it was."""
        top = self.row_at(0)
        offset = self.verticalScrollBar().value() - self._tops[top] if top >= 0 else 0
        stick = self.at_bottom
        self._relayout()
        if stick or top < first or (added < 0 and top < first - added):
            return
        row = top + added
        if 0 <= row < len(self._tops):
            self.verticalScrollBar().setValue(self._tops[row] + offset)

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: object = None) -> None:
        if self.model is None:
            return
        stick = self.at_bottom
        value = self.verticalScrollBar().value()
        above = 0  # what rows that begin above the view grew by: what is in sight stays in place
        for row in range(top_left.row(), bottom_right.row() + 1):
            if row >= len(self._heights):
                continue
            h = self.delegate.height(self.model.lines[row], self._width)
            delta = h - self._heights[row]
            if delta:
                self._heights[row] = h
                for r in range(row + 1, len(self._tops)):
                    self._tops[r] += delta
                self._total += delta
                above += delta if self._tops[row] < value else 0
        self._update_scrollbar(stick)
        if above and not stick:
            self.verticalScrollBar().setValue(value + above)
        self.viewport().update()

    def _update_scrollbar(self, stick: bool) -> None:
        bar = self.verticalScrollBar()
        page = self.viewport().height()
        bar.setRange(0, max(0, self._total - page))
        bar.setPageStep(page)
        bar.setSingleStep(self.delegate.line_h * 3)
        if stick:
            bar.setValue(bar.maximum())

    def _set_unseen(self, count: int) -> None:
        if count == self._unseen:
            return
        self._unseen = count
        if count:
            self.new_button.setText(f"\N{DOWNWARDS ARROW} {count} new message{'s' if count != 1 else ''}")
            self.new_button.adjustSize()
            self._place_button()
            self.new_button.show()
        else:
            self.new_button.hide()
        self.unseen_changed.emit(count)

    def _place_button(self) -> None:
        vp = self.viewport()
        b = self.new_button
        b.move(vp.width() - b.width() - 16, vp.height() - b.height() - 10)

    def _on_scrolled(self, value: int) -> None:
        if self.model is not None:
            self.model.reading = not self.at_bottom  # the log keeps more lines while the reader is up there
        if self.at_bottom:
            self._set_unseen(0)
        maximum = self.verticalScrollBar().maximum()
        if maximum > 0 and not self._switching:
            if value < self.viewport().height():
                self.near_top.emit()
            if self.at_bottom:
                self.near_bottom.emit()
        self.viewport().update()

    # ------------------------------------------------------------ painting and events

    def row_at(self, y: int) -> int:
        """The row under viewport y, or -1."""
        y += self.verticalScrollBar().value()
        row = bisect.bisect_right(self._tops, y) - 1
        return row if 0 <= row < len(self._tops) and y < self._total else -1

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self.viewport())
        p.fillRect(self.viewport().rect(), self.palette().color(QPalette.ColorRole.Base))
        if self.model is None or not self._tops:
            p.end()
            return
        offset = self.verticalScrollBar().value()
        bottom = offset + self.viewport().height()
        row = max(0, bisect.bisect_right(self._tops, offset) - 1)
        lines, tops, width = self.model.lines, self._tops, self._width
        paint = self.delegate.paint
        span = self.selection_span()
        while row < len(tops) and tops[row] < bottom:
            selected = None
            if span is not None and span[0][0] <= row <= span[1][0]:
                start = span[0][1] if row == span[0][0] else 0
                end = span[1][1] if row == span[1][0] else utf16_len(lines[row].text)
                selected = (start, end)
            paint(p, lines[row], tops[row] - offset, width, selected)
            row += 1
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_button()
        if self._width_now() != self._width:
            self._relayout_timer.start()
        else:
            self._update_scrollbar(self.at_bottom)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() not in (QEvent.Type.FontChange, QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            return
        self.delegate.set_style(self.font(), self.palette())
        if self.model is not None:
            for line in self.model.lines:
                line.layout = None
            self._relayout_timer.start()

    def _link_under(self, pos: QPoint) -> str | None:
        row = self.row_at(pos.y())
        if row < 0 or self.model is None:
            return None
        top = self._tops[row] - self.verticalScrollBar().value()
        return self.delegate.link_at(self.model.lines[row], top, self._width, pos)

    def _position(self, pos: QPoint) -> tuple[int, int] | None:
        if self.model is None or not self._tops:
            return None
        y = max(0, min(pos.y(), self.viewport().height() - 1))
        row = self.row_at(y)
        if row < 0:
            row = len(self._tops) - 1
        top = self._tops[row] - self.verticalScrollBar().value()
        return row, self.delegate.cursor_at(self.model.lines[row], top, self._width, QPoint(pos.x(), y))

    def selection_span(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The selection as ((row, offset), (row, offset)), first to last, or None."""
        if self._anchor is None or self._end is None or self._anchor == self._end:
            return None
        return (self._anchor, self._end) if self._anchor <= self._end else (self._end, self._anchor)

    def selected_text(self) -> str:
        span = self.selection_span()
        if span is None or self.model is None:
            return ""
        (r0, o0), (r1, o1) = span
        parts = []
        for row in range(r0, r1 + 1):
            line = self.model.lines[row]
            start = o0 if row == r0 else 0
            end = o1 if row == r1 else utf16_len(line.text)
            text = utf16_slice(line.text, start, end)
            if r0 != r1 and line.sender and start == 0:
                text = f"{line.sender}: {text}"  # whole lines copy with who said them
            parts.append(text)
        return "\n".join(parts)

    def copy_selection(self) -> None:
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.verticalScrollBar().maximum() == 0 and self.model is not None and self.model.lines:
            # everything fits: nothing scrolls, so the wheel itself asks for more in its direction
            delta = event.angleDelta().y()
            if delta > 0:
                self.near_top.emit()
            elif delta < 0:
                self.near_bottom.emit()
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            line = self._last_actionable()
            if line is not None:
                self.activate(line)
                return
        super().keyPressEvent(event)

    def _last_actionable(self) -> ChatLine | None:
        """The lowest line in sight that does something (a "more" line, a collapsed message)."""
        if self.model is None:
            return None
        top, bottom = self.row_at(0), self.row_at(self.viewport().height() - 1)
        if top < 0:
            return None
        last = bottom if bottom >= 0 else len(self._tops) - 1
        for row in range(last, top - 1, -1):
            line = self.model.lines[row]
            if line.kind == "more" or (line.kind == "msg" and is_long(line.text)):
                return line
        return None

    def activate(self, line: ChatLine) -> None:
        """Do what the line does: a long message opens whole in the viewer; others are line_activated."""
        if line.kind == "msg" and is_long(line.text):
            self.show_whole(line)
        else:
            self.line_activated.emit(line)

    def show_whole(self, line: ChatLine) -> None:
        """The whole of a long message, in a read-only plain-text viewer."""
        if self.viewer is not None:
            self.viewer.close()
        self.viewer = TextViewer(line.text, line.sender, self)
        self.viewer.show()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._anchor = self._end = self._position(event.position().toPoint())
            self.viewport().update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if event.buttons() & Qt.MouseButton.LeftButton and self._anchor is not None:
            self._end = self._position(pos)
            self.viewport().update()
        link = self._link_under(pos)
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if link else Qt.CursorShape.ArrowCursor)
        tip = link or ""
        row = self.row_at(pos.y())
        if not tip and row >= 0 and self.model is not None:  # the day, the date and time, the whole name
            tip = self.delegate.tip_at(self.model.lines[row], self._tops[row] - self.verticalScrollBar().value(), pos)
        self.viewport().setToolTip(literal_html(tip))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            if self.selection_span() is not None:
                if QGuiApplication.clipboard().supportsSelection():
                    QGuiApplication.clipboard().setText(self.selected_text(), QClipboard.Mode.Selection)
                return  # a drag selects; it does not open links
            pos = event.position().toPoint()
            row = self.row_at(pos.y())
            if row >= 0 and self.model is not None:
                line, top = self.model.lines[row], self._tops[row] - self.verticalScrollBar().value()
                if line.kind == "more" or self.delegate.show_more_at(line, top, self._width, pos):
                    self.activate(line)
                    return
                if self.delegate.quote_at(line, top, pos):
                    self.quote_activated.emit(line)
                    return
                emoji = self.delegate.reaction_at(line, top, self._width, pos)
                if emoji is not None:
                    self.react_requested.emit(line, emoji)
                    return
            link = self._link_under(pos)
            if link:
                self.link_activated.emit(link)
                if self.open_links:
                    QDesktopServices.openUrl(QUrl(link))

    def _react(self, line: ChatLine, emoji: str, checked: bool = False) -> None:
        del checked  # (what the menu's action sends)
        self.react_requested.emit(line, emoji)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        row = self.row_at(event.pos().y())
        if row < 0 or self.model is None:
            return
        line = self.model.lines[row]
        menu = QMenu(self)
        if self.selection_span() is not None:
            menu.addAction("Copy", self.copy_selection)
        menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(line.text))
        if line.kind == "msg" and is_long(line.text):
            menu.addAction("Show the whole message", lambda: self.show_whole(line))
        link = self._link_under(event.pos())
        if link:
            menu.addAction("Copy link", lambda: QGuiApplication.clipboard().setText(link))
        if line.kind == "msg" and line.id is not None and not line.deleted and self.may_answer(line):
            menu.addAction("Reply", lambda: self.reply_requested.emit(line))
            react = menu.addMenu("React")
            for emoji in REACTIONS:
                action = react.addAction(emoji)
                action.setCheckable(True)
                action.setChecked(emoji in line.mine)
                action.triggered.connect(partial(self._react, line, emoji))
            if line.reply_to:
                menu.addAction("Show the message this answers", lambda: self.quote_activated.emit(line))
            if self.may_edit(line):
                menu.addAction("Edit message\N{HORIZONTAL ELLIPSIS}", lambda: self.edit_requested.emit(line))
            if self.may_delete(line):
                menu.addAction("Delete message\N{HORIZONTAL ELLIPSIS}", lambda: self.delete_requested.emit(line))
        menu.exec(event.globalPos())
