"""Dates in the conversation view: a separator per day ("Today", "Yesterday", a weekday, a date), the date
and time in full on hover, times in 12 or 24 hours as the locale does or as chosen in the View menu, and
"Today" becoming "Yesterday" at midnight. Real widgets; messages from a real server over sockets, or fed to
the log as the client does; "now" is a clock given to the view, never the system's time changed."""

from __future__ import annotations

import time as systime
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

import pytest
from PySide6.QtCore import QLocale, QPoint, Qt
from PySide6.QtGui import QImage

from qtchat.client import ChatLine
from qtchat.client.models import MessageLog, literal_html
from qtchat.client.settings import ClientSettings
from qtchat.protocol import Message
from qtchat.server import messages as server_messages
from qtchat.ui.chat_view import ChatView
from qtchat.ui.dates import Dates, without_year
from qtchat.ui.main_window import MainWindow
from qtchat.ui.message_delegate import PAD_X
from qtchat.ui.search_panel import result_meta

from .test_client_window import lines, online

EN = QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
DE = QLocale(QLocale.Language.German, QLocale.Country.Germany)
WEDNESDAY = date(2026, 6, 17)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> int:
    """Milliseconds since the epoch of that local time."""
    return int(datetime.combine(day, time(hour, minute, second)).timestamp() * 1000)


def clock_at(day: date, hour: int = 12) -> Callable[[], float]:
    return lambda: at(day, hour) / 1000


@pytest.fixture
def english() -> Iterator[None]:
    """The locale of the widgets made in the test: American English (12 hours), whatever the machine's."""
    before = QLocale()
    QLocale.setDefault(EN)
    yield
    QLocale.setDefault(before)


def labels(view: ChatView) -> list[tuple[str, str]]:
    """(line text, separator words) of each line the view draws a day's separator above."""
    assert view.model is not None
    view.model.flush()
    return [(ln.text, view.delegate.dates.day_label(ln.ts)) for ln in view.model.lines if ln.day_start]


def measured(view: ChatView) -> bool:
    """The view's row heights are what the delegate measures now (separators included), their tops summed."""
    assert view.model is not None
    heights = [view.delegate.height(ln, view._width) for ln in view.model.lines]
    tops = [sum(heights[:i]) for i in range(len(heights))]
    return view._heights == heights and view._tops == tops and view._total == sum(heights)


# ------------------------------------------------------------ the words


def test_days_are_today_yesterday_a_weekday_then_a_date_with_the_year_when_not_this_one():
    en = Dates(locale=EN, clock=clock_at(WEDNESDAY))
    assert en.day_label(at(WEDNESDAY, 0)) == en.day_label(at(WEDNESDAY, 23, 59, 59)) == "Today"
    assert en.day_label(at(WEDNESDAY - timedelta(days=1), 23, 59, 59)) == "Yesterday"
    assert en.day_label(at(WEDNESDAY - timedelta(days=2), 0)) == "Monday"
    assert en.day_label(at(WEDNESDAY - timedelta(days=6), 9)) == "Thursday"
    assert en.day_label(at(WEDNESDAY - timedelta(days=7), 9)) == "Wednesday, June 10"  # a weekday again: a date
    assert en.day_label(at(date(2025, 12, 31), 9)) == "Wednesday, December 31, 2025"
    assert en.day_label(at(WEDNESDAY + timedelta(days=1), 9)) == "Thursday, June 18"  # a clock ahead: no "Today"
    de = Dates(locale=DE, clock=clock_at(WEDNESDAY))
    assert de.day_label(at(WEDNESDAY - timedelta(days=1), 9)) == "Yesterday"  # the app's words are English
    assert de.day_label(at(WEDNESDAY - timedelta(days=2), 9)) == "Montag"
    assert de.day_label(at(date(2026, 1, 5), 9)) == "Montag, 5. Januar"
    assert de.day_label(at(date(2025, 1, 5), 9)) == "Sonntag, 5. Januar 2025"
    assert en.day_label(10**20) == ""


def test_the_year_goes_with_its_words_and_signs():
    assert without_year("dddd, MMMM d, yyyy") == "dddd, MMMM d"
    assert without_year("dddd, d. MMMM yyyy") == "dddd, d. MMMM"
    assert without_year("dddd d 'de' MMMM 'de' yyyy") == "dddd d 'de' MMMM"
    assert without_year("dddd, d MMMM yyyy\u202f'\u0433'.") == "dddd, d MMMM"  # Russian
    assert without_year("yyyy\u5e74M\u6708d\u65e5dddd") == "M\u6708d\u65e5dddd"
    assert without_year("yyyy. MMMM d., dddd") == "MMMM d., dddd"
    assert without_year("d MMMM yyyy, dddd") == "d MMMM, dddd"
    assert without_year("MMMM yyyy") == "MMMM yyyy"  # too little would be left
    assert without_year("dddd d MMMM") == "dddd d MMMM"


def test_times_follow_the_locale_unless_24_or_12_hours_are_chosen():
    ts = at(WEDNESDAY, 14, 5, 9)
    assert Dates(locale=EN).stamp(ts).replace("\u202f", " ") == "2:05 PM"
    assert Dates(locale=DE).stamp(ts) == "14:05"
    assert Dates("24", locale=EN).stamp(ts) == "14:05" and Dates("12", locale=DE).stamp(ts) == "2:05 PM"
    assert Dates("24", locale=EN).stamp(at(WEDNESDAY, 9, 5)) == "09:05"
    assert Dates("nonsense", locale=DE).hours == "locale"
    full = Dates(locale=EN).full(ts).replace("\u202f", " ")
    assert full.startswith("Wednesday, June 17, 2026 2:05:09 PM")  # then the time zone
    assert Dates("24", locale=EN).full(ts).startswith("Wednesday, June 17, 2026 14:05:09")
    assert Dates(locale=DE).full(ts).startswith("Mittwoch, 17. Juni 2026 14:05:09")
    for far in (10**20, -(10**20)):  # a time no calendar has, from a server: something is drawn, nothing breaks
        assert Dates(locale=EN).stamp(far) and Dates(locale=EN).full(far) and Dates(locale=EN).long_day(far) == ""


# ------------------------------------------------------------ the view


NOON = clock_at(WEDNESDAY)


def make_view(qtbot, clock: Callable[[], float] = NOON, hours: str = "locale") -> ChatView:
    view = ChatView(hours=hours, clock=clock)
    view.delegate.dates.locale = EN
    view.delegate.set_hours(hours)  # measured in the locale given
    view.open_links = False
    qtbot.addWidget(view)
    view.resize(700, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


def day_lines(days: list[tuple[int, int]], start: int = 0) -> list[ChatLine]:
    """A message per (days before WEDNESDAY, hour)."""
    return [ChatLine("msg", f"m{start + i}", at(WEDNESDAY - timedelta(days=d), h), sender="bob", id=start + i + 1)
            for i, (d, h) in enumerate(days)]


def test_the_view_draws_a_separator_per_day_as_part_of_its_first_row(qtbot):
    view = make_view(qtbot)
    log = MessageLog()
    view.set_model(log)
    log.extend(day_lines([(3, 9), (3, 10), (1, 8), (1, 23), (0, 0), (0, 12)]))
    assert labels(view) == [("m0", "Sunday"), ("m2", "Yesterday"), ("m4", "Today")]
    assert log.rowCount() == 6  # the rows are the messages: no row of its own for a separator
    assert measured(view)
    assert view._heights[0] == view._heights[1] + view.delegate.day_h  # same one-line message, plus its day
    assert view._heights[2] == view._heights[3] + view.delegate.day_h
    image = view.viewport().grab().toImage()
    band_y = view._tops[2] - view.verticalScrollBar().value() + view.delegate.day_h // 2
    assert 0 <= band_y < image.height()
    row = {image.pixelColor(x, band_y).name() for x in range(0, image.width(), 2)}
    assert len(row) > 1  # something (the rule, the words) is drawn across the separator
    log.extend([ChatLine("msg", "from a hostile server", 10**20, sender="eve")])
    view.viewport().grab()  # drawn (a paint that raised would fail the test)
    assert labels(view)[-1] == ("from a hostile server", "")


def test_the_full_date_and_time_show_on_hover_over_the_time(qtbot):
    view = make_view(qtbot)
    log = MessageLog()
    view.set_model(log)
    log.extend([*day_lines([(1, 9), (0, 14)]),
                ChatLine("msg", "sending", at(WEDNESDAY, 15), sender="me", own=True, pending=True)])
    view.scroll_to_bottom()
    delegate = view.delegate
    today, pending = log.lines[1], log.lines[2]
    top = view._tops[today.row] - view.verticalScrollBar().value()

    def tip(x: int, y: int) -> str:
        qtbot.mouseMove(view.viewport(), QPoint(x, y))
        return view.viewport().toolTip()

    y = top + delegate.day_h + 5
    assert tip(PAD_X + 2, y) == literal_html(delegate.dates.full(today.ts))
    assert "Wednesday, June 17, 2026" in delegate.dates.full(today.ts)
    assert tip(delegate.time_w + 5, y) == literal_html("bob")  # the name column: the whole name
    assert tip(delegate.text_x + 5, y) == ""  # the text: nothing
    assert tip(delegate.text_x + 5, top + 3) == literal_html("Wednesday, June 17, 2026")  # the separator
    pending_top = view._tops[pending.row] - view.verticalScrollBar().value()
    assert tip(PAD_X + 2, pending_top + 5) == ""  # not sent yet: it has no time of its own


def test_separators_stay_right_and_the_reader_in_place_when_history_is_loaded_above(qtbot):
    view = make_view(qtbot)
    log = MessageLog()
    view.set_model(log)
    log.extend(day_lines([(1, 20)] * 30 + [(0, 9)] * 30, start=100))
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    row = view.row_at(0)
    reading, offset = log.lines[row], bar.value() - view._tops[row]
    log.prepend(day_lines([(2, 9), (1, 7), (1, 8)]))  # "Yesterday" moves up to the older page's morning
    assert labels(view) == [("m0", "Monday"), ("m1", "Yesterday"), ("m130", "Today")]
    assert measured(view)
    assert view.row_at(0) == reading.row and bar.value() - view._tops[reading.row] == offset  # not moved


def test_separators_stay_right_and_the_reader_in_place_when_the_log_is_trimmed(qtbot):
    view = make_view(qtbot)
    log = MessageLog()
    log.CAP, log.TRIM_TO, log.READING_CAP = 60, 50, 80
    view.set_model(log)
    log.extend(day_lines([(1, 20)] * 40, start=0))
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() - 3 * view.delegate.line_h)  # reading: the log keeps up to READING_CAP
    row = view.row_at(0)
    reading, offset = log.lines[row], bar.value() - view._tops[row]
    log.extend(day_lines([(1, 21)] * 45, start=40))
    assert log.lines[0].text == "m15" and labels(view) == [("m15", "Yesterday")]  # the new top has it
    assert measured(view)
    assert view.row_at(0) == reading.row and bar.value() - view._tops[reading.row] == offset


def test_today_becomes_yesterday_at_midnight(qtbot):
    start, started = at(WEDNESDAY, 23, 59, 58) / 1000 + 0.5, systime.monotonic()
    view = make_view(qtbot, clock=lambda: start + systime.monotonic() - started)  # 1.5 s before midnight
    assert 0 < view._day_timer.remainingTime() <= 2000
    log = MessageLog()
    view.set_model(log)
    log.extend(day_lines([(0, 10)]))
    assert labels(view) == [("m0", "Today")]
    qtbot.waitUntil(lambda: view.today == WEDNESDAY + timedelta(days=1), timeout=5000)
    assert labels(view) == [("m0", "Yesterday")]
    assert view._day_timer.isActive() and view._day_timer.remainingTime() > 60_000  # armed for the next one
    log.extend([ChatLine("msg", "after midnight", int(view.delegate.dates.clock() * 1000), sender="bob")])
    assert labels(view) == [("m0", "Yesterday"), ("after midnight", "Today")]


def test_arrow_keys_still_scroll_and_nothing_keeps_the_focus(window, qtbot):
    log = window.conversation.log
    log.extend(day_lines([(d, h) for d in (3, 2, 1, 0) for h in range(8, 20)]))
    view = window.view
    view.setFocus()
    bar = view.verticalScrollBar()
    assert view.at_bottom and bar.maximum() > 0
    value = bar.value()
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert bar.value() < value and view.hasFocus()
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert bar.value() < value and view.hasFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert not view.hasFocus()  # Tab goes on to the next widget


# ------------------------------------------------------------ the window, a real server


def test_a_conversation_over_three_days_has_a_separator_per_day(server, connect, window, qtbot, monkeypatch):
    bob = connect()
    bob.login("bob")
    today = date.today()
    for days, text in ((2, "two days ago"), (1, "yesterday evening")):
        monkeypatch.setattr(server_messages, "now_ms", lambda d=days: at(today - timedelta(days=d), 19))
        bob.say(text)
        bob.wait_event(Message, text=text)  # stamped by the server at that time
    monkeypatch.undo()
    bob.say("this morning")
    bob.wait_event(Message, text="this morning")
    online(qtbot, window, server.port)  # the lobby's history comes with the login
    qtbot.waitUntil(lambda: any(ln.text == "this morning" for ln in lines(window)))
    view = window.view
    view.delegate.dates.locale = EN
    two_days_ago = EN.dayName((today - timedelta(days=2)).isoweekday(), QLocale.FormatType.LongFormat)
    found = labels(view)
    assert [w for _, w in found] == [two_days_ago, "Yesterday", "Today"]
    assert found[:2] == [("two days ago", two_days_ago), ("yesterday evening", "Yesterday")]
    assert measured(view)


def test_a_message_after_midnight_gets_a_separator_and_today_becomes_yesterday(server, connect, window, qtbot,
                                                                                monkeypatch):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    today = date.today()
    tomorrow = today + timedelta(days=1)
    for ts, text in ((at(today, 23, 59, 58), "just before midnight"), (at(tomorrow, 0, 0, 2), "just after")):
        monkeypatch.setattr(server_messages, "now_ms", lambda ts=ts: ts)
        bob.say(text)
        qtbot.waitUntil(lambda t=text: any(ln.text == t for ln in lines(window)))
    view = window.view
    starts = [ln.text for ln in lines(window) if ln.day_start]
    assert starts[-1] == "just after" and "just before midnight" not in starts
    view.delegate.dates.clock = lambda: at(tomorrow, 0, 5) / 1000  # the reader's clock passed midnight too
    assert labels(view)[-2:] == [(lines(window)[0].text, "Yesterday"), ("just after", "Today")]


def time_column(view: ChatView, line: ChatLine) -> QImage:
    """The time column of the line's row as drawn."""
    view.reveal(line)
    top = view._tops[line.row] - view.verticalScrollBar().value() + view.delegate.band(line)
    return view.viewport().grab().toImage().copy(0, top, view.delegate.time_w, view._heights[line.row] - view.delegate.band(line))


def test_the_hours_setting_changes_the_times_drawn_and_is_remembered(english, window, qtbot):
    log = window.conversation.log
    line = log.append(ChatLine("msg", "hello", at(date.today(), 14, 5), sender="bob"))
    log.flush()
    view = window.view
    actions = window.view_actions
    assert actions["hours:locale"].isChecked() and not actions["hours:24"].isChecked()
    assert view.delegate.dates.stamp(line.ts).replace("\u202f", " ") == "2:05 PM"
    column = time_column(view, line)
    twelve_x = view.delegate.text_x
    actions["hours:24"].trigger()
    assert ClientSettings().hours == "24" and actions["hours:24"].isChecked()
    assert not actions["hours:locale"].isChecked()  # one choice at a time
    assert view.delegate.dates.stamp(line.ts) == "14:05"
    assert view.delegate.text_x < twelve_x and measured(view)  # a narrower time column, rows measured again
    assert time_column(view, line) != column
    window.workspace.open_private("carol")  # a view made later follows the setting too
    carol = window.workspace.private("carol")
    assert carol is not None and window.views[carol].delegate.dates.hours == "24"
    result = Message(id=1, ts=line.ts, sender="bob", text="hello", room="lobby")  # a search result's time too
    assert result_meta(result, window.search_panel.delegate.dates).endswith("14:05")
    actions["hours:12"].trigger()
    assert ClientSettings().hours == "12"
    assert {v.delegate.dates.hours for v in window.views.values()} == {"12"}
    assert result_meta(result, window.search_panel.delegate.dates).replace("\u202f", " ").endswith("2:05 PM")
    again = MainWindow(window.client, ClientSettings())
    qtbot.addWidget(again)
    assert again.view_actions["hours:12"].isChecked() and again.view.delegate.dates.hours == "12"
    again._quitting = True
