"""The client's dispatch tables: one handler per event the server sends, by phase."""

from __future__ import annotations

from qtchat.client.session import HANDSHAKE_HANDLERS, SESSION_HANDLERS
from qtchat.protocol import (
    AccountStatus,
    Bye,
    Error,
    History,
    Joined,
    Left,
    Message,
    MessageDeleted,
    MessageEdited,
    Notice,
    Ping,
    Pong,
    Reactions,
    RoomJoined,
    RoomList,
    RoomState,
    SearchResults,
    TopicChanged,
    TypingChanged,
    UserAway,
    UserBack,
    UserList,
    Welcome,
    events,
)

SENT_BY_THE_SERVER = {AccountStatus, Bye, Error, History, Joined, Left, Message, MessageDeleted, MessageEdited, Notice,
                      Reactions, Ping, Pong, RoomJoined, RoomList, RoomState, SearchResults, TopicChanged, UserList,
                      Welcome, UserAway, UserBack, TypingChanged}


def test_every_server_event_has_a_handler_once_logged_in():
    assert set(SESSION_HANDLERS) == SENT_BY_THE_SERVER - {Welcome}
    declared = getattr(events, "SERVER_EVENTS", None)  # the protocol's own table, where it has one
    if declared is not None:
        assert set(declared.values()) == SENT_BY_THE_SERVER


def test_before_the_welcome_only_the_handshake_counts():
    assert set(HANDSHAKE_HANDLERS) == {Welcome, Error, Ping, Pong, Bye}
    for kind in (Error, Ping, Pong, Bye):  # the same handler in both phases
        assert HANDSHAKE_HANDLERS[kind] is SESSION_HANDLERS[kind]
