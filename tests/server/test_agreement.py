"""The server does what PROTOCOL.md says where the two disagreed (issue 14): bye codes, the banned error's
time, the kick and ban frames' answers, bad_frame for a frame without a string type, a long room name's own
error, a frame of exactly max_frame bytes ended by CR LF."""

from __future__ import annotations

import json

import pytest

from qtchat.protocol import (
    AccountStatus,
    BanRequest,
    Bye,
    ByeCode,
    Error,
    JoinRoom,
    KickRequest,
    Message,
    Notice,
)
from qtchat.server.accounts import hash_password
from qtchat.server.auth import banned_error
from qtchat.server.bans import Ban
from tests.helpers import outcome

PASSWORD = "correct horse battery"


def operator(server, connect, qtbot):
    outcome(qtbot, server.operator.register_account("oper", hash_password(PASSWORD), admin=True))
    oper = connect()
    oper.login("oper", password=PASSWORD)
    oper.wait_event(AccountStatus)
    return oper


def test_kick_ban_shutdown_and_a_second_login_say_bye_with_a_code(server, connect, qtbot):
    oper = operator(server, connect, qtbot)
    pest = connect()
    pest.login("pest")
    oper.send(KickRequest("pest", "calm down"))
    assert pest.wait_event(Bye) == Bye("kicked: calm down (by oper)", ByeCode.KICKED)
    pest = connect()
    pest.login("pest")
    oper.send(BanRequest("pest", reason="again"))
    assert pest.wait_event(Bye).code == ByeCode.BANNED
    second = connect()
    second.login("oper", password=PASSWORD)
    assert oper.wait_event(Bye) == Bye("logged in elsewhere", ByeCode.LOGGED_IN_ELSEWHERE)
    server.shutdown("maintenance")
    assert second.wait_event(Bye) == Bye("maintenance", ByeCode.SHUTDOWN)


def test_kick_and_ban_refusals_name_their_request(server, connect, qtbot):
    oper = operator(server, connect, qtbot)
    oper.send(KickRequest("nobody-here"))
    error = oper.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("user_offline", "kick", False)
    pest = connect()
    pest.login("pest")
    pest.send(BanRequest("oper", minutes=5))
    error = pest.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("forbidden", "ban", False)
    oper.send(BanRequest("pest", minutes=5))
    assert oper.wait_event(Notice).text.startswith("Banned")


def test_the_banned_error_says_for_good_or_a_time_in_utc():
    assert banned_error(Ban("x", None, None, "", 0.0)).message == "You are banned from this server for good."
    until = 1_900_000_000.0  # 2030-03-17 17:46:40 UTC, whatever the server's own zone
    message = banned_error(Ban("x", None, until, "spam", 0.0)).message
    assert message == "You are banned from this server until 2030-03-17 17:46 UTC: spam"


def test_a_ban_refuses_the_next_login_with_for_good(server, connect, qtbot):
    outcome(qtbot, server.operator.ban(name="mallory"))
    error = connect().refused("mallory")
    assert error.code == "banned" and "for good" in error.message


@pytest.mark.parametrize("frame", [b'{"text":"hi"}', b'{"type":5}', b'{"type":null}'])
def test_a_frame_without_a_string_type_is_bad_frame(connect, frame):
    alice = connect()
    alice.login("alice")
    alice.send_raw(frame + b"\n")
    error = alice.wait_event(Error)
    assert (error.code, error.fatal) == ("bad_frame", False)


def test_a_long_room_name_gets_its_room_error_not_a_local_bad_frame(connect):
    alice = connect()
    alice.login("alice")
    room = "r" * 100
    alice.send(JoinRoom(room))
    error = alice.wait_event(Error)
    assert (error.code, error.ref) == ("room_invalid", room)
    assert not alice.errors  # the client decoded it


def test_a_frame_of_exactly_max_frame_bytes_with_crlf_is_accepted(make_server, connect):
    server = make_server(max_frame=4096)
    alice = connect(server.port)
    alice.login("alice")
    wire = {"type": "msg", "room": "lobby", "cid": "edge", "text": ""}
    wire["text"] = "a" * (4096 - len(json.dumps(wire, separators=(",", ":"))))
    frame = json.dumps(wire, separators=(",", ":")).encode()
    assert len(frame) == 4096
    alice.send_raw(frame + b"\r\n")
    assert alice.wait_event(Message, cid="edge").text == wire["text"]
