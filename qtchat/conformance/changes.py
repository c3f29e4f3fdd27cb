"""The edits section (PROTOCOL.md: edit, delete, replies, react), for a server that announces an edit window
(welcome.limits.edit_window): an edit reaches the room and the history; someone else's message is refused
(``not_author``); a deletion leaves an empty, ``deleted`` message; a reply is quoted; a reaction is totalled,
and one outside the eight is refused (``bad_reaction``)."""

from __future__ import annotations

from .checks import Suite
from .wire import Peer

PARTY = "\N{PARTY POPPER}"


def changes(s: Suite) -> None:
    if not s.limit("edit_window"):
        s.skip("edits: edit, delete, reply, react", "the server announces no edit window (welcome.limits.edit_window)")
        return
    a: Peer = s.a
    b: Peer = s.b
    first = s.post(a, "conformance: a typo hre")
    if first is None or not isinstance(first.get("id"), int):
        s.check("edits: a message to edit", False, "msg with an id", first)
        return
    mid = first["id"]
    a.send({"type": "edit", "id": mid, "text": "conformance: a typo here"})
    edited = b.wait_type("edited", id=mid)
    s.check("edits: an edit reaches the room", edited is not None and edited.get("text") == "conformance: a typo here"
            and isinstance(edited.get("edited"), int), f'{{"type":"edited","id":{mid},"text":...,"edited":...}}', edited)
    b.send({"type": "edit", "id": mid, "text": "not mine"})
    refused = b.wait(lambda f: f.get("type") == "error" and f.get("ref") == f"edit:{mid}")
    s.check("edits: someone else's message is refused", refused is not None and refused.get("code") == "not_author"
            and refused.get("fatal") is False, f'{{"code":"not_author","ref":"edit:{mid}"}}', refused)
    b.send({"type": "msg", "room": "lobby", "text": "conformance: a reply", "cid": "reply-1", "reply_to": mid})
    reply = a.wait_type("msg", text="conformance: a reply")
    s.check("edits: a reply quotes what it answers", reply is not None and reply.get("reply_to") == mid and
            reply.get("reply_from") == f"{s.tag}-a" and reply.get("reply_text") == "conformance: a typo here",
            f'msg with "reply_to":{mid},"reply_from":"{s.tag}-a"', reply)
    b.send({"type": "react", "id": mid, "emoji": PARTY})
    tally = a.wait(lambda f: f.get("type") == "reactions" and f.get("id") == mid)
    s.check("edits: a reaction is totalled for the room", tally is not None and tally.get("reactions") == {PARTY: 1},
            f'{{"type":"reactions","id":{mid},"reactions":{{"{PARTY}":1}}}}', tally)
    b.send({"type": "react", "id": mid, "emoji": "x"})
    bad = b.wait(lambda f: f.get("type") == "error" and f.get("ref") == f"react:{mid}")
    s.check("edits: a reaction outside the eight is refused", bad is not None and bad.get("code") == "bad_reaction",
            f'{{"code":"bad_reaction","ref":"react:{mid}"}}', bad)
    a.send({"type": "delete", "id": mid})
    gone = b.wait_type("deleted", id=mid)
    s.check("edits: a deletion reaches the room", gone is not None and gone.get("by") == f"{s.tag}-a",
            f'{{"type":"deleted","id":{mid},"by":"{s.tag}-a"}}', gone)
