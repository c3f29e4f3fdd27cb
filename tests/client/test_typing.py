"""Typing indicators in the client core, against a real server: what ChatClient sends (a start at once, again
at most every 3 s, a stop only after a start, nothing after a message), and who types where (Typists), each
forgotten after the expiry, at once on their message, when they leave, and when the connection goes."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from qtchat.client import ChatClient, Typists
from qtchat.client.conversation import PRIVATE, ROOM, conversation_key
from qtchat.protocol import TYPING_BURST, Message, Ping, Pong, Typing, TypingChanged, target_key
from tests.helpers import RawClient


@pytest.fixture
def make_client(qtbot):
    made: list[ChatClient] = []

    def make(port: int, user: str, expiry: float = 60.0) -> tuple[ChatClient, Typists]:
        client = ChatClient()
        client.BACKOFF_BASE = 0.05
        typists = Typists(client, client)
        typists.expiry = expiry
        with qtbot.waitSignal(client.logged_in, timeout=5000):
            client.connect_to("127.0.0.1", port, user)
        made.append(client)
        return client, typists

    yield make
    for client in made:
        client.quit()
        client.deleteLater()


def settled(raw: RawClient, token: str = "t") -> None:
    """The server has read everything the raw client sent before (its typing news is out with the notices)."""
    raw.send(Ping(token))
    raw.wait_event(Pong, token=token)


def test_the_keys_are_the_conversations_keys():
    assert target_key("Dev Team") == conversation_key(ROOM, "dev team")
    assert target_key(to="Ana") == conversation_key(PRIVATE, "ana")


def test_a_typist_shows_in_the_conversation_and_expires(server, connect, make_client, qtbot):
    bo, typists = make_client(server.port, "bo", expiry=0.3)
    ana = connect()
    ana.login("ana")
    qtbot.waitUntil(lambda: "ana" in bo.users)
    with qtbot.waitSignal(typists.changed, timeout=3000) as changed:
        ana.send(Typing())
    assert changed.args == ["#lobby"] and typists.names("#lobby") == ["ana"]
    with qtbot.waitSignal(typists.changed, timeout=3000):  # 0.3 s without news: forgotten
        pass
    assert typists.names("#lobby") == []
    ana.send(Typing())
    qtbot.waitUntil(lambda: typists.names("#lobby") == ["ana"])
    ana.send(Typing(on=False))  # a stop ends it at once
    qtbot.waitUntil(lambda: typists.names("#lobby") == [])


def test_news_keeps_a_typist_and_a_message_ends_it(server, connect, make_client, qtbot):
    bo, typists = make_client(server.port, "bo", expiry=0.8)
    ana, cy = connect(), connect()
    ana.login("ana")
    cy.login("cy")
    qtbot.waitUntil(lambda: {"ana", "cy"} <= set(bo.users))
    ana.send(Typing())
    cy.send(Typing())
    qtbot.waitUntil(lambda: typists.names("#lobby") == ["ana", "cy"])
    for _ in range(3):  # news every 0.4 s: ana stays past the 0.8 s expiry; cy, without news, goes
        qtbot.wait(400)
        ana.send(Typing())
    qtbot.waitUntil(lambda: typists.names("#lobby") == ["ana"])
    with qtbot.waitSignal(bo.message_received, timeout=3000):
        ana.say("done typing")
    assert typists.names("#lobby") == []  # the message is the stop: no waiting for the expiry


def test_private_typing_is_in_the_private_conversation(server, connect, make_client, qtbot):
    bo, typists = make_client(server.port, "bo")
    ana = connect()
    ana.login("ana")
    qtbot.waitUntil(lambda: "ana" in bo.users)
    ana.send(Typing(to="bo"))
    qtbot.waitUntil(lambda: typists.names("@ana") == ["ana"])
    assert typists.names("#lobby") == []
    ana.close()  # gone offline: no more typing to us
    qtbot.waitUntil(lambda: typists.names("@ana") == [])


def test_the_client_sends_a_start_at_most_every_3_s_and_a_stop_only_after_one(server, connect, make_client,
                                                                               qtbot):
    ana, _ = make_client(server.port, "ana")
    bo = connect()
    bo.login("bo")
    qtbot.waitUntil(lambda: "bo" in ana.users)
    ana.set_typing(False)  # never started: nothing
    for _ in range(5):  # keystrokes
        ana.set_typing(True)
    ana.set_typing(True, to="bo")  # another conversation: its own start
    ana.send_text("a line")  # the message ends the typing in the lobby...
    ana.set_typing(False)  # ...so no stop follows it
    bo.wait_event(Message, text="a line")
    ana.set_typing(True)  # and the next keystroke starts anew at once
    ana.set_typing(False, to="bo")  # the private one is stopped
    bo.wait_for(lambda: len(bo.of(TypingChanged)) >= 4)
    qtbot.wait(200)
    news = [(e.room, e.on, e.off) for e in bo.of(TypingChanged)]
    assert news.count(("lobby", ("ana",), ())) == 2  # one before the message, one after
    assert news.count((None, ("ana",), ())) == 1 and news.count((None, (), ("ana",))) == 1
    assert len(news) == 4


def test_with_send_typing_off_nothing_is_sent(server, connect, make_client, qtbot):
    ana, _ = make_client(server.port, "ana")
    bo, typists = make_client(server.port, "bo")
    qtbot.waitUntil(lambda: "bo" in ana.users and "ana" in bo.users)
    ana.send_typing = False
    with qtbot.assert_not_emitted(bo.typing_received, wait=300):
        ana.set_typing(True)
        ana.set_typing(True, to="bo")
    assert typists.names("#lobby") == [] and typists.names("@ana") == []


def test_a_room_above_the_limit_gets_no_typing(make_server, make_client, qtbot):
    server = make_server(typing_max_members=2)
    bo, typists = make_client(server.port, "bo")
    cy, _ = make_client(server.port, "cy")
    ana = RawClient(server.port, qtbot)
    ana.login("ana")
    qtbot.waitUntil(lambda: len(bo.users) == 3)
    assert bo.welcome is not None and bo.welcome.limits["typing_members"] == 2
    with qtbot.assert_not_emitted(bo.typing_received, wait=300):
        ana.send(Typing())  # three in the lobby: the server relays none
        cy.set_typing(True)  # (and a client that knows the limit sends none)
        settled(ana)
    assert typists.names("#lobby") == []
    ana.close()


def test_the_connection_going_ends_every_typist(make_server, make_client, qtbot):
    server = make_server()
    bo, typists = make_client(server.port, "bo")
    ana = RawClient(server.port, qtbot)
    ana.login("ana")
    qtbot.waitUntil(lambda: "ana" in bo.users)
    ana.send(Typing())
    qtbot.waitUntil(lambda: typists.names("#lobby") == ["ana"])
    with qtbot.waitSignal(typists.changed, timeout=3000):
        server.shutdown("restart")
    assert typists.names("#lobby") == []


def test_typing_too_fast_is_not_the_users_business_and_disturbs_nothing(make_server, make_client, qtbot, caplog):
    caplog.set_level(logging.DEBUG, logger="qtchat.client")
    server = make_server(rate_messages=10, rate_burst=20, rate_bytes=64 * 1024)
    ana, _ = make_client(server.port, "ana")
    bo, typists = make_client(server.port, "bo")
    qtbot.waitUntil(lambda: "bo" in ana.users and "ana" in bo.users)
    with qtbot.assert_not_emitted(ana.server_error, wait=300), qtbot.assert_not_emitted(ana.message_failed):
        for _ in range(10):  # a client that ignores the rules (ChatClient itself never does)
            ana._send(Typing())
        with qtbot.waitSignal(ana.message_acked, timeout=3000):
            ana.send_text("still fine")
    assert typists.names("#lobby") == []  # the message ended the typing that was let through
    assert sum("typing notice refused" in r.getMessage() for r in caplog.records) == 10 - TYPING_BURST


def test_a_server_that_does_not_announce_typing_is_sent_none(server, make_client, qtbot):
    """An older server would answer each typing frame with unknown_type (and 20 in a row end the connection)."""
    ana, _ = make_client(server.port, "ana")
    bo, _ = make_client(server.port, "bo")
    qtbot.waitUntil(lambda: "bo" in ana.users and "ana" in bo.users)
    assert ana.welcome is not None
    older = {k: v for k, v in ana.welcome.limits.items() if k != "typing_members"}
    ana.welcome = dataclasses.replace(ana.welcome, limits=older)  # what a server without typing says
    with qtbot.assert_not_emitted(bo.typing_received, wait=300), qtbot.assert_not_emitted(ana.server_error):
        ana.set_typing(True)
        ana.set_typing(True, to="bo")
    ana.welcome = dataclasses.replace(ana.welcome, limits={**older, "typing_members": 0})  # 0: in every room
    with qtbot.waitSignal(bo.typing_received, timeout=3000):
        ana.set_typing(True)
