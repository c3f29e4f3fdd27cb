"""The message view: a virtualised list over MessageLog, painted by MessageDelegate.

QListView with rows of different heights lays out every row again whenever rows
are inserted, which at 100,000 rows and thousands of inserts a second cannot
keep up. ChatView keeps the height of each row and their running sum, appends
to both when rows arrive, and paints only the rows in sight, so inserting and
scrolling cost the same at 100 rows or 1,000,000.

User text is laid out with QTextLayout as plain text: it is never parsed as
markup, so ``<b>x</b>`` shows exactly those characters.
"""

from __future__ import annotations

import bisect
import re
import time
import zlib
from collections import OrderedDict

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, QRect, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QClipboard,
    QColor,
    QContextMenuEvent,
    QDesktopServices,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QTextCharFormat,
    QTextLayout,
    QTextOption,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QMenu, QToolButton, QWidget

from qtchat.client.models import ChatLine, MessageLog, literal_html

URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
PAD_X = 8
PAD_Y = 2
NICK_CHARS = 12


def find_urls(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of each link in ``text``; trailing punctuation is not part of a link."""
    found = []
    for m in URL_RE.finditer(text):
        url = m.group(0).rstrip(_TRAILING)
        if url.count("(") > url.count(")") and m.group(0)[len(url) : len(url) + 1] == ")":
            url += ")"  # wikipedia-style links with parentheses
        if len(url) > 4:
            found.append((m.start(), m.start() + len(url), url))
    return found


def utf16_ranges(text: str, urls: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The same ranges in UTF-16 code units, as Qt counts them (an emoji is two there, one here)."""
    if text.isascii():
        return urls

    def at(i: int) -> int:
        return len(text[:i].encode("utf-16-le")) // 2

    return [(at(start), at(end), url) for start, end, url in urls]


def _utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _utf16_slice(text: str, start: int, end: int) -> str:
    if text.isascii():
        return text[start:end]
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", errors="ignore")


def nick_color(name: str, dark: bool) -> QColor:
    """A stable colour per user, readable on the current background."""
    hue = zlib.crc32(name.casefold().encode("utf-8")) % 360
    if dark:
        return QColor.fromHsl(hue, 170, 175)
    # yellows and greens look much lighter than blues at one lightness: darker there keeps >= 4.5:1 on white
    return QColor.fromHsl(hue, 170, 62 if 35 <= hue <= 190 else 95)


class MessageDelegate:
    """Measures and paints ChatLines: ``time  nick  text``, the text wrapped in its own column."""

    def __init__(self, font: QFont, palette: QPalette) -> None:
        self._layouts: OrderedDict[int, tuple[int, str, QTextLayout]] = OrderedDict()
        self.set_style(font, palette)

    def set_style(self, font: QFont, palette: QPalette) -> None:
        self.font = QFont(font)
        self.bold = QFont(font)
        self.bold.setBold(True)
        self.italic = QFont(font)
        self.italic.setItalic(True)
        self.palette = palette
        self.fm = QFontMetrics(self.font)
        self.fm_italic = QFontMetrics(self.italic)
        self.line_h = self.fm.lineSpacing()
        self.time_w = self.fm.horizontalAdvance("00:00") + PAD_X
        self.nick_w = self.fm.averageCharWidth() * NICK_CHARS
        base = palette.color(QPalette.ColorRole.Base)
        self.dark = base.lightness() < 128
        text = palette.color(QPalette.ColorRole.Text)
        self.dim = QColor(text)
        self.dim.setAlpha(140)
        self.error = QColor("#ff6b6b") if self.dark else QColor("#c62828")
        self.link = palette.color(QPalette.ColorRole.Link)
        self.own_bg = palette.color(QPalette.ColorRole.AlternateBase)
        self.mention_bg = QColor(palette.color(QPalette.ColorRole.Highlight))
        self.mention_bg.setAlpha(45)
        self.mention_bar = palette.color(QPalette.ColorRole.Highlight)
        self.found_bg = QColor(self.mention_bar)
        self.found_bg.setAlpha(100)
        self._layouts.clear()

    @property
    def text_x(self) -> int:
        return PAD_X + self.time_w + self.nick_w + PAD_X

    def text_width(self, width: int) -> int:
        return max(40, width - self.text_x - PAD_X)

    def height(self, line: ChatLine, width: int) -> int:
        """The row's height at this view width; cached on the line with its one-line width."""
        avail = self.text_width(width)
        cached = line.layout
        if cached is not None:
            if cached[0] == avail:
                return int(cached[1])
            natural = cached[2]
        else:
            text = line.text
            breaks = "\n" in text or "\u2028" in text or "\u2029" in text
            fm = self.fm_italic if line.kind == "notice" else self.fm
            natural = -1 if breaks else fm.horizontalAdvance(text)
        if 0 <= natural <= avail:
            h = self.line_h + 2 * PAD_Y
        else:
            h = self._layout(line, avail).lineCount() * self.line_h + 2 * PAD_Y
        line.layout = (avail, h, natural)
        return h

    def _layout(self, line: ChatLine, avail: int) -> QTextLayout:
        key = id(line)
        hit = self._layouts.get(key)
        if hit is not None and hit[0] == avail and hit[1] is line.text:
            return hit[2]
        # QTextLayout breaks lines at U+2028, not at "\n"; same length, so offsets stay valid
        layout = QTextLayout(line.text.replace("\n", "\u2028"), self.italic if line.kind == "notice" else self.font)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        ranges = []
        for start, end, _ in utf16_ranges(line.text, find_urls(line.text)):
            fr = QTextLayout.FormatRange()
            fr.start, fr.length = start, end - start
            fmt = QTextCharFormat()
            fmt.setForeground(self.link)
            fmt.setFontUnderline(True)
            fr.format = fmt
            ranges.append(fr)
        layout.setFormats(ranges)
        layout.beginLayout()
        y = 0.0
        while True:
            tl = layout.createLine()
            if not tl.isValid():
                break
            tl.setLineWidth(avail)
            tl.setPosition(QPointF(0, y))
            y += self.line_h
        layout.endLayout()
        self._layouts[key] = (avail, line.text, layout)
        if len(self._layouts) > 400:
            self._layouts.popitem(last=False)
        return layout

    def cursor_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> int:
        """The UTF-16 offset in the line's text nearest to ``pos`` (0 left of the text column)."""
        if pos.x() < self.text_x:
            return 0
        layout = self._layout(line, self.text_width(width))
        y = pos.y() - top - PAD_Y
        for i in range(layout.lineCount()):
            tl = layout.lineAt(i)
            if y < tl.y() + self.line_h or i == layout.lineCount() - 1:
                return int(tl.xToCursor(pos.x() - self.text_x))
        return 0

    def paint(self, p: QPainter, line: ChatLine, top: int, width: int,
              selection: tuple[int, int] | None = None) -> None:
        h = self.height(line, width)
        avail = self.text_width(width)
        p.setClipRect(QRect(0, top, width, h))  # nothing a message holds can draw over its neighbours
        if line.kind == "marker":  # "new since you last read": a rule with its words
            p.setPen(self.mention_bar)
            p.setFont(self.font)
            mid = top + h // 2
            label = f" {line.text} "
            label_w = self.fm.horizontalAdvance(label)
            p.drawLine(PAD_X, mid, max(PAD_X, width - label_w - 2 * PAD_X), mid)
            p.drawText(width - label_w - PAD_X, top + PAD_Y + self.fm.ascent(), label)
            p.setClipping(False)
            return
        if line.highlight:  # the message a search result led to
            p.fillRect(QRect(0, top, width, h), self.found_bg)
            p.fillRect(QRect(0, top, 4, h), self.mention_bar)
        elif line.mention or line.private is not None:
            p.fillRect(QRect(0, top, width, h), self.mention_bg)
            p.fillRect(QRect(0, top, 3, h), self.mention_bar)
        elif line.own:
            p.fillRect(QRect(0, top, width, h), self.own_bg)
        y_text = top + PAD_Y + self.fm.ascent()
        # time column
        p.setFont(self.font)
        p.setPen(self.dim)
        stamp = "\N{HORIZONTAL ELLIPSIS}" if line.pending else time.strftime("%H:%M", time.localtime(line.ts / 1000))
        p.drawText(PAD_X, y_text, stamp)
        # nick column, right-aligned and elided
        nick_rect = QRect(PAD_X + self.time_w, top + PAD_Y, self.nick_w, self.line_h)
        if line.kind == "msg":
            p.setFont(self.bold if line.own else self.font)
            p.setPen(nick_color(line.sender, self.dark))
            who = line.sender
            if line.private is not None:  # private: "→ bob" for yours, "bob →" for theirs
                who = f"\N{RIGHTWARDS ARROW} {line.private}" if line.own else f"{line.sender} \N{RIGHTWARDS ARROW}"
                p.setPen(self.mention_bar)
            nick = QFontMetrics(p.font()).elidedText(who, Qt.TextElideMode.ElideRight, self.nick_w)
        else:
            p.setPen(self.error if line.kind == "error" else self.dim)
            nick = "!" if line.kind == "error" else "\N{BULLET}"
        p.drawText(nick_rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), nick)
        # text column
        if line.failed or line.kind == "error":
            p.setPen(self.error)
        elif line.pending or line.kind == "notice":
            p.setPen(self.dim)
        else:
            p.setPen(self.palette.color(QPalette.ColorRole.Text))
        layout = self._layout(line, avail)
        ranges = []
        if selection is not None and selection[1] > selection[0]:
            fr = QTextLayout.FormatRange()
            fr.start, fr.length = selection[0], selection[1] - selection[0]
            fmt = QTextCharFormat()
            fmt.setBackground(self.palette.color(QPalette.ColorRole.Highlight))
            fmt.setForeground(self.palette.color(QPalette.ColorRole.HighlightedText))
            fr.format = fmt
            ranges.append(fr)
        layout.draw(p, QPointF(self.text_x, top + PAD_Y), ranges)
        p.setClipping(False)

    def link_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> str | None:
        urls = find_urls(line.text)
        if not urls:
            return None
        layout = self._layout(line, self.text_width(width))
        x, y = pos.x() - self.text_x, pos.y() - top - PAD_Y
        for i in range(layout.lineCount()):
            tl = layout.lineAt(i)
            if tl.y() <= y < tl.y() + self.line_h and 0 <= x <= tl.naturalTextWidth():
                offset = tl.xToCursor(x)
                for start, end, url in utf16_ranges(line.text, urls):
                    if start <= offset < end:
                        return url if "://" in url else f"https://{url}"
        return None


class ChatView(QAbstractScrollArea):
    """The scrolling conversation.

    Signals:
        link_activated(str): a link was clicked (it is also opened).
        unseen_changed(int): messages arrived while scrolled up; 0 once back at the bottom.
        near_top(): scrolled to within a screen of the oldest line (time to load older ones).
        near_bottom(): scrolled down to the last line (time to load newer ones, when the view shows
            older messages than the newest).
    """

    link_activated = Signal(str)
    unseen_changed = Signal(int)
    near_top = Signal()
    near_bottom = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # always on: a scroll bar that appears would narrow the text and re-measure every row
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.viewport().setMouseTracking(True)
        self.viewport().setAutoFillBackground(False)
        self.delegate = MessageDelegate(self.font(), self.palette())
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

    # ------------------------------------------------------------ model

    def set_model(self, model: MessageLog, keep_place: bool = False) -> None:
        """Show this log; at its newest line, or with ``keep_place`` at the line that is at the top now
        (when the new log holds it too)."""
        place = self._top_place() if keep_place else None
        if self.model is not None:
            self.model.rowsInserted.disconnect(self._on_rows_inserted)
            self.model.dataChanged.disconnect(self._on_data_changed)
            self.model.modelReset.disconnect(self._relayout)
        self.model = model
        model.rowsInserted.connect(self._on_rows_inserted)
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
        if first != len(self._heights):  # neither: measure everything
            self._relayout()
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

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: object = None) -> None:
        if self.model is None:
            return
        stick = self.at_bottom
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
        self._update_scrollbar(stick)
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
                end = span[1][1] if row == span[1][0] else _utf16_len(lines[row].text)
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
            end = o1 if row == r1 else _utf16_len(line.text)
            text = _utf16_slice(line.text, start, end)
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
        super().keyPressEvent(event)

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
        if not tip and row >= 0 and self.model is not None and pos.x() < self.delegate.text_x:
            line = self.model.lines[row]
            tip = line.sender  # the whole name, where the column shortens it
        self.viewport().setToolTip(literal_html(tip))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            if self.selection_span() is not None:
                if QGuiApplication.clipboard().supportsSelection():
                    QGuiApplication.clipboard().setText(self.selected_text(), QClipboard.Mode.Selection)
                return  # a drag selects; it does not open links
            link = self._link_under(event.position().toPoint())
            if link:
                self.link_activated.emit(link)
                if self.open_links:
                    QDesktopServices.openUrl(QUrl(link))

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        row = self.row_at(event.pos().y())
        if row < 0 or self.model is None:
            return
        line = self.model.lines[row]
        menu = QMenu(self)
        if self.selection_span() is not None:
            menu.addAction("Copy", self.copy_selection)
        menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(line.text))
        link = self._link_under(event.pos())
        if link:
            menu.addAction("Copy link", lambda: QGuiApplication.clipboard().setText(link))
        menu.exec(event.globalPos())
