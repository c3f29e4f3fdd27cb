"""The user-list fast paths: the server sends a room's whole user list to every user who joins it; with
thousands of members that is its busiest encoding job. These build the same bytes as
``encode_frame(UserList(...).to_wire())`` from names encoded once each."""

from __future__ import annotations

import json
from collections.abc import Mapping

from .away import away_frames

MAX_ENCODED_NAME = 32 * 4 + 3  # 32 code points of up to 4 UTF-8 bytes, two quotes, a comma


def encode_name(name: str) -> bytes:
    """A name as a JSON string, for ``encode_user_lists``."""
    return _json_str(name)


def encode_user_lists(room: str, encoded_names: list[bytes], per_frame: int,
                      away: Mapping[bytes, bytes] | None = None) -> list[bytes]:
    """The ``users`` frames for a room: ``per_frame`` names each, all but the last marked ``more``. ``away``: the
    away entries (``away.away_entry``) by encoded name; a frame carries its names' (split further if they are long)."""
    head = b'{"type":"users","room":' + _json_str(room) + b',"users":['
    frames: list[bytes] = []
    count = len(encoded_names)
    for start in range(0, max(count, 1), per_frame):
        more = start + per_frame < count
        body = encoded_names[start : start + per_frame]
        tail = b'],"more":true}\n' if more else b'],"more":false}\n'
        if away:  # its entries take at most a quarter of the frame limit (names_per_frame: the names half)
            away_frames(head, body, tail, away, budget=per_frame * MAX_ENCODED_NAME // 2, out=frames)
        else:
            frames.append(head + b",".join(body) + tail)
    return frames


def names_per_frame(max_frame: int) -> int:
    """How many names fit in one ``users`` frame of at most half the frame limit, whatever the names."""
    return max(1, (max_frame // 2 - 64) // MAX_ENCODED_NAME)


def _json_str(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8")
