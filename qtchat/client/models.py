"""Qt item models for the client: the conversation log and the user list (no widgets)."""

from __future__ import annotations

import bisect
import html
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont

Index = QModelIndex | QPersistentModelIndex


def literal_html(text: str) -> str:
    """Rich text that shows ``text`` exactly, for the places where Qt guesses whether a string is rich text
    (tooltips, message boxes, input dialog labels): user text goes in escaped, whitespace kept."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>" if text else ""


_day_span = [0, 0, 0]  # the last day asked about: [its first ms, the next day's first ms, its ordinal]


def local_day(ts: int) -> int:
    """The local calendar day of ``ts`` (ms since the epoch) as a date ordinal; 0 for a time no calendar
    has. Lines of one day mostly come together: the day last asked about is kept with its bounds."""
    start, end, day = _day_span
    if start <= ts < end:
        return day
    try:
        today = datetime.fromtimestamp(ts / 1000).date()
        start = int(datetime.combine(today, datetime.min.time()).timestamp() * 1000)
        end = int(datetime.combine(today + timedelta(days=1), datetime.min.time()).timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return 0
    day = today.toordinal()
    if start <= ts < end:  # not so around a change of the clocks that skips midnight: then not kept
        _day_span[:] = start, end, day
    return day


def day_of(ts: int) -> date | None:
    """The local calendar day of ``ts`` (ms since the epoch), or None for a time no calendar has."""
    day = local_day(ts)
    return date.fromordinal(day) if day else None


@dataclass(slots=True, eq=False)
class ChatLine:
    """One line of the conversation as the view shows it.

    ``kind`` is "msg" for chat, "notice" for system notices (joins, leaves,
    connection state) and "error" for problems the user should see.
    """

    kind: str
    text: str
    ts: int  # milliseconds since the epoch
    sender: str = ""
    own: bool = False
    pending: bool = False
    failed: bool = False
    mention: bool = False
    id: int | None = None
    cid: str | None = None
    private: str | None = None  # a private message: the other person
    highlight: bool = False  # the message a search result pointed to
    row: int = -1
    repeats: int = 1  # a notice or error said this many times in a row, shown once ("(\\u00d7N)" at its end)
    edited: int = 0  # when its text was last replaced (ms); 0: never
    deleted: bool = False  # deleted: its text is empty, the view shows a placeholder
    reply_to: int = 0  # the message it answers, and a quote of it: its sender ("" when deleted or not here)...
    reply_from: str = ""
    reply_text: str = ""  # ...and the start of its text
    reactions: dict[str, int] = field(default_factory=dict)  # emoji -> how many gave it
    mine: tuple[str, ...] = ()  # those of them that are ours
    day_start: bool = False  # the first line of its local day in its log: the view draws the day above it
    layout: Any = field(default=None, repr=False)  # the view's cache (width, height, text layout)


class MessageLog(QAbstractListModel):
    """The conversation: an append-mostly list of ChatLine, a bounded window of it.

    Appends are gathered and inserted once per event-loop pass, so a burst of
    thousands of messages costs the views one rowsInserted, not thousands.

    At most ``CAP`` lines are kept: past it the oldest are let go down to ``TRIM_TO`` (one
    rowsRemoved from the top, and ``trimmed`` is emitted, so that the conversation knows there are
    older messages to load from the server again). While the reader is scrolled up (``reading``, the
    view sets it) the log may grow to ``READING_CAP`` first, so that their place is not pulled away.

    Each line's ``day_start`` says whether it is the first of its local day here (the first line always
    is): kept right as lines come, go and change, a line whose mark changed is told as changed.

    Signals:
        trimmed(): older lines were let go.
    """

    LineRole = int(Qt.ItemDataRole.UserRole) + 1
    CAP = 5000
    TRIM_TO = 4500
    READING_CAP = 10_000

    trimmed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.reading = False  # the reader is scrolled up: let the log grow further before trimming
        self.lines: list[ChatLine] = []
        self._incoming: list[ChatLine] = []
        self._by_cid: dict[str, ChatLine] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.flush)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.lines)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.lines):
            return None
        line = self.lines[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{line.sender}: {line.text}" if line.sender else line.text
        if role == self.LineRole:
            return line
        return None

    def append(self, line: ChatLine) -> ChatLine:
        self._incoming.append(line)
        if line.cid is not None:
            self._by_cid[line.cid] = line
        if not self._timer.isActive():
            self._timer.start()
        return line

    def last(self) -> ChatLine | None:
        """The newest line, inserted or still to be."""
        return self._incoming[-1] if self._incoming else self.lines[-1] if self.lines else None

    def say(self, kind: str, text: str, ts: int) -> ChatLine:
        """A notice or an error: the same one said again right after itself is folded into its line
        ("text (\\u00d7N)"), so a flood of notices costs one line."""
        last = self.last()
        if last is not None and last.kind == kind and last.sender == "" and last.id is None \
                and last.text.startswith(text) and last.text[len(text):] in ("", f" (\u00d7{last.repeats})"):
            last.repeats += 1
            last.text, last.ts = f"{text} (\u00d7{last.repeats})", ts
            if last.row >= 0:
                self.changed(last)
            return last
        return self.append(ChatLine(kind, text, ts))

    def flush(self) -> None:
        """Insert the lines appended since the last pass (done automatically)."""
        if not self._incoming:
            return
        incoming, self._incoming = self._incoming, []
        first = len(self.lines)
        for i, line in enumerate(incoming):
            line.row = first + i
        self.beginInsertRows(QModelIndex(), first, first + len(incoming) - 1)
        self.lines.extend(incoming)
        self._mark_days(first, len(self.lines))
        self.endInsertRows()
        self.trim()

    def trim(self) -> None:
        """Let the oldest lines go once there are more than the cap (done after each flush)."""
        cap = self.READING_CAP if self.reading else self.CAP
        if len(self.lines) <= cap:
            return
        cut = len(self.lines) - (cap - (self.CAP - self.TRIM_TO))
        self.beginRemoveRows(QModelIndex(), 0, cut - 1)
        for line in self.lines[:cut]:
            line.row = -1
            if line.cid is not None and self._by_cid.get(line.cid) is line:
                del self._by_cid[line.cid]
        del self.lines[:cut]
        for i, line in enumerate(self.lines):
            line.row = i
        self.endRemoveRows()
        self._recheck_day(0)
        self.trimmed.emit()

    def prepend(self, lines: list[ChatLine]) -> None:
        """Insert older lines at the top (a history page)."""
        if not lines:
            return
        self.flush()
        self.beginInsertRows(QModelIndex(), 0, len(lines) - 1)
        self.lines[0:0] = lines
        for i, line in enumerate(self.lines):
            line.row = i
        self._mark_days(0, len(lines))
        self.endInsertRows()
        self._recheck_day(len(lines))

    def insert_before(self, line: ChatLine, lines: list[ChatLine]) -> None:
        """Insert lines just before ``line`` (messages missed there, loaded on demand)."""
        self.flush()
        if not lines or not self.holds(line):
            return
        at = line.row
        self.beginInsertRows(QModelIndex(), at, at + len(lines) - 1)
        self.lines[at:at] = lines
        for i in range(at, len(self.lines)):
            self.lines[i].row = i
        self._mark_days(at, at + len(lines))
        self.endInsertRows()
        self._recheck_day(at + len(lines))
        self.trim()

    def remove(self, line: ChatLine) -> None:
        """Take this line out (a "more" line whose messages are all in)."""
        self.flush()
        if not self.holds(line):
            return
        at = line.row
        self.beginRemoveRows(QModelIndex(), at, at)
        del self.lines[at]
        line.row = -1
        for i in range(at, len(self.lines)):
            self.lines[i].row = i
        self.endRemoveRows()
        self._recheck_day(at)

    def extend(self, lines: list[ChatLine]) -> None:
        """Append lines now (a page of newer history), not on the next pass."""
        for line in lines:
            self.append(line)
        self.flush()

    def reset(self, lines: list[ChatLine]) -> None:
        """Show these lines instead of the ones there were."""
        self.beginResetModel()
        self._incoming = []
        self._by_cid = {ln.cid: ln for ln in lines if ln.cid is not None and ln.pending}
        self.lines = list(lines)
        for i, line in enumerate(self.lines):
            line.row = i
        self._mark_days(0, len(self.lines))
        self.endResetModel()

    def by_id(self, mid: int) -> ChatLine | None:
        """The line of the message with this id, if it is here (searched from the newest)."""
        self.flush()
        return next((ln for ln in reversed(self.lines) if ln.id == mid), None)

    def oldest_id(self) -> int | None:
        """The id of the oldest stored message shown here (notices and pending lines have none)."""
        return next((ln.id for ln in self.lines if ln.id is not None), None)

    def newest_id(self) -> int | None:
        """The id of the newest stored message inserted here."""
        return next((ln.id for ln in reversed(self.lines) if ln.id is not None), None)

    def holds(self, line: ChatLine) -> bool:
        return 0 <= line.row < len(self.lines) and self.lines[line.row] is line

    def by_cid(self, cid: str) -> ChatLine | None:
        return self._by_cid.get(cid)

    def changed(self, line: ChatLine) -> None:
        """Tell the views a line changed (acknowledged, failed)."""
        if line.cid is not None and not line.pending:
            self._by_cid.pop(line.cid, None)
        line.layout = None
        if line.row >= 0:
            held = self.holds(line)
            if held:  # its time may have changed (the server's, on an acknowledgement)
                line.day_start = self._starts_day(line.row)
            index = self.index(line.row)
            self.dataChanged.emit(index, index)
            if held:
                self._recheck_day(line.row + 1)

    def _starts_day(self, row: int) -> bool:
        return row == 0 or local_day(self.lines[row - 1].ts) != local_day(self.lines[row].ts)

    def _mark_days(self, first: int, end: int) -> None:
        """Set ``day_start`` on the new rows first..end-1 (a line that was in another log, and measured
        there, is measured again if its mark changed)."""
        lines = self.lines
        prev = local_day(lines[first - 1].ts) if first > 0 else None
        for i in range(first, end):
            line = lines[i]
            day = local_day(line.ts)
            if line.day_start != (day != prev):
                line.day_start = day != prev
                line.layout = None
            prev = day

    def _recheck_day(self, row: int) -> None:
        """The row's neighbour above changed: if that makes it start its day, or not, the views are told."""
        if 0 <= row < len(self.lines):
            line = self.lines[row]
            start = self._starts_day(row)
            if start != line.day_start:
                line.day_start = start
                line.layout = None
                index = self.index(row)
                self.dataChanged.emit(index, index)


class UserListModel(QAbstractListModel):
    """The users in the room, sorted case-insensitively.

    Signals:
        count_changed(int)
    """

    count_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self._keys: list[str] = []
        self.away: dict[str, str] = {}  # who of them is away: name -> message (maybe empty)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.names)

    me = ""  # your own name, shown in bold
    NameRole = int(Qt.ItemDataRole.UserRole) + 1  # the name (a view may show more, e.g. "@" for an operator)
    OperatorRole = int(Qt.ItemDataRole.UserRole) + 2
    AwayRole = int(Qt.ItemDataRole.UserRole) + 3  # the away message ("" for none), or None when here
    operators: frozenset[str] = frozenset()  # the room operators' names, casefolded

    def set_operators(self, names: tuple[str, ...]) -> None:
        self.operators = frozenset(n.casefold() for n in names)
        if self.names:
            self.dataChanged.emit(self.index(0), self.index(len(self.names) - 1))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.names):
            return None
        name = self.names[index.row()]
        if role == self.NameRole:
            return name
        if role == self.OperatorRole:
            return name.casefold() in self.operators
        if role == self.AwayRole:
            return self.away.get(name)
        if role == Qt.ItemDataRole.DisplayRole:
            return name
        if role == Qt.ItemDataRole.ToolTipRole:
            return literal_html(name)
        if role == Qt.ItemDataRole.FontRole and name == self.me:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def reset(self, names: list[str], away: dict[str, str] | None = None) -> None:
        self.beginResetModel()
        pairs = sorted((n.casefold(), n) for n in set(names))
        self._keys = [k for k, _ in pairs]
        self.names = [n for _, n in pairs]
        listed = set(self.names)
        self.away = {n: m for n, m in (away or {}).items() if n in listed}
        self.endResetModel()
        self.count_changed.emit(len(self.names))

    def set_away(self, name: str, message: str | None) -> None:
        """``name`` is away with this message (maybe empty), or here again (None)."""
        if message is None:
            if self.away.pop(name, None) is None:
                return
        else:
            self.away[name] = message
        row = self._row(name)
        if row is not None:
            self.dataChanged.emit(self.index(row), self.index(row))

    def _row(self, name: str) -> int | None:
        key = name.casefold()
        row = bisect.bisect_left(self._keys, key)
        while row < len(self.names) and self._keys[row] == key:
            if self.names[row] == name:
                return row
            row += 1
        return None

    def add(self, name: str) -> None:
        key = name.casefold()
        row = bisect.bisect_left(self._keys, key)
        if row < len(self.names) and self.names[row] == name:
            return
        self.beginInsertRows(QModelIndex(), row, row)
        self._keys.insert(row, key)
        self.names.insert(row, name)
        self.endInsertRows()
        self.count_changed.emit(len(self.names))

    def remove(self, name: str) -> None:
        key = name.casefold()
        row = bisect.bisect_left(self._keys, key)
        while row < len(self.names) and self._keys[row] == key:
            if self.names[row] == name:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._keys[row]
                del self.names[row]
                self.away.pop(name, None)
                self.endRemoveRows()
                self.count_changed.emit(len(self.names))
                return
            row += 1

    def completions(self, prefix: str) -> list[str]:
        """Names starting with ``prefix`` (case-insensitively), in list order."""
        key = prefix.casefold()
        return [n for k, n in zip(self._keys, self.names, strict=True) if k.startswith(key)]
