"""How one chat line looks: MessageDelegate lays it out (time, sender, text; links found and underlined)
and paints it; ChatView (chat_view.py) decides which lines are in sight. The first line of each day has
the day's separator drawn above it, at the top of its row (``ChatLine.day_start``; the words: dates.py).

User text is laid out with QTextLayout as plain text: it is never parsed as
markup, so ``<b>x</b>`` shows exactly those characters. Each message is its own
paragraph (its direction controls end with it), and a bidirectional override in
it is drawn as a visible marker, in the error colour (``bidi.py``).
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict

from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
    QTextCharFormat,
    QTextLayout,
    QTextOption,
)

from qtchat.client.models import ChatLine

from .bidi import isolate, mark_overrides, override_offsets
from .dates import Dates

URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
PAD_X = 8
PAD_Y = 2
CHIP_PAD = 4  # around a reaction's words, and between two reactions
DAY_GAP = 5  # above and below a day's separator
NICK_CHARS = 12
LONG_CHARS = 2000  # a message longer than this, or of more lines than LONG_LINES, is drawn collapsed
LONG_LINES = 20
COLLAPSED_LINES = 8  # drawn lines of a collapsed message, then its "show more" line
EXCERPT_CHARS = 1000  # of its text at most laid out: the layout of a collapsed message is bounded
_BREAKS = re.compile("[\n\u2028\u2029]")


DELETED = "message deleted"  # what a deleted message shows (dimmed, in italics)
EDITED = " (edited)"  # after the text of an edited message (dimmed)


def quote_label(line: ChatLine) -> str:
    """A reply's one-line quote of the message it answers (names and text isolated, overrides marked)."""
    if not line.reply_from:
        return "\N{RIGHTWARDS ARROW WITH HOOK} a message that was deleted or is not here"
    return f"\N{RIGHTWARDS ARROW WITH HOOK} {isolate(line.reply_from)}: {isolate(mark_overrides(line.reply_text))}"


def is_long(text: str) -> bool:
    """Drawn collapsed, with "show more"? (At most LONG_CHARS characters are looked at.)"""
    return len(text) > LONG_CHARS or sum(text.count(c) for c in "\n\u2028\u2029") >= LONG_LINES


def excerpt(text: str) -> str:
    """The start of a long message that its collapsed row shows: a prefix, so offsets stay the text's."""
    head = text[:EXCERPT_CHARS]
    for i, m in enumerate(_BREAKS.finditer(head)):
        if i + 1 == COLLAPSED_LINES:
            return head[: m.start()]
    return head


def show_more_label(text: str) -> str:
    lines = text.count("\n") + 1
    size = f"{len(text):,} characters" + (f", {lines:,} lines" if lines > 1 else "")
    return f"\N{HORIZONTAL ELLIPSIS} show more ({size})"


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


def utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def utf16_slice(text: str, start: int, end: int) -> str:
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

    def __init__(self, font: QFont, palette: QPalette, dates: Dates | None = None) -> None:
        self._layouts: OrderedDict[int, tuple[int, str, QTextLayout]] = OrderedDict()
        self.dates = dates if dates is not None else Dates()
        self.set_style(font, palette)

    def set_hours(self, hours: str) -> None:
        """Times in 24 or 12 hours, or as the locale does (dates.HOURS): the time column's width changes."""
        self.dates.hours = hours
        self.set_style(self.font, self.palette)

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
        self.time_w = self.dates.stamp_width(self.fm) + PAD_X
        self.day_h = self.line_h + 2 * DAY_GAP
        self.nick_w = self.fm.averageCharWidth() * NICK_CHARS
        base = palette.color(QPalette.ColorRole.Base)
        self.dark = base.lightness() < 128
        text = palette.color(QPalette.ColorRole.Text)
        self.dim = QColor(text)
        self.dim.setAlpha(140)
        self.rule = QColor(text)
        self.rule.setAlpha(45)
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

    def band(self, line: ChatLine) -> int:
        """The height of the day's separator drawn above the line (0 when it does not start its day)."""
        return self.day_h if line.day_start else 0

    def above_text(self, line: ChatLine) -> int:
        """How far below the row's top the text starts: the day's separator, then a reply's quote."""
        return self.band(line) + (self.line_h if line.reply_to else 0)

    def below_text(self, line: ChatLine) -> int:
        """The row of its reactions under a message's text (0 when it has none)."""
        return self.line_h + 2 * PAD_Y if line.reactions else 0

    def _chips(self, line: ChatLine, top: int, h: int) -> list[tuple[QRect, str]]:
        """Each reaction's chip: where it is drawn (at the bottom of the row) and its emoji."""
        chips, x, y = [], self.text_x, top + h - self.below_text(line)
        for emoji, n in line.reactions.items():
            w = self.fm.horizontalAdvance(f"{emoji} {n}") + 2 * CHIP_PAD
            chips.append((QRect(x, y + PAD_Y, w, self.line_h), emoji))
            x += w + CHIP_PAD
        return chips

    def reaction_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> str | None:
        """The reaction whose chip is at ``pos`` (clicking it gives or takes back ours), if any."""
        if not line.reactions:
            return None
        h = self.height(line, width)
        return next((emoji for rect, emoji in self._chips(line, top, h) if rect.contains(pos)), None)

    def _paint_reactions(self, p: QPainter, line: ChatLine, top: int, h: int) -> None:
        p.setFont(self.font)
        for rect, emoji in self._chips(line, top, h):
            own = emoji in line.mine
            p.setPen(self.link if own else self.rule)
            p.setBrush(self.mention_bg if own else Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect.adjusted(0, 0, -1, -1), 6, 6)
            p.setPen(self.palette.color(QPalette.ColorRole.Text))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), f"{emoji} {line.reactions[emoji]}")
        p.setBrush(Qt.BrushStyle.NoBrush)

    def quote_at(self, line: ChatLine, top: int, pos: QPoint) -> bool:
        """Is ``pos`` on a reply's quote (clicking it opens the message it answers)?"""
        if not line.reply_to or pos.x() < self.text_x:
            return False
        y = top + self.band(line)
        return y <= pos.y() < y + self.line_h + PAD_Y

    def height(self, line: ChatLine, width: int) -> int:
        """The row's height at this view width; cached on the line with its one-line width."""
        avail = self.text_width(width)
        cached = line.layout
        if cached is not None:
            if cached[0] == avail:
                return int(cached[1])
            natural = cached[2]
        else:
            text = DELETED if line.deleted else line.text + EDITED if line.edited else line.text
            breaks = "\n" in text or "\u2028" in text or "\u2029" in text
            fm = self.fm_italic if line.kind == "notice" or line.deleted else self.fm
            natural = -1 if breaks or is_long(text) else fm.horizontalAdvance(mark_overrides(text))
        if 0 <= natural <= avail:
            h = self.line_h + 2 * PAD_Y
        else:
            rows = self._layout(line, avail).lineCount() + (1 if is_long(line.text) else 0)
            h = rows * self.line_h + 2 * PAD_Y
        h += self.above_text(line) + self.below_text(line)
        line.layout = (avail, h, natural)
        return h

    def _layout(self, line: ChatLine, avail: int) -> QTextLayout:
        key = id(line)
        hit = self._layouts.get(key)
        if hit is not None and hit[0] == avail and hit[1] is line.text:
            return hit[2]
        # a long message: only its start, and at most COLLAPSED_LINES lines of it, are laid out
        text, most = (excerpt(line.text), COLLAPSED_LINES) if is_long(line.text) else (line.text, -1)
        if line.deleted:
            text = DELETED
        # QTextLayout breaks lines at U+2028, not at "\n"; same length, so offsets stay valid
        shown = mark_overrides(text.replace("\n", "\u2028"))
        layout = QTextLayout(shown + (EDITED if line.edited and not line.deleted else ""),
                             self.italic if line.kind == "notice" or line.deleted else self.font)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        ranges = self._formats(text) if not line.deleted else []
        if line.edited or line.deleted:  # "(edited)" after the text, or the placeholder: dimmed, not the text's
            fr = QTextLayout.FormatRange()
            fr.start, fr.length = (0, utf16_len(shown)) if line.deleted else (utf16_len(shown), len(EDITED))
            fmt = QTextCharFormat()
            fmt.setForeground(self.dim)
            fr.format = fmt
            ranges.append(fr)
        layout.setFormats(ranges)
        layout.beginLayout()
        y = 0.0
        while most != 0:
            tl = layout.createLine()
            if not tl.isValid():
                break
            tl.setLineWidth(avail)
            tl.setPosition(QPointF(0, y))
            y += self.line_h
            most -= 1
        layout.endLayout()
        self._layouts[key] = (avail, line.text, layout)
        if len(self._layouts) > 400:
            self._layouts.popitem(last=False)
        return layout

    def _formats(self, text: str) -> list[QTextLayout.FormatRange]:
        """Links underlined, overrides' markers in the error colour."""
        ranges = []
        for start, end, _ in utf16_ranges(text, find_urls(text)):
            fr = QTextLayout.FormatRange()
            fr.start, fr.length = start, end - start
            fmt = QTextCharFormat()
            fmt.setForeground(self.link)
            fmt.setFontUnderline(True)
            fr.format = fmt
            ranges.append(fr)
        for at in override_offsets(text):
            fr = QTextLayout.FormatRange()
            fr.start, fr.length = at, 1
            fmt = QTextCharFormat()
            fmt.setForeground(self.error)
            fmt.setFontWeight(QFont.Weight.Bold)
            fr.format = fmt
            ranges.append(fr)
        return ranges

    def show_more_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> bool:
        """Is ``pos`` on the "show more" line of a collapsed message?"""
        if not is_long(line.text) or pos.x() < self.text_x:
            return False
        h = self.height(line, width) - self.below_text(line)
        return top + h - PAD_Y - self.line_h <= pos.y() < top + h

    def cursor_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> int:
        """The UTF-16 offset in the line's text nearest to ``pos`` (0 left of the text column)."""
        if pos.x() < self.text_x:
            return 0
        layout = self._layout(line, self.text_width(width))
        y = pos.y() - top - self.above_text(line) - PAD_Y
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
        if line.day_start:
            self._paint_day(p, line, top, width)
            top, h = top + self.day_h, h - self.day_h
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
        if line.reply_to:  # the message it answers, on a line of its own above the text
            self._paint_quote(p, line, top, avail)
            top, h = top + self.line_h, h - self.line_h
        if line.reactions:  # its reactions, a row of chips under the text
            self._paint_reactions(p, line, top, h)
            h -= self.below_text(line)
        y_text = top + PAD_Y + self.fm.ascent()
        # time column
        p.setFont(self.font)
        p.setPen(self.dim)
        stamp = "\N{HORIZONTAL ELLIPSIS}" if line.pending else self.dates.stamp(line.ts)
        p.drawText(self.time_w - self.fm.horizontalAdvance(stamp), y_text, stamp)  # right-aligned: 9:05 under 10:05
        # nick column, right-aligned and elided
        nick_rect = QRect(PAD_X + self.time_w, top + PAD_Y, self.nick_w, self.line_h)
        if line.kind == "msg":
            p.setFont(self.bold if line.own else self.font)
            p.setPen(nick_color(line.sender, self.dark))
            who = line.sender
            if line.private is not None:  # private: "→ bob" for yours, "bob →" for theirs
                who = (f"\N{RIGHTWARDS ARROW} {isolate(line.private)}" if line.own
                       else f"{isolate(line.sender)} \N{RIGHTWARDS ARROW}")
                p.setPen(self.mention_bar)
            nick = QFontMetrics(p.font()).elidedText(who, Qt.TextElideMode.ElideRight, self.nick_w)
        else:
            p.setPen(self.error if line.kind == "error" else self.dim)
            nick = "!" if line.kind == "error" else "\N{BULLET}"
        p.drawText(nick_rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), nick)
        # text column
        p.setPen(self._text_color(line))
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
        if is_long(line.text):  # collapsed: the rest is in the viewer ("show more", or Enter)
            p.setFont(self.font)
            p.setPen(self.link)
            p.drawText(self.text_x, top + h - PAD_Y - self.line_h + self.fm.ascent(), show_more_label(line.text))
        p.setClipping(False)

    def _paint_quote(self, p: QPainter, line: ChatLine, top: int, avail: int) -> None:
        p.setFont(self.italic)
        p.setPen(self.dim)
        p.fillRect(QRect(self.text_x - 6, top + PAD_Y, 2, self.line_h), self.rule)
        text = quote_label(line)
        elided = QFontMetrics(self.italic).elidedText(text, Qt.TextElideMode.ElideRight, avail)
        p.drawText(self.text_x, top + PAD_Y + self.fm.ascent(), elided)

    def _paint_day(self, p: QPainter, line: ChatLine, top: int, width: int) -> None:
        """The day's separator: its label in the middle of a faint rule."""
        label = self.dates.day_label(line.ts)
        p.setFont(self.bold)
        label_w = QFontMetrics(self.bold).horizontalAdvance(label)
        x = max(PAD_X, (width - label_w) // 2)
        mid = top + self.day_h // 2
        p.setPen(self.rule)
        if x - 2 * PAD_X > PAD_X:
            p.drawLine(PAD_X, mid, x - PAD_X, mid)
            p.drawLine(x + label_w + PAD_X, mid, width - PAD_X, mid)
        p.setPen(self.dim)
        p.drawText(x, top + DAY_GAP + self.fm.ascent(), label)

    def tip_at(self, line: ChatLine, top: int, pos: QPoint) -> str:
        """What hovering ``pos`` shows outside the text: the day in full over its separator, the date and
        time over the time, the whole name over the name column."""
        if pos.y() < top + self.band(line):
            return self.dates.long_day(line.ts)
        if self.quote_at(line, top, pos):
            return "Show the message this answers"
        if line.kind == "marker" or pos.x() >= self.text_x:
            return ""
        if pos.x() < self.time_w:
            return "" if line.pending else self.dates.full(line.ts)
        return line.sender

    def _text_color(self, line: ChatLine) -> QColor:
        if line.failed or line.kind == "error":
            return self.error
        if line.pending or line.kind == "notice":
            return self.dim
        if line.kind == "more":  # it does something: click it, or Enter
            return self.link
        return self.palette.color(QPalette.ColorRole.Text)

    def link_at(self, line: ChatLine, top: int, width: int, pos: QPoint) -> str | None:
        text = excerpt(line.text) if is_long(line.text) else line.text
        urls = find_urls(text)
        if not urls:
            return None
        layout = self._layout(line, self.text_width(width))
        x, y = pos.x() - self.text_x, pos.y() - top - self.above_text(line) - PAD_Y
        for i in range(layout.lineCount()):
            tl = layout.lineAt(i)
            if tl.y() <= y < tl.y() + self.line_h and 0 <= x <= tl.naturalTextWidth():
                offset = tl.xToCursor(x)
                for start, end, url in utf16_ranges(text, urls):
                    if start <= offset < end:
                        return url if "://" in url else f"https://{url}"
        return None
