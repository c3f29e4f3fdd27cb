"""The client core's Qt models on their own: the conversation log and the user list (real models, no view)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex

from qtchat.client.models import ChatLine, MessageLog, UserListModel, literal_html


def msg(text: str, mid: int | None = None, **kw) -> ChatLine:
    return ChatLine("msg", text, 1_700_000_000_000, id=mid, **kw)


def test_appends_in_one_pass_are_inserted_once_in_order(qtbot):
    log = MessageLog()
    inserts: list[tuple[int, int]] = []
    log.rowsInserted.connect(lambda parent, first, last: inserts.append((first, last)))
    for i in range(3):
        log.append(msg(f"m{i}", i + 1))
    assert log.rowCount() == 0  # not yet: the next pass inserts them
    qtbot.waitUntil(lambda: log.rowCount() == 3)
    assert inserts == [(0, 2)]
    assert [ln.row for ln in log.lines] == [0, 1, 2]
    assert log.data(log.index(1)) == "m1"


def test_prepend_renumbers_and_ids_skip_lines_without_one(qtbot):
    log = MessageLog()
    log.append(ChatLine("notice", "joined", 0))
    log.append(msg("live", 10))
    log.prepend([msg("old 1", 3), msg("old 2", 4)])  # flushes the appended lines first
    assert [ln.text for ln in log.lines] == ["old 1", "old 2", "joined", "live"]
    assert [ln.row for ln in log.lines] == [0, 1, 2, 3]
    assert (log.oldest_id(), log.newest_id()) == (3, 10)
    assert log.by_id(4) is log.lines[1] and log.by_id(99) is None
    assert log.holds(log.lines[2]) and not log.holds(msg("elsewhere", 5))


def test_a_pending_line_is_found_by_cid_until_acknowledged(qtbot):
    log = MessageLog()
    line = log.append(msg("mine", cid="c1", pending=True, sender="alice"))
    log.flush()
    assert log.by_cid("c1") is line
    assert log.data(log.index(0)) == "alice: mine"
    line.pending, line.id = False, 7
    with qtbot.waitSignal(log.dataChanged, timeout=1000) as changed:
        log.changed(line)
    assert changed.args[0].row() == 0
    assert log.by_cid("c1") is None  # acknowledged: a repeated ack is not matched to it again


def test_reset_keeps_only_pending_lines_findable_by_cid(qtbot):
    log = MessageLog()
    waiting = msg("waiting", cid="a", pending=True)
    done = msg("done", 5, cid="b")
    with qtbot.waitSignal(log.modelReset, timeout=1000):
        log.reset([done, waiting])
    assert log.rowCount() == 2 and [ln.row for ln in log.lines] == [0, 1]
    assert log.by_cid("a") is waiting and log.by_cid("b") is None


def test_out_of_range_indexes_give_nothing(qtbot):
    log = MessageLog()
    assert log.data(log.index(0)) is None
    assert log.data(QModelIndex()) is None
    assert log.rowCount(log.index(0)) == 0


def test_user_list_sorts_case_insensitively_and_completes(qtbot):
    users = UserListModel()
    with qtbot.waitSignal(users.count_changed, timeout=1000) as counted:
        users.reset(["bob", "Anna", "carol", "bob"])
    assert counted.args == [3]
    assert users.names == ["Anna", "bob", "carol"]
    users.add("annabel")
    assert users.names == ["Anna", "annabel", "bob", "carol"]
    assert users.completions("AN") == ["Anna", "annabel"]
    assert users.completions("z") == []


def test_user_list_ignores_a_name_twice_and_an_unknown_removal(qtbot):
    users = UserListModel()
    users.reset(["alice", "bob"])
    with qtbot.assert_not_emitted(users.count_changed), qtbot.assert_not_emitted(users.rowsInserted):
        users.add("bob")
    with qtbot.assert_not_emitted(users.count_changed), qtbot.assert_not_emitted(users.rowsRemoved):
        users.remove("carol")
        users.remove("BOB")  # names are exact here: "BOB" is not "bob"
    assert users.names == ["alice", "bob"]
    with qtbot.waitSignal(users.count_changed, timeout=1000) as counted:
        users.remove("bob")
    assert counted.args == [1] and users.names == ["alice"]


def test_own_name_is_bold_and_tooltips_are_literal(qtbot):
    from PySide6.QtCore import Qt

    users = UserListModel()
    users.me = "<b>me</b>"
    users.reset(["<b>me</b>", "other"])
    mine, other = users.index(0), users.index(1)
    assert users.data(mine, Qt.ItemDataRole.FontRole).bold()
    assert users.data(other, Qt.ItemDataRole.FontRole) is None
    assert users.data(mine, Qt.ItemDataRole.ToolTipRole) == literal_html("<b>me</b>")
    assert "&lt;b&gt;" in literal_html("<b>me</b>") and literal_html("") == ""
