"""The conversation log marks the first line of each local day (``ChatLine.day_start``), and keeps the marks
right as lines come, go and change: appends, history pages above, trimming, missed messages, an
acknowledgement's time, a search result's context (real MessageLog, no view; the last test with a real
server whose clock is set back while older days' messages are sent)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

from qtchat.client import Workspace
from qtchat.client.models import ChatLine, MessageLog, day_of, local_day
from qtchat.protocol import Message
from qtchat.server import messages as server_messages

from .test_search import msg_texts, wait_search
from .test_session import login

DAY = date(2026, 3, 10)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> int:
    """Milliseconds since the epoch of that local time."""
    return int(datetime.combine(day, time(hour, minute, second)).timestamp() * 1000)


def msg(text: str, ts: int, mid: int | None = None, **kw) -> ChatLine:
    return ChatLine("msg", text, ts, sender="bob", id=mid, **kw)


def starts(log: MessageLog) -> list[str]:
    log.flush()
    return [ln.text for ln in log.lines if ln.day_start]


def changed_rows(log: MessageLog) -> list[int]:
    rows: list[int] = []
    log.dataChanged.connect(lambda first, last, roles=None: rows.extend(range(first.row(), last.row() + 1)))
    return rows


def test_local_days_split_at_local_midnight():
    before, after = at(DAY, 23, 59, 59) + 999, at(DAY + timedelta(days=1), 0)
    assert local_day(before) == DAY.toordinal() and local_day(after) == DAY.toordinal() + 1
    assert local_day(at(DAY, 0)) == local_day(at(DAY, 12)) == local_day(before)  # the same span, cached
    assert day_of(at(DAY, 8)) == DAY
    assert day_of(10**20) is None and local_day(-(10**20)) == 0  # no calendar has those: nothing breaks


def test_separators_come_between_days_and_not_within_one(qtbot):
    log = MessageLog()
    for i, (day, hour) in enumerate([(0, 9), (0, 10), (0, 23), (1, 0), (1, 8), (3, 12)]):
        log.append(msg(f"m{i}", at(DAY + timedelta(days=day), hour)))
    assert starts(log) == ["m0", "m3", "m5"]  # the first line of the log starts its day too
    log.append(msg("later that day", at(DAY + timedelta(days=3), 13)))
    log.append(msg("next day", at(DAY + timedelta(days=4), 7)))
    assert starts(log) == ["m0", "m3", "m5", "next day"]  # a message arriving on a new day gets one


def test_history_above_takes_the_separator_of_its_day_from_the_old_top(qtbot):
    log = MessageLog()
    log.extend([msg("noon", at(DAY, 12), 10), msg("one", at(DAY, 13), 11)])
    rows = changed_rows(log)
    log.prepend([msg("older day", at(DAY - timedelta(days=1), 20), 5), msg("morning", at(DAY, 8), 6)])
    assert starts(log) == ["older day", "morning"]  # "noon" does not start its day any more
    assert rows == [2] and log.lines[2].layout is None  # the view is told, and measures it again
    rows.clear()
    log.prepend([msg("week before", at(DAY - timedelta(days=7), 9), 1)])
    assert starts(log) == ["week before", "older day", "morning"] and rows == []  # another day: kept
    log.prepend([msg("same week day", at(DAY - timedelta(days=7), 8), 0)])
    assert starts(log) == ["same week day", "older day", "morning"] and rows == [1]


def test_trimming_gives_the_new_top_line_its_separator(qtbot):
    log = MessageLog()
    log.CAP, log.TRIM_TO, log.READING_CAP = 10, 8, 20
    log.extend([msg(f"a{i}", at(DAY, 9, i), i) for i in range(6)])
    rows = changed_rows(log)
    with qtbot.waitSignal(log.trimmed, timeout=1000):
        log.extend([msg(f"b{i}", at(DAY + timedelta(days=1), 9, i), 10 + i) for i in range(5)])
    assert [ln.text for ln in log.lines][:2] == ["a3", "a4"]  # the oldest went, down to TRIM_TO
    assert starts(log) == ["a3", "b0"] and rows == [0]
    log.extend([msg(f"c{i}", at(DAY + timedelta(days=1), 10, i), 20 + i) for i in range(3)])
    assert log.lines[0].text == "b0" and starts(log) == ["b0"] and rows == [0]  # it started its day already


def test_missed_messages_inserted_and_the_more_line_removed_keep_the_days(qtbot):
    log = MessageLog()
    more = ChatLine("more", "load the next ones", at(DAY + timedelta(days=1), 9))
    log.extend([msg("before", at(DAY, 20), 1), more, msg("after", at(DAY + timedelta(days=1), 9, 30), 50)])
    assert starts(log) == ["before", "load the next ones"]
    rows = changed_rows(log)
    log.insert_before(more, [msg("missed late", at(DAY, 23), 2), msg("missed early", at(DAY + timedelta(days=1), 1), 3)])
    assert starts(log) == ["before", "missed early"] and rows == [3]  # the more line gave its separator up
    rows.clear()
    log.remove(more)
    assert starts(log) == ["before", "missed early"] and rows == []
    log.remove(log.lines[2])  # "missed early": "after" starts the day now
    assert starts(log) == ["before", "after"] and rows == [2]


def test_a_time_that_changes_moves_the_separator(qtbot):
    log = MessageLog()
    mine = msg("mine", at(DAY, 23, 59, 59), cid="c1", pending=True, own=True)
    log.extend([msg("evening", at(DAY, 22), 1), mine, msg("next", at(DAY + timedelta(days=1), 0, 1), 3)])
    assert starts(log) == ["evening", "next"]
    rows = changed_rows(log)
    mine.pending, mine.id, mine.ts = False, 2, at(DAY + timedelta(days=1), 0, 0, 1)  # the server's time
    log.changed(mine)
    assert starts(log) == ["evening", "mine"] and sorted(rows) == [1, 2]
    rows.clear()
    stray = msg("in another log", at(DAY, 1))
    stray.row = 1
    log.changed(stray)  # not a line of this log: nothing of this log is marked for it
    assert starts(log) == ["evening", "mine"] and not stray.day_start


def test_a_reset_log_marks_its_lines_and_lines_moved_from_another_log_are_measured_again(qtbot):
    context = MessageLog()
    context.reset([msg("found", at(DAY, 9), 1), msg("after it", at(DAY, 10), 2)])
    assert starts(context) == ["found"]
    live = MessageLog()
    live.extend([msg("today", at(DAY, 8), 0)])
    moved = context.lines[0]
    moved.layout = (500, 40, 100)  # measured by a view with its separator
    live.reset([msg("earlier", at(DAY, 7)), moved])
    assert starts(live) == ["earlier"] and moved.layout is None


def test_a_search_result_opens_with_its_days_marked_and_they_stay_right_once_joined_to_the_live_ones(
        server, connect, client, qtbot, monkeypatch):
    bob = connect()
    bob.login("bob")
    today = date.today()
    texts = [f"message {i}" + (" needle" if i == 37 else "") for i in range(300)]
    for days, first, end in ((3, 0, 50), (1, 50, 250), (0, 250, 300)):  # three days ago, yesterday, today
        seconds = itertools.count()
        if days:
            monkeypatch.setattr(server_messages, "now_ms", lambda d=days, s=seconds: at(today - timedelta(days=d), 9)
                                + 1000 * next(s))
        else:
            monkeypatch.undo()
        for text in texts[first:end]:
            bob.say(text)
        bob.wait_for(lambda n=end: len(bob.of(Message)) >= n, timeout=20)  # all stamped before the clock moves
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    lobby = ws.lobby
    qtbot.waitUntil(lambda: len(msg_texts(lobby.log)) == 50)  # the newest page: 250..299, today's
    assert starts(lobby.log) == ["message 250"]
    assert ws.search.start("needle")
    wait_search(qtbot, ws.search)
    with qtbot.waitSignal(lobby.focus_requested, timeout=5000):
        assert ws.show_message(ws.search.results[0].room, ws.search.results[0].id)
    assert lobby.context is not None
    assert starts(lobby.context) == ["message 7", "message 50"]  # the page around it: 7..66
    assert lobby.load_older()
    qtbot.waitUntil(lambda: msg_texts(lobby.context)[0] == "message 0")
    assert starts(lobby.context) == ["message 0", "message 50"]  # "message 7" does not start its day now
    with qtbot.waitSignal(lobby.view_changed, timeout=10000):
        while lobby.context is not None:
            lobby.load_newer()
            qtbot.wait(20)
    assert msg_texts(lobby.log) == texts
    assert starts(lobby.log) == ["message 0", "message 50", "message 250"]
