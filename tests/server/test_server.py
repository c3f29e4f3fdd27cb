"""The server core over real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from qtchat.protocol import (
    Bye,
    Error,
    Hello,
    Joined,
    Left,
    Message,
    Ping,
    Pong,
    UserList,
    UsersRequest,
    Welcome,
)
from tests.helpers import RawClient

pytestmark = pytest.mark.backends


def names_in(client: RawClient) -> set[str]:
    return {n for ev in client.of(UserList) for n in ev.users}


# ------------------------------------------------------------------ handshake


def test_handshake_welcomes_and_lists_users(server, connect):
    alice = connect()
    welcome = alice.login("alice")
    assert welcome.user == "alice"
    assert welcome.version == 1
    assert welcome.rooms[0].name == "lobby"
    assert welcome.max_frame == 65536
    assert welcome.server.startswith("qtchat-server ")
    assert names_in(alice) == {"alice"}

    bob = connect()
    bob.login("  bob  ")  # trimmed
    assert names_in(bob) == {"alice", "bob"}
    joined = alice.wait_event(Joined, user="bob")
    assert joined.room == "lobby"
    assert not bob.of(Joined)  # no notice of your own arrival: you are in the list already
    assert sorted(server.user_names()) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "name_invalid"),
        ("    ", "name_invalid"),
        ("x" * 33, "name_invalid"),
        ("zero\u200bwidth", "name_invalid"),
        ("tab\there", "name_invalid"),
        ("#room", "name_invalid"),
        ("Admin", "name_reserved"),
        ("SERVER", "name_reserved"),
    ],
)
def test_bad_names_are_refused_with_their_code(server, connect, name, code):
    error = connect().refused(name)
    assert error.code == code
    assert error.fatal
    assert error.message
    assert server.user_names() == []


@pytest.mark.parametrize("lookalike", ["alice", "ALICE", "Alice ", "\uff21\uff4c\uff49\uff43\uff45"])
def test_duplicate_and_lookalike_names_are_taken(server, connect, lookalike):
    connect().login("Alice")
    error = connect().refused(lookalike)
    assert error.code == "name_taken"
    assert server.user_names() == ["Alice"]


@pytest.mark.parametrize("lookalike", ["\u0410lice", "\u0430l\u0456c\u0435", "\u0410LICE"])
def test_confusable_names_are_taken(server, connect, lookalike):
    connect().login("alice")
    assert connect().refused(lookalike).code == "name_taken"
    assert server.user_names() == ["alice"]


def test_a_confusable_of_a_registered_name_needs_its_password(server, connect, qtbot):
    owner = connect()
    owner.login("alice", password="correct horse battery", register=True)
    owner.close()
    qtbot.waitUntil(lambda: server.user_names() == [])
    assert connect().refused("\u0410lice").code == "auth_required"
    assert connect().refused("\u0410lice", password="other password", register=True).code == "name_registered"


def test_a_confusable_of_a_reserved_name_is_reserved(server, connect):
    assert connect().refused("\u0455\u0435rver").code == "name_reserved"


@pytest.mark.parametrize("name", ["a\u034fl\u180bice", "b\U000e0100ob", "\u3164", "\u2800", "\u115f\u1160",
                                  "x\u2800y"])
def test_invisible_and_blank_names_are_refused_and_nothing_happens(server, connect, qtbot, name):
    watcher = connect()
    watcher.login("watcher")
    client = connect()
    with qtbot.assert_not_emitted(server.user_joined, wait=100):
        error = client.refused(name)
    assert (error.code, error.fatal) == ("name_invalid", True)
    assert client.closed
    assert server.user_names() == ["watcher"]
    assert not watcher.of(Joined)


def test_name_is_free_again_after_its_owner_leaves(server, connect, qtbot):
    first = connect()
    first.login("carol")
    first.close()
    qtbot.waitUntil(lambda: server.user_names() == [])
    connect().login("carol")


def test_32_character_unicode_name_is_accepted(connect):
    name = "\U0001f600" * 32
    assert connect().login(name).user == name


def test_version_mismatch_is_a_clear_error(connect):
    error = connect().refused("dave", version=3, min_version=2)
    assert error.code == "bad_version"
    assert "version 1" in error.message


def test_newer_client_negotiates_down_to_version_1(connect):
    assert connect().login("erin", version=4, min_version=1).version == 1


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"NICK frank\r\n", b'{"type":"msg","text":"hi"}\n', b"[1,2]\n"],
)
def test_other_protocols_are_told_and_dropped(connect, garbage):
    client = connect()
    client.send_raw(garbage)
    client.wait_closed()
    errors = client.of(Error)
    assert errors and errors[0].fatal
    assert errors[0].code in {"bad_json", "handshake_required", "bad_frame"}


# ------------------------------------------------------------------ chat


def test_awkward_text_reaches_everyone_intact_and_is_acknowledged(server, connect):
    alice, bob, carol = connect(), connect(), connect()
    for c, n in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        c.login(n)
    texts = [
        "a~b~~c",
        "line one\nline two\n\n",
        "emoji \U0001f600\U0001f469\u200d\U0001f4bb and RTL \u05e9\u05dc\u05d5\u05dd",
        '<b>not bold</b> {"type":"bye"}\\n',
        "\U0001f600" * 15000 + "x" * 1440,  # 60 KiB of UTF-8, just under the frame limit with the envelope
    ]
    assert len(texts[-1].encode()) == 61440
    for i, text in enumerate(texts):
        alice.say(text, cid=f"c{i}")
    for other in (bob, carol):
        other.wait_for(lambda o=other: len(o.of(Message)) == len(texts))
        got = other.of(Message)
        assert [m.text for m in got] == texts
        assert {m.sender for m in got} == {"alice"}
    acks = alice.of(Message)
    alice.wait_for(lambda: len(alice.of(Message)) == len(texts))
    acks = alice.of(Message)
    assert [a.cid for a in acks] == [f"c{i}" for i in range(len(texts))]
    ids = [a.id for a in acks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(a.ts > 1_700_000_000_000 for a in acks)
    assert [m.id for m in bob.of(Message)] == ids  # everyone sees the same ids


def test_bad_frames_in_a_session_get_errors_and_the_session_goes_on(connect):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    alice.send_raw(b"{not json\n")
    alice.send_raw(b'{"type":"msg","text":"\xff\xfe"}\n')
    alice.send_raw(b'{"type":"nope"}\n')
    alice.send_raw(b'{"type":"msg","text":"   ","cid":"empty"}\n')
    alice.send_raw(b'{"type":"msg","text":"bell\\u0007","cid":"bell"}\n')
    alice.send_raw(b'{"type":"msg","text":"\\ud800","cid":"sur"}\n')
    alice.send_raw(b'{"type":"msg","text":"hi","room":"nowhere","cid":"room"}\n')
    alice.send_raw(b"[" * 30000 + b"]" * 30000 + b"\n")  # deep nesting
    alice.say("still here", cid="ok")
    msg = bob.wait_event(Message, text="still here")
    assert msg.sender == "alice"
    alice.wait_for(lambda: len(alice.of(Error)) == 8)
    codes = [(e.code, e.ref, e.fatal) for e in alice.of(Error)]
    assert codes == [
        ("bad_json", None, False),
        ("bad_utf8", None, False),
        ("unknown_type", None, False),
        ("bad_text", "empty", False),
        ("bad_text", "bell", False),
        ("bad_utf8", "sur", False),
        ("no_such_room", "room", False),
        ("bad_json", None, False),
    ]
    assert [m.text for m in bob.of(Message)] == ["still here"]


def test_oversize_frame_is_refused_and_the_others_keep_chatting(make_server, connect):
    server = make_server(max_frame=4096)
    alice, bob, carol = connect(server.port), connect(server.port), connect(server.port)
    alice.login("alice")
    bob.login("bob")
    carol.login("carol")
    alice.say("x" * 5000)
    error = alice.wait_event(Error)
    assert error.code == "frame_too_large" and error.fatal
    assert "4096" in error.message
    alice.wait_closed()
    left = bob.wait_event(Left, user="alice")
    assert "frame_too_large" in left.reason
    bob.say("carry on", cid="b1")
    assert carol.wait_event(Message, text="carry on").sender == "bob"
    assert bob.wait_event(Message, cid="b1")


def test_users_request_and_ping_pong(connect):
    alice = connect()
    alice.login("alice")
    alice.send(Ping("t1"))
    assert alice.wait_event(Pong).token == "t1"
    count = len(alice.of(UserList))
    alice.send(UsersRequest("lobby"))
    alice.wait_for(lambda: len(alice.of(UserList)) == count + 1)
    assert alice.of(UserList)[-1].users == ("alice",)


def test_long_user_lists_come_in_frames_under_the_limit(make_server, connect, qtbot):
    server = make_server(max_frame=1024)
    clients = [connect(server.port) for _ in range(60)]
    for i, c in enumerate(clients):
        c.login(f"user-with-a-long-name-{i:03d}")
    last = connect(server.port)
    last.login("last")
    lists = last.of(UserList)
    assert len(lists) > 1
    assert all(ul.more for ul in lists[:-1]) and not lists[-1].more
    assert len(names_in(last)) == 61


def test_bye_from_a_client_is_announced_with_its_reason(connect):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    alice.send(Bye("dinner"))
    alice.wait_closed()
    left = bob.wait_event(Left, user="alice")
    assert left.reason == "quit: dinner"


def test_abrupt_disconnects_are_cleaned_up(server, connect, qtbot):
    clients = [connect() for _ in range(20)]
    for i, c in enumerate(clients):
        c.login(f"u{i}")
    watcher = connect()
    watcher.login("watcher")
    for c in clients:
        c.close()
    watcher.wait_for(lambda: len(watcher.of(Left)) == 20)
    qtbot.waitUntil(lambda: len(server.peers) == 1)
    assert server.user_names() == ["watcher"]
    assert set(server.users) == {"watcher"}


def test_server_full(make_server, connect):
    server = make_server(max_clients=2)
    connect(server.port).login("a")
    connect(server.port).login("b")
    error = connect(server.port).refused("c")
    assert error.code == "server_full"
    assert server.user_names() == ["a", "b"]


# ------------------------------------------------------------------ timeouts


def test_silent_connection_is_dropped(make_server, connect, qtbot):
    server = make_server(handshake_timeout=0.3)
    silent = connect(server.port)
    silent.wait_closed(timeout=3)
    error = silent.of(Error)[0]
    assert error.code == "handshake_timeout"
    qtbot.waitUntil(lambda: not server.peers)


def test_slow_hello_dribble_is_dropped(make_server, connect, qtbot):
    server = make_server(handshake_timeout=0.4)
    client = connect(server.port)
    hello = b'{"type":"hello","version":1,"user":"slowpoke"}\n'
    for byte in hello:
        try:
            client.send_raw(bytes([byte]))
        except ConnectionError:
            break  # dropped already
        qtbot.wait(30)
    client.wait_closed(timeout=3)
    assert not server.user_names()
    assert client.of(Error)[0].code == "handshake_timeout"


def test_dead_peer_is_pinged_then_dropped_while_live_one_stays(make_server, connect, qtbot):
    server = make_server(ping_interval=0.2, ping_timeout=0.3)
    dead, live = connect(server.port), connect(server.port)
    dead.login("dead")
    live.login("live")

    def live_answers() -> bool:
        for ev in live.of(Ping):
            if ev not in answered:
                answered.append(ev)
                live.send(Pong(ev.token))
        return any(isinstance(e, Left) and e.user == "dead" for e in live.events)

    answered: list[Ping] = []
    live.wait_for(live_answers, timeout=5)
    assert dead.of(Ping), "the dead peer was pinged first"
    assert answered, "the live peer was pinged too"
    left = next(e for e in live.events if isinstance(e, Left))
    assert left.reason == "ping timeout"
    assert server.user_names() == ["live"]


def test_client_that_never_reads_is_cut_off_while_others_receive(make_server, connect, qtbot):
    server = make_server(max_output=256 * 1024)
    sender, reader = connect(server.port), connect(server.port)
    stuck = RawClient(server.port, qtbot, rcvbuf=4096)
    sender.login("sender")
    reader.login("reader")
    stuck.send(Hello(user="stuck"))
    reader.wait_event(Joined, user="stuck")
    text = "y" * 60000
    sent = 0
    while not any(isinstance(e, Left) and e.user == "stuck" for e in reader.events) and sent < 400:
        sender.say(text, cid=str(sent))
        sent += 1
        # paced by the acknowledgements, as a client that reads does (unpaced, a database slower than SQLite
        # stores bigger passes: megabytes for a reader at once, past this test's small output cap)
        sender.wait_for(lambda n=sent: len(sender.of(Message)) >= n - 4, timeout=10)
        reader.pump()
        qtbot.wait(1)
    assert sent < 400, "the stuck client was never cut off"
    left = reader.wait_event(Left, user="stuck")
    assert "not reading" in left.reason
    reader.wait_for(lambda: len(reader.of(Message)) == sent, timeout=10)
    sender.wait_for(lambda: len(sender.of(Message)) == sent, timeout=10)
    assert all(m.text == text for m in reader.of(Message))
    stuck.close()


# ------------------------------------------------------------------ scale


@pytest.mark.slow
def test_500_clients_connected_at_once(make_server, qtbot):
    server = make_server()
    clients = [RawClient(server.port, qtbot) for _ in range(500)]
    for i, c in enumerate(clients):
        c.send_raw(c.conn.send(Hello(user=f"user{i}")))
    qtbot.waitUntil(lambda: len(server.user_names()) == 500, timeout=20000)
    last = clients[-1]
    last.wait_for(lambda: bool(last.of(Welcome)))
    clients[0].say("hello all", cid="h")
    for c in clients:
        c.wait_event(Message, text="hello all", timeout=10)
    for c in clients:
        c.close()
    qtbot.waitUntil(lambda: not server.peers, timeout=10000)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to count threads")
def test_thread_count_does_not_grow_with_clients(server, connect, qtbot):
    def threads() -> int:
        return len(list(Path("/proc/self/task").iterdir()))

    warm = connect()
    warm.login("warm")
    before = threads()
    clients = [connect() for _ in range(100)]
    for i, c in enumerate(clients):
        c.login(f"t{i}")
    assert threads() <= before


def test_core_signals_report_joins_messages_leaves_and_errors(server, connect, qtbot):
    alice = connect()
    with qtbot.waitSignal(server.user_joined, timeout=3000) as joined:
        alice.login("alice")
    assert joined.args[0] == "alice" and joined.args[1].startswith("127.0.0.1:")
    with qtbot.waitSignal(server.message_posted, timeout=3000) as posted:
        alice.say("signal me", cid="s1")
    assert isinstance(posted.args[0], Message) and posted.args[0].text == "signal me"
    with qtbot.waitSignal(server.client_error, timeout=3000) as error:
        alice.send_raw(b"{oops\n")
    assert "bad_json" in error.args[1]
    with qtbot.waitSignal(server.user_left, timeout=3000) as left:
        alice.close()
    assert left.args[0] == "alice"


def test_shutdown_emits_stopped_after_telling_everyone(make_server, connect, qtbot):
    server = make_server()
    clients = [connect(server.port) for _ in range(3)]
    for i, c in enumerate(clients):
        c.login(f"s{i}")
    with qtbot.waitSignal(server.stopped, timeout=5000):
        server.shutdown("maintenance")
    for c in clients:
        c.wait_closed()
        assert c.of(Bye)[0].reason == "maintenance"
    assert not server.is_listening


def test_resent_cid_after_reconnect_is_acknowledged_not_relayed_twice(server, connect):
    bob = connect()
    bob.login("bob")
    first = connect()
    first.login("alice")
    first.say("only once", cid="dup-1")
    original = first.wait_event(Message, cid="dup-1")
    first.close()
    bob.wait_event(Left, user="alice")
    again = connect()
    again.login("alice")
    again.say("only once", cid="dup-1")  # the client never saw its ack, so it resends
    again.say("next", cid="dup-2")
    ack = again.wait_event(Message, cid="dup-1")
    assert ack.id == original.id
    bob.wait_event(Message, cid="dup-2")
    assert [m.text for m in bob.of(Message)] == ["only once", "next"]


def test_client_asking_for_replies_without_reading_is_cut_off(make_server, connect, qtbot):
    server = make_server(max_output=128 * 1024)
    others = connect(server.port)
    others.login("other")
    greedy = RawClient(server.port, qtbot, rcvbuf=4096)
    greedy.send(Hello(user="greedy"))
    others.wait_event(Joined, user="greedy")
    request = b'{"type":"users","room":"lobby"}\n' * 2000
    for _ in range(40):
        with contextlib.suppress(BlockingIOError, ConnectionError):
            greedy.sock.send(request)
        qtbot.wait(5)
        others.pump()
        if any(isinstance(e, Left) and e.user == "greedy" for e in others.events):
            break
    left = others.wait_event(Left, user="greedy")
    assert "not reading" in left.reason
    greedy.close()


def test_a_reused_cid_with_other_text_is_a_new_message(server, connect):
    bob = connect()
    bob.login("bob")
    first = connect()
    first.login("alice")
    first.say("hello", cid="1")
    first.wait_event(Message, cid="1")
    first.close()
    bob.wait_event(Left, user="alice")
    second = connect()  # someone else, later, with a client that also starts at cid 1
    second.login("Alice")
    second.say("a different message", cid="1")
    assert bob.wait_event(Message, text="a different message").sender == "Alice"
