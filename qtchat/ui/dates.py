"""How the conversation view writes times and days, in the user's locale (QLocale) and time zone.

``Dates`` is what one view uses: each message's time, in 24 or 12 hours as the locale does, unless the
user chose one (``hours``: View > Time of day, kept in ``ClientSettings.hours``); the label of the
separator above the first line of each day, as Element does: "Today", "Yesterday", the weekday within
the last week, else the locale's long date, with the year only when it is not this year's; and the full
date and time shown on hover. ``clock`` is "now" in seconds since the epoch (the tests give their own).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

from PySide6.QtCore import QDate, QDateTime, QLocale, QTime
from PySide6.QtGui import QFontMetrics

from qtchat.client.models import day_of

LOCALE, H24, H12 = "locale", "24", "12"
HOURS = (LOCALE, H24, H12)
TODAY = "Today"
YESTERDAY = "Yesterday"
RECHECK_MS = 15 * 60 * 1000  # a timer that waits longer may wake late after the machine slept
_FIELD = re.compile(r"'(?:[^']|'')*'|(d+|M+|y+)")  # a quoted literal, or a field of a Qt date format
_LONG = QLocale.FormatType.LongFormat
_SHORT = QLocale.FormatType.ShortFormat
_FARTHEST = 1 << 62  # ms: a server's time past this (a qint64 no more) is drawn as this


def _moment(ts: int) -> QDateTime:
    return QDateTime.fromMSecsSinceEpoch(max(-_FARTHEST, min(_FARTHEST, ts)))


def without_year(fmt: str) -> str:
    """A Qt date format without its year and the words or signs that go with it ("dddd, MMMM d, yyyy" ->
    "dddd, MMMM d"; "yyyy年M月d日dddd" -> "M月d日dddd"; Russian's "d MMMM yyyy 'g'." -> "d MMMM"). The format itself
    when it has no one year field, or when too little would be left."""
    fields = [(m.start(), m.end(), m.group(1)) for m in _FIELD.finditer(fmt) if m.group(1)]
    years = [i for i, (_, _, f) in enumerate(fields) if f[0] == "y"]
    if len(years) != 1 or len(fields) < 3:
        return fmt
    i = years[0]
    if i == 0:  # first: with what follows it, up to the next field
        start, end = 0, fields[1][0]
    else:  # after a field: with what comes before it, and at the end with what follows it too
        start, end = fields[i - 1][1], len(fmt) if i == len(fields) - 1 else fields[i][1]
    return fmt[:start] + fmt[end:]


class Dates:
    """Times and days as one view writes them (see the module's docstring)."""

    def __init__(self, hours: str = LOCALE, locale: QLocale | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.hours = hours if hours in HOURS else LOCALE
        self.locale = locale if locale is not None else QLocale()
        self.clock = clock

    def time_format(self, seconds: bool = False) -> str:
        """The Qt time format of a message's time (with seconds and the time zone: of the full one)."""
        if self.hours == H24:
            return "HH:mm:ss t" if seconds else "HH:mm"
        if self.hours == H12:
            return "h:mm:ss Ap t" if seconds else "h:mm Ap"
        return self.locale.timeFormat(_LONG if seconds else _SHORT)

    def stamp(self, ts: int) -> str:
        """A message's time of day, as its row shows it."""
        return self.locale.toString(_moment(ts).time(), self.time_format())

    def stamp_width(self, fm: QFontMetrics) -> int:
        """The width the widest time of day takes (the time column's)."""
        fmt = self.time_format()
        return max(fm.horizontalAdvance(self.locale.toString(QTime(h, 58), fmt)) for h in (0, 8, 10, 12, 20, 23))

    def full(self, ts: int) -> str:
        """The date and time in full (on hover over a message's time)."""
        fmt = f"{self.locale.dateFormat(_LONG)} {self.time_format(seconds=True)}"
        return self.locale.toString(_moment(ts), fmt).strip()

    def long_day(self, ts: int) -> str:
        """The day in full, with its year (on hover over a day's separator)."""
        day = day_of(ts)
        return "" if day is None else self.locale.toString(QDate(day.year, day.month, day.day), _LONG)

    def today(self) -> date:
        return date.fromtimestamp(self.clock())

    def day_label(self, ts: int) -> str:
        """The words of the separator above the first line of the day of ``ts``."""
        day = day_of(ts)
        if day is None:
            return ""
        today = self.today()
        ago = (today - day).days
        if ago == 0:
            return TODAY
        if ago == 1:
            return YESTERDAY
        qday = QDate(day.year, day.month, day.day)
        if 1 < ago < 7:
            return self.locale.dayName(qday.dayOfWeek(), _LONG)
        fmt = self.locale.dateFormat(_LONG)
        return self.locale.toString(qday, without_year(fmt) if day.year == today.year else fmt)

    def ms_to_midnight(self) -> int:
        """How long until the labels change (the next local midnight), at most RECHECK_MS."""
        now = self.clock()
        tomorrow = datetime.combine(date.fromtimestamp(now) + timedelta(days=1), datetime.min.time())
        return max(1, min(RECHECK_MS, int((tomorrow.timestamp() - now) * 1000) + 200))
