"""The suite's sections, in the order they run; each takes the Suite and adds its checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from . import accounts, changes, indicators, pacing, reads
from .checks import Suite
from .wire import Peer


def handshake(s: Suite) -> None:
    """hello, then welcome (with its fields), account and the lobby's users; ping and pong."""
    s.a, welcome = s.login("a")
    a: Peer = s.a
    name = f"{s.tag}-a"
    fields = welcome is not None and welcome.get("user") == name and welcome.get("version") == 1 and \
        isinstance(welcome.get("max_frame"), int) and isinstance(welcome.get("ping_interval"), int | float) and \
        isinstance(welcome.get("rooms"), list)
    s.check("handshake: welcome with version, user, rooms, max_frame, ping_interval", fields,
            f'welcome {{"version":1,"user":"{name}",...}}', welcome)
    if welcome is not None and isinstance(welcome.get("max_frame"), int):
        s.max_frame = welcome["max_frame"]
    if welcome is not None and isinstance(welcome.get("limits"), dict):
        s.limits = welcome["limits"]
    s.check("handshake: account after welcome", a.wait_type("account", 1.0) is not None, "an account frame",
            "none")
    s.check("handshake: the lobby's user list names us", any(
        f.get("type") == "users" and name in (f.get("users") or []) for f in a.received), f"users with {name}",
        [f for f in a.received if f.get("type") == "users"][:1] or None)
    a.send({"type": "ping", "token": "cf-token"})
    s.check("ping: answered by a pong with its token", a.wait_type("pong", token="cf-token") is not None,
            '{"type":"pong","token":"cf-token"}', "no pong")


def versions(s: Suite) -> None:
    """The highest common version is chosen; no common version, a taken or invalid name: fatal errors."""
    s.b, _welcome = s.login("b")
    s.b.send({"type": "ping", "token": "b"})
    peer = s.connect()
    peer.send_raw(s.hello(f"{s.tag}-v", version=99, min_version=1))
    chosen = peer.wait_type("welcome")
    s.check("versions: 1-99 negotiates version 1", chosen is not None and chosen.get("version") == 1,
            '{"type":"welcome","version":1,...}', chosen)
    peer.send({"type": "bye"})
    peer.close()
    s.refused("versions: no version in common (50-99)", s.hello(f"{s.tag}-w", version=99, min_version=50),
              "bad_version")
    s.refused("names: a name in use", s.hello(f"{s.tag}-A"), "name_taken")  # the key folds case
    s.refused("names: an invalid name", s.hello("#" + s.tag), "name_invalid")


def before_login(s: Suite) -> None:
    """Before the handshake every error is fatal."""
    s.refused("before login: a msg", b'{"type":"msg","text":"hi"}\n', "handshake_required")
    s.refused("before login: not JSON", b"GET / HTTP/1.1\r\n", "bad_json")


SESSION_ERRORS: list[tuple[str, bytes, str, str | None]] = [
    ("not JSON", b"{not json\n", "bad_json", None),
    ("bad UTF-8", b'{"type":"ping","token":"\xff\xfe"}\n', "bad_utf8", None),
    ("not an object", b"[1,2]\n", "bad_frame", None),
    ("no type", b'{"token":"x"}\n', "bad_frame", None),
    ("a non-string type", b'{"type":5}\n', "bad_frame", None),
    ("an unknown type", b'{"type":"cf-no-such-type"}\n', "unknown_type", None),
    ("a field of the wrong type", b'{"type":"users","room":5}\n', "bad_frame", None),
    ("an empty message", b'{"type":"msg","text":"   ","cid":"cf-e1"}\n', "bad_text", "cf-e1"),
    ("a room you are not in", b'{"type":"msg","room":"cf-nowhere","text":"x","cid":"cf-e2"}\n',
     "no_such_room", "cf-e2"),
    ("a second hello", b'{"type":"hello","version":1,"user":"x"}\n', "already_logged_in", None),
]


def session_errors(s: Suite) -> None:
    """Each bad frame after login gets its own non-fatal error (with the cid as ref) and the session goes on."""
    a: Peer = s.a
    for what, raw, code, ref in SESSION_ERRORS:
        a.send_raw(raw)
        error = a.wait(lambda f: f.get("type") == "error")
        ok = error is not None and error.get("code") == code and error.get("fatal") is False and \
            (ref is None or error.get("ref") == ref)
        s.check(f"errors: {what}", ok, f'{{"code":"{code}","fatal":false' + (f',"ref":"{ref}"}}' if ref else "}"),
                error)
    a.send({"type": "ping", "token": "after-errors"})
    s.check("errors: the session goes on", a.wait_type("pong", token="after-errors") is not None,
            "a pong", "none")


def messages(s: Suite) -> None:
    """A message comes back to its sender with its cid (the acknowledgement) and to the others with the same id;
    a resend with the same cid is acknowledged with the same id and not delivered twice."""
    a: Peer = s.a
    b: Peer = s.b
    cid = s.cid()
    ack = s.post(a, "conformance hello ~ \U0001f600\nsecond line", cid=cid)
    ok = ack is not None and ack.get("type") == "msg" and isinstance(ack.get("id"), int) and \
        isinstance(ack.get("ts"), int) and ack.get("from") == f"{s.tag}-a" and ack.get("room", "lobby") == "lobby"
    s.check("messages: echoed to the sender with its cid, id, ts, from", ok, f'msg with "cid":"{cid}"', ack)
    copy = b.wait_type("msg", cid=cid)
    s.check("messages: the same id reaches the others", copy is not None and ack is not None and
            copy.get("id") == ack.get("id"), f"msg id {ack and ack.get('id')}", copy)
    again = s.post(a, "conformance hello ~ \U0001f600\nsecond line", cid=cid)
    s.check("resend: the same cid is acknowledged with the same id", again is not None and ack is not None and
            again.get("id") == ack.get("id"), f"msg id {ack and ack.get('id')}", again)
    marker = s.post(a, "conformance marker")
    b.wait(lambda f: f.get("type") == "msg" and marker is not None and f.get("id") == marker.get("id"))
    copies = sum(1 for f in b.received if f.get("type") == "msg" and f.get("cid") == cid)
    s.check("resend: delivered to the others once", copies == 1, "one copy", f"{copies} copies")


def away(s: Suite) -> None:
    """away is told to the room (the sender too) and carried in a newcomer's users; back clears it."""
    a: Peer = s.a
    b: Peer = s.b
    name = f"{s.tag}-a"
    if not s.limit("away_changes_burst"):
        s.skip("away: told to the room", "the server announces no away (welcome.limits.away_changes_burst)")
        return
    a.send({"type": "away", "message": "  at lunch  "})
    told = b.wait_type("away", user=name, room="lobby")
    s.check("away: told to the room, the message trimmed", told is not None and told.get("message") == "at lunch",
            f'{{"type":"away","room":"lobby","user":"{name}","message":"at lunch",...}}', told)
    s.check("away: its sender hears it too", a.wait_type("away", user=name) is not None, "an away frame", "none")
    c, _ = s.login("c")
    lists = [f for f in c.received if f.get("type") == "users"]
    s.check("away: a newcomer's users say who is away", any((f.get("away") or {}).get(name) == "at lunch"
            for f in lists), f'users with "away":{{"{name}":"at lunch"}}', lists[:1] or None)
    c.send({"type": "bye"})
    c.close()
    a.send({"type": "back"})
    back = b.wait_type("back", user=name, room="lobby")
    s.check("back: told to the room", back is not None, f'{{"type":"back","room":"lobby","user":"{name}",...}}',
            back)
    a.wait_type("back", user=name)


def private_rooms(s: Suite) -> None:
    """An invite-only room refuses the uninvited (invite_only); a non-operator gets not_room_operator."""
    a, b = s.a, s.b
    room = f"{s.tag}-den"
    a.send({"type": "join", "room": room})
    s.check("private rooms: the joiner is told the room's state", a.wait_type("room_state", room=room) is not None,
            f'{{"type":"room_state","room":"{room}",...}}', "none")
    a.send({"type": "room_mode", "room": room, "invite_only": True})
    a.wait_type("room_state", invite_only=True)
    b.send({"type": "join", "room": room})
    refused = b.wait_type("error", ref=room)
    s.check("private rooms: an uninvited join is refused", refused is not None and refused.get("code") ==
            "invite_only", '{"type":"error","code":"invite_only",...}', refused)
    a.send({"type": "room_invite", "room": room, "name": f"{s.tag}-b"})
    b.send({"type": "join", "room": room})
    b.wait_type("room_state", room=room)
    b.send({"type": "room_mode", "room": room, "history": "full"})
    refused = b.wait(lambda f: f.get("type") == "error" and f.get("code") == "not_room_operator")
    s.check("private rooms: a non-operator cannot set modes", refused is not None,
            '{"type":"error","code":"not_room_operator",...}', refused)
    b.send({"type": "part", "room": room})
    a.send({"type": "part", "room": room})


def rooms(s: Suite) -> None:
    """join answers room and users, the others see joined; part leaves; a bad room name is room_invalid."""
    a: Peer = s.a
    b: Peer = s.b
    s.room = room = f"{s.tag} room"
    a.send({"type": "join", "room": room})
    answer = a.wait_type("room")
    s.check("rooms: join answers a room frame", answer is not None and answer.get("name") == room,
            f'{{"type":"room","name":"{room}",...}}', answer)
    users = a.wait(lambda f: f.get("type") == "users" and f.get("room") == room and f.get("more") is False)
    s.check("rooms: then the room's users", users is not None and f"{s.tag}-a" in (users.get("users") or []),
            f"users of {room!r}", users)
    b.send({"type": "join", "room": room.upper()})  # the same room: names compare by key
    b.wait_type("room")
    joined = a.wait_type("joined", user=f"{s.tag}-b")
    s.check("rooms: the others see joined", joined is not None, "joined", joined)
    b.send({"type": "part", "room": room})
    left = a.wait_type("left", user=f"{s.tag}-b")
    s.check("rooms: part, and the others see left", left is not None, "left", left)
    gone = s.post(b, "after part", room=room)
    s.check("rooms: no messages to a room after part", gone is not None and gone.get("code") == "no_such_room",
            "a no_such_room error with the cid", gone)
    long = "r" * 100
    a.send({"type": "join", "room": long})
    error = a.wait(lambda f: f.get("type") == "error")
    s.check("rooms: a long room name is room_invalid, ref the name as sent", error is not None and
            error.get("code") == "room_invalid" and error.get("ref") == long and error.get("fatal") is False,
            '{"code":"room_invalid","ref":"rrr...","fatal":false}', error)
    a.send({"type": "rooms"})
    listing = a.wait_type("rooms")
    s.check("rooms: the rooms request is answered", listing is not None and isinstance(listing.get("rooms"), list),
            '{"type":"rooms","rooms":[...]}', listing)


def history(s: Suite) -> None:
    """Pages of a fresh room: the newest, before, after, and after 0 (from the start)."""
    a: Peer = s.a
    room: str = s.room
    acks = [s.post(a, f"history {i}", room=room) for i in range(5)]
    ids = [f.get("id") for f in acks if f is not None and f.get("type") == "msg"]
    if not s.check("history: five messages posted", len(ids) == 5, "five acknowledgements", f"{len(ids)}"):
        return
    s.history_ids = [int(i) for i in ids if isinstance(i, int)]
    pages: list[tuple[str, dict[str, object], list[object], bool]] = [
        ("the newest", {}, ids[3:], True),
        ("before", {"before": ids[3]}, ids[1:3], True),
        ("after", {"after": ids[1]}, ids[2:4], True),
        ("after 0 is from the start", {"after": 0, "limit": 500}, ids, False),
    ]
    for what, ask, want, more in pages:
        a.send({"type": "history", "room": room, "limit": 2, **ask})
        page = a.wait_type("history")
        got = [m.get("id") for m in (page or {}).get("messages") or []]
        s.check(f"history: {what}", page is not None and got == want and page.get("more") is more,
                f"ids {want}, more {str(more).lower()}", f"ids {got}, more {page and page.get('more')}")


def framing(s: Suite) -> None:
    """A frame of exactly max_frame bytes (CR LF after it) is taken; one byte more is a fatal frame_too_large."""
    a: Peer = s.a
    cid = s.cid()
    wire = {"type": "msg", "room": "lobby", "cid": cid, "text": ""}
    wire["text"] = "x" * (s.max_frame - len(json.dumps(wire, separators=(",", ":"))))
    frame = json.dumps(wire, separators=(",", ":")).encode()
    for _ in range(4):  # waiting out slow_down, as post() does
        a.send_raw(frame + b"\r\n")
        ack = a.wait(lambda f: f.get("cid") == cid or (f.get("type") == "error" and f.get("ref") == cid))
        if ack is None or ack.get("code") != "slow_down":
            break
        time.sleep(min(float(ack.get("retry_after") or 1.0), 5.0))
    s.check(f"framing: a frame of exactly max_frame ({s.max_frame}) bytes, then CR LF", ack is not None and
            ack.get("type") == "msg", "its acknowledgement", ack)
    big, _ = s.login("big")
    big.send_raw(b'{"type":"ping","token":"' + b"x" * s.max_frame + b'"}\n')
    error = big.wait(lambda f: f.get("type") == "error")
    s.check("framing: a frame over max_frame", error is not None and error.get("code") == "frame_too_large" and
            error.get("fatal") is True, "a fatal frame_too_large", error)
    s.check("framing: then the connection is closed", big.wait_closed(), "closed", "still open")
    big.close()


def bye(s: Suite) -> None:
    """A client's bye: the server closes, and the others see left with its reason."""
    a: Peer = s.a
    b: Peer = s.b
    a.send({"type": "bye", "reason": "conformance done"})
    s.check("bye: the server closes the connection", a.wait_closed(), "closed", "still open")
    left = b.wait_type("left", user=f"{s.tag}-a")
    s.check("bye: the others see left with the reason", left is not None and
            "conformance done" in str(left.get("reason")), '"left" whose reason holds "conformance done"', left)
    b.send({"type": "bye"})
    b.wait_closed()


ALL: list[Callable[[Suite], None]] = [
    handshake, versions, before_login, session_errors, messages, changes.changes, away, rooms, indicators.typing,
    private_rooms,
    history, reads.around, reads.search, accounts.accounts, pacing.rate, framing, pacing.handshake_timeout, bye]
