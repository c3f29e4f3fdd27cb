"""The typing section (PROTOCOL.md, typing), for a server that announces typing (welcome.limits.typing_members):
a start and a stop reach a room's other members, a private one its recipient; past the typing rate a
non-fatal ``typing_too_fast`` (checked when the server announces a message rate: a server with its rate
limits off takes any number), on a connection and in a room of its own."""

from __future__ import annotations

from qtchat.protocol import TYPING_BURST

from .checks import Suite
from .wire import Frame, Peer


def typing(s: Suite) -> None:
    """A start reaches the room's members (``on``), then a stop (``off``); a private one reaches its recipient,
    without ``room``."""
    if "typing_members" not in s.limits or 0 < s.limit("typing_members") < 2:
        s.skip("typing: relayed to a room's members", "the server announces no typing for a room of two "
               "(welcome.limits.typing_members)")
        return
    a: Peer = s.a
    b: Peer = s.b
    room, name = f"{s.tag} typing", f"{s.tag}-a"
    for peer in (a, b):
        peer.send({"type": "join", "room": room})
        peer.wait_type("room", name=room)
    a.send({"type": "typing", "room": room, "on": True})
    start = b.wait(lambda f: _names(f, "on", name) and f.get("room") == room)
    s.check("typing: a start reaches the room's members", start is not None and isinstance(start.get("off"), list),
            f'{{"type":"typing","room":"{room}","on":["{name}"],"off":[]}}', start)
    a.send({"type": "typing", "room": room, "on": False})
    stop = b.wait(lambda f: _names(f, "off", name) and f.get("room") == room)
    s.check("typing: then a stop", stop is not None, f'{{"type":"typing","room":"{room}","on":[],"off":["{name}"]}}',
            stop)
    a.send({"type": "typing", "to": f"{s.tag}-b", "on": True})
    private = b.wait(lambda f: _names(f, "on", name) and "room" not in f)
    s.check("typing: a private one reaches its recipient, without room", private is not None,
            f'{{"type":"typing","on":["{name}"],"off":[]}}', private)
    for peer in (a, b):
        peer.send({"type": "part", "room": room})
    too_fast(s)


def too_fast(s: Suite) -> None:
    if not s.limit("messages_per_s"):
        s.skip("typing: typing_too_fast past the rate", "the server announces no message rate (welcome.limits."
               "messages_per_s): its rate limits may be off")
        return
    peer, _ = s.login("typer")
    room = f"{s.tag} typer"
    peer.send({"type": "join", "room": room})
    peer.wait_type("room", name=room)
    frame = f'{{"type":"typing","room":"{room}","on":true}}\n'.encode()
    peer.send_raw(frame * (TYPING_BURST + 2))  # at once: the burst and two more
    error = peer.wait(lambda f: f.get("type") == "error")
    wait = error.get("retry_after") if error is not None else None
    s.check(f"typing: {TYPING_BURST + 2} at once: typing_too_fast past the rate", error is not None and
            error.get("code") == "typing_too_fast" and error.get("fatal") is False and error.get("ref") == "typing"
            and isinstance(wait, int | float) and wait > 0,
            '{"code":"typing_too_fast","fatal":false,"ref":"typing","retry_after":>0}', error)
    peer.send({"type": "ping", "token": "after-typing"})
    s.check("typing: the connection goes on", peer.wait_type("pong", token="after-typing") is not None, "a pong",
            "none")
    peer.close()


def _names(frame: Frame, field: str, name: str) -> bool:
    names = frame.get(field)
    return frame.get("type") == "typing" and isinstance(names, list) and name in names
