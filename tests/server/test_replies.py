"""Replies (backend.py, point 10), over real sockets on every backend: a reply carries a one-line quote of the
message it answers, live and in every page, as that message is now (edited, deleted); a reply to a message
that is not in the room keeps its link and quotes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.protocol import (
    DeleteMessage,
    EditMessage,
    History,
    HistoryRequest,
    JoinRoom,
    Message,
    MessageDeleted,
    RoomState,
    SendMessage,
)
from qtchat.protocol.events import REPLY_QUOTE

pytestmark = pytest.mark.backends


def newest(client: Any, room: str = "lobby", **request: Any) -> list[Message]:
    client.events = [e for e in client.events if not isinstance(e, History)]
    client.send(HistoryRequest(room=room, limit=20, **request))
    return list(client.wait_event(History).messages)


def test_a_reply_quotes_its_parent_live_and_in_pages_as_it_is_now(server: Any, connect: Any) -> None:
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    long_text = "Shall we move the release to Friday?\nThe installer " + "is not signed yet " * 20
    alice.say(long_text, cid="a1")
    parent = alice.wait_event(Message, cid="a1")
    bob.send(SendMessage("yes, Friday", cid="b1", reply_to=parent.id))
    for client in (alice, bob):
        reply = client.wait_event(Message, cid="b1") if client is bob else client.wait_event(Message, sender="bob")
        assert (reply.reply_to, reply.reply_from) == (parent.id, "alice")
        assert reply.reply_text.startswith("Shall we move the release to Friday? The installer is")
        assert len(reply.reply_text) == REPLY_QUOTE and reply.reply_text.endswith("\N{HORIZONTAL ELLIPSIS}")
        assert "\n" not in reply.reply_text
    page = newest(bob)
    assert [(m.reply_to, m.reply_from) for m in page] == [(0, ""), (parent.id, "alice")]

    alice.send(EditMessage(parent.id, "Friday it is"))
    assert newest(bob)[-1].reply_text == "Friday it is"  # the quote follows the parent's edit
    assert newest(bob, around=parent.id)[-1].reply_text == "Friday it is"
    alice.send(DeleteMessage(parent.id))
    bob.wait_event(MessageDeleted, id=parent.id)
    gone = newest(bob)[-1]
    assert (gone.reply_to, gone.reply_from, gone.reply_text) == (parent.id, "", "")


def test_a_reply_to_a_message_of_another_room_or_none_quotes_nothing(server: Any, connect: Any) -> None:
    alice = connect()
    alice.login("alice")
    alice.send(JoinRoom("elsewhere"))
    alice.wait_event(RoomState, room="elsewhere")
    alice.say("in another room", cid="x1", room="elsewhere")
    other = alice.wait_event(Message, cid="x1")
    alice.send(SendMessage("answering across rooms", cid="a1", reply_to=other.id))
    alice.send(SendMessage("answering nothing", cid="a2", reply_to=other.id + 12345))
    for cid in ("a1", "a2"):
        msg = alice.wait_event(Message, cid=cid)
        assert msg.reply_to and (msg.reply_from, msg.reply_text) == ("", "")
        assert msg.text.startswith("answering")  # the message itself is kept and relayed
    assert [m.reply_from for m in newest(alice)] == ["", ""]
