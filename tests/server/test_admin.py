"""Operator actions on the server core: kick, ban (kept across restarts), mute, broadcast, limits."""

from __future__ import annotations

import pytest

from qtchat.protocol import Bye, Error, Left, Message, Notice, Welcome
from qtchat.server import ChatServer
from tests.helpers import outcome

pytestmark = pytest.mark.backends

def test_kick_tells_the_client_why_and_the_others_see_it(server, connect, qtbot):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    assert outcome(qtbot, server.operator.kick("ALICE", "flooding")) == "Kicked alice."
    alice.wait_closed()
    assert alice.of(Bye)[0].reason == "kicked: flooding"
    assert bob.wait_event(Left, user="alice").reason == "kicked: flooding"
    with pytest.raises(KeyError):
        outcome(qtbot, server.operator.kick("nobody-here"))


@pytest.mark.sqlite
def test_ban_by_name_refuses_the_reconnect_and_survives_a_restart(make_server, connect, tmp_path, qtbot):
    server = make_server(data_dir=tmp_path)
    alice = connect(server.port)
    alice.login("alice")
    outcome(qtbot, server.operator.ban(name="alice", seconds=3600, reason="spam"))
    alice.wait_closed()
    error = connect(server.port).refused("Alice")
    assert error.code == "banned" and "spam" in error.message
    assert connect(server.port).login("bob").user == "bob"  # others are fine
    restarted = make_server(data_dir=tmp_path)
    assert connect(restarted.port).refused("alice").code == "banned"
    assert "Lifted 1" in outcome(qtbot, restarted.operator.unban("ALICE"))
    assert connect(restarted.port).login("alice").user == "alice"


def test_ban_by_address_refuses_at_connect(server, connect, qtbot):
    outcome(qtbot, server.operator.ban(address="127.0.0.1", reason=""))
    client = connect()
    client.wait_closed()
    assert client.of(Error)[0].code == "banned"
    outcome(qtbot, server.operator.unban("127.0.0.1"))
    assert connect().login("carol")


def test_expired_ban_lets_the_user_back(server, connect, qtbot):
    outcome(qtbot, server.operator.ban(name="dave", seconds=0.2))
    assert connect().refused("dave").code == "banned"
    qtbot.wait(300)
    assert connect().login("dave")


def test_mute_refuses_messages_until_unmuted(server, connect, qtbot):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    outcome(qtbot, server.operator.mute("alice"))
    assert "muted" in alice.wait_event(Notice).text
    alice.say("can you hear me", cid="m1")
    error = alice.wait_event(Error, ref="m1")
    assert error.code == "muted" and not error.fatal
    outcome(qtbot, server.operator.mute("alice", on=False))
    alice.say("now?", cid="m2")
    assert bob.wait_event(Message, cid="m2").text == "now?"
    assert [m.text for m in bob.of(Message)] == ["now?"]


def test_broadcast_reaches_everyone(server, connect, qtbot):
    clients = [connect() for _ in range(5)]
    for i, c in enumerate(clients):
        c.login(f"u{i}")
    assert outcome(qtbot, server.operator.broadcast("restart at 18:00 <b>sharp</b>")) == "Sent to 5 users."
    for c in clients:
        assert c.wait_event(Notice).text == "restart at 18:00 <b>sharp</b>"
    with pytest.raises(ValueError):
        outcome(qtbot, server.operator.broadcast("   "))


def test_stop_accepting_and_client_limit(server: ChatServer, connect, qtbot):
    outcome(qtbot, server.operator.set_accepting(False))
    waiting = connect()
    waiting.send_raw(b'{"type":"hello","version":1,"user":"late"}\n')
    qtbot.wait(200)
    waiting.pump()
    assert not waiting.of(Welcome)
    outcome(qtbot, server.operator.set_accepting(True))
    waiting.wait_event(Welcome)
    outcome(qtbot, server.operator.set_max_clients(1))
    assert connect().refused("another").code == "server_full"


def test_the_admin_channel_acts_on_exactly_the_connection_it_names(server, connect, qtbot):
    from qtchat.server.admin import execute

    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    rows = outcome(qtbot, execute(server.operator, {"cmd": "users"}))["users"]
    ids = {row["name"]: row["id"] for row in rows}
    assert set(ids) == {"alice", "bob"} and len(set(ids.values())) == 2
    assert outcome(qtbot, execute(server.operator, {"cmd": "mute", "id": ids["bob"]}))["ok"]
    assert [u.name for u in server.operator.users() if u.muted] == ["bob"]
    assert outcome(qtbot, execute(server.operator, {"cmd": "kick", "id": ids["bob"], "reason": "x"}))["ok"]
    bob.wait_closed()
    assert not alice.closed
    assert not outcome(qtbot, execute(server.operator, {"cmd": "kick", "id": ids["bob"]}))["ok"]  # gone now
    assert not outcome(qtbot, execute(server.operator, {"cmd": "kick", "id": "1"}))["ok"]
    assert outcome(qtbot, execute(server.operator, {"cmd": "ban", "id": ids["alice"]}))["ok"]
    alice.wait_closed()
    assert [b.name_key for b in server.operator.bans()] == ["alice"]


def test_the_admin_command_line_takes_an_id():
    from qtchat.server.cli import admin_request, build_admin_parser

    def request(*argv: str) -> dict[str, object]:
        return admin_request(build_admin_parser().parse_args(argv))

    assert request("kick", "--id", "7") == {"cmd": "kick", "name": None, "id": 7, "room": None, "reason": ""}
    assert request("kick", "ann", "--room", "den")["room"] == "den"
    assert request("mute", "--id", "7") == {"cmd": "mute", "name": None, "id": 7}
    assert request("ban", "--id", "7")["id"] == 7
    for argv in (("kick",), ("kick", "alice", "--id", "7"), ("ban",)):
        with pytest.raises(SystemExit):
            request(*argv)
