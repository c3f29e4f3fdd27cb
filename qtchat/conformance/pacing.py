"""Sections on pacing: the message rate (``slow_down``, then ``flood``) and the handshake timeout.

The rate is read from ``welcome.limits`` (a server that announces none is not checked); the handshake
timeout cannot be announced before the handshake, so it is checked only when the caller gives it
(``--handshake-timeout S``). Each runs on a connection of its own, in a room of its own.
"""

from __future__ import annotations

import math
import time

from .checks import Suite
from .wire import Frame, Peer

FLOOD_MESSAGES = 2000  # sent at most, as fast as the socket takes them, before a server must have said flood


def rate(s: Suite) -> None:
    """Over the announced burst a message gets a non-fatal slow_down (ref its cid, retry_after) and is not
    relayed; a client that keeps sending regardless is disconnected with a fatal flood."""
    burst, per_s = int(s.limit("messages_burst")), s.limit("messages_per_s")
    if not burst or not per_s:
        s.skip("rate: slow_down over the burst", "the server announces no message rate (welcome.limits."
               "messages_per_s, messages_burst)")
        return
    peer, _ = s.login("rate")
    room = f"{s.tag} rate"
    peer.send({"type": "join", "room": room})
    peer.wait_type("room")
    cids = [s.cid() for _ in range(burst + 5)]
    peer.send_raw(b"".join(_msg(room, cid) for cid in cids))  # at once: a burst and five more
    answers = _answers(peer, cids)
    refused = [a for a in answers.values() if a.get("type") == "error"]
    ok = len(answers) == len(cids) and bool(refused) and all(_slow_down(a) for a in refused)
    s.check(f"rate: {len(cids)} messages at once over a burst of {burst}: slow_down for the last", ok,
            'an answer for each cid, the last ones {"code":"slow_down","fatal":false,"ref":cid,"retry_after":>0}',
            f"{len(answers)} answers, {len(refused)} refused: {refused[:1] or list(answers.values())[-1:]}")
    accepted = sum(1 for a in answers.values() if a.get("type") == "msg")
    s.check("rate: a refused message is not relayed", accepted + len(refused) == len(answers) and
            accepted <= burst + math.ceil(per_s), f"at most {burst} + {math.ceil(per_s)} acknowledged", f"{accepted}")
    if refused:
        _retry(s, peer, room, refused[-1])
    _flood(s, peer, room)


def _answers(peer: Peer, cids: list[str]) -> dict[str, Frame]:
    """The answer (acknowledgement or error) to each of these cids, as far as they came."""
    answers: dict[str, Frame] = {}
    for _ in cids:
        answer = peer.wait(lambda f: f.get("cid") in cids or f.get("ref") in cids)
        if answer is None:
            break
        answers[str(answer.get("cid") or answer.get("ref"))] = answer
    return answers


def _slow_down(error: Frame) -> bool:
    wait = error.get("retry_after")
    return error.get("code") == "slow_down" and error.get("fatal") is False and isinstance(wait, int | float) and \
        not isinstance(wait, bool) and wait > 0


def _retry(s: Suite, peer: Peer, room: str, refusal: Frame) -> None:
    wait = float(refusal["retry_after"])
    cid = str(refusal.get("ref"))
    if wait > s.timeout:
        s.skip("rate: sent again after retry_after, a refused message is taken", f"retry_after is {wait:g} s")
        return
    time.sleep(wait)
    peer.send_raw(_msg(room, cid))
    ack = peer.wait(lambda f: f.get("cid") == cid or f.get("ref") == cid)
    s.check(f"rate: sent again after retry_after ({wait:g} s), a refused message is taken", ack is not None and
            ack.get("type") == "msg", f'its acknowledgement, {{"type":"msg","cid":"{cid}",...}}', ack)


def _flood(s: Suite, peer: Peer, room: str) -> None:
    sent = 0
    while sent < FLOOD_MESSAGES and not peer.closed:
        try:
            peer.send_raw(b"".join(_msg(room, f"{s.tag}-f{sent + i}") for i in range(50)))
        except OSError:
            break  # closed under us: the flood error is in what was read
        sent += 50
        peer.quiet(0.01)
    error = peer.wait(lambda f: f.get("type") == "error" and f.get("code") != "slow_down")
    s.check(f"rate: still sending after slow_down is a fatal flood ({sent} messages sent)", error is not None and
            error.get("code") == "flood" and error.get("fatal") is True, '{"code":"flood","fatal":true}', error)
    s.check("rate: then the connection is closed", peer.wait_closed(), "closed", "still open")
    peer.close()


def _msg(room: str, cid: str) -> bytes:
    return f'{{"type":"msg","room":"{room}","text":"pacing","cid":"{cid}"}}\n'.encode()


def handshake_timeout(s: Suite) -> None:
    """A hello left unfinished (after a ping, answered) gets a fatal handshake_timeout once the timeout has
    passed since the connection opened, not before, however slowly its bytes come."""
    limit = s.handshake_timeout
    name = "handshake: an unfinished hello gets handshake_timeout"
    if limit is None:
        s.skip(name, "the server's handshake timeout is not known (give --handshake-timeout S)")
        return
    peer = s.connect()
    opened = time.monotonic()
    peer.send({"type": "ping", "token": "before-hello"})
    pong = peer.wait_type("pong", token="before-hello")
    s.check("handshake: a ping before hello is answered", pong is not None, '{"type":"pong",...}', pong)
    peer.send_raw(b'{"type":"hello","version":1,')  # and never the rest
    early = peer.wait(lambda f: f.get("type") == "error", max(0.0, 0.8 * limit - (time.monotonic() - opened)))
    s.check("handshake: not dropped before its timeout", early is None and not peer.closed,
            f"nothing within {0.8 * limit:g} s", early or "closed")
    error = peer.wait(lambda f: f.get("type") == "error", 0.2 * limit + s.timeout)
    s.check(name, error is not None and error.get("code") == "handshake_timeout" and error.get("fatal") is True,
            f"a fatal handshake_timeout about {limit:g} s after connecting", error)
    s.check("handshake: then the connection is closed", peer.wait_closed(), "closed", "still open")
    peer.close()
