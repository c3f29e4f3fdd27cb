"""Framing: one compact UTF-8 JSON object per line.

A frame is the JSON text of one object followed by a line feed (``\\n``); an
optional carriage return before it is ignored. JSON escapes every control
character inside strings, so a line feed can only ever end a frame: messages
holding newlines, ``~`` or emoji need no escaping of ours.

``FrameDecoder`` is fed whatever the transport delivered (any split, any merge)
and hands back whole frames. It never holds more than ``max_frame`` bytes (plus
the carriage return of a CRLF line end) of an
unfinished frame: a longer one raises a fatal ProtocolError at once.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections import deque
from typing import Any

from .errors import ErrorCode, ProtocolError

DEFAULT_MAX_FRAME = 64 * 1024

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False)
# What _encoder.encode() builds anew on every call (json.encoder.JSONEncoder.iterencode, one-shot):
# CPython's C encoder, made once here with the same settings, so the bytes are the same.
# (Another Python, or another signature: the plain path.)


def _make_c_encoder() -> Any:
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    try:
        encode = make(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
        sample = {"a": [1, 2.5, -0.0, "\u00e9\n\U0001f600", None, True, {}]}
        if "".join(encode(sample, 0)) != _encoder.encode(sample):
            return None
    except (TypeError, ValueError):
        return None
    return encode


_c_encode: Any = _make_c_encoder()


def encode_frame(obj: dict[str, Any]) -> bytes:
    """One frame: compact JSON, UTF-8, newline-terminated."""
    if _c_encode is not None:
        return "".join(_c_encode(obj, 0)).encode("utf-8") + b"\n"
    return _encoder.encode(obj).encode("utf-8") + b"\n"


def encode_frame_plain(obj: dict[str, Any]) -> bytes:
    """encode_frame through json.JSONEncoder.encode: what the fast path must equal (a test checks)."""
    return _encoder.encode(obj).encode("utf-8") + b"\n"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON syntax, but no number
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def decode_frame(frame: bytes) -> dict[str, Any]:
    """Parse one frame (without its line feed) into a dict, or raise a non-fatal ProtocolError."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            ErrorCode.BAD_UTF8, f"The frame is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        obj = _decoder.decode(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and an integer of thousands of digits (int() refuses
        # them: parsing one takes quadratic time); RecursionError: absurdly deep nesting
        if isinstance(exc, json.JSONDecodeError):
            detail = exc.msg
        elif isinstance(exc, RecursionError):
            detail = "too deeply nested"
        else:
            detail = "a number has too many digits" if "digits" in str(exc) else str(exc)
        raise ProtocolError(ErrorCode.BAD_JSON, f"The frame is not valid JSON: {detail}.") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "A frame must be a JSON object.")
    return obj


class FrameDecoder:
    """Splits a byte stream into frames.

    ``feed(data)`` takes any chunk; ``next_frame()`` returns the next whole
    frame (bytes, without its line ending) or None when more data is needed.
    An unfinished frame longer than ``max_frame`` raises a fatal ProtocolError
    once the whole frames before it have been taken.
    """

    __slots__ = ("_frames", "_overflow", "_partial", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._frames: deque[bytes] = deque()
        self._partial = bytearray()
        self._overflow = False

    @property
    def buffered(self) -> int:
        """Bytes of the unfinished frame held now (never more than max_frame)."""
        return len(self._partial)

    def feed(self, data: bytes) -> None:
        if self._overflow or not data:
            return
        # an unfinished line may hold one byte more than the limit: the "\r" of a "\r\n"
        if b"\n" not in data:
            if len(self._partial) + len(data) > self.max_frame + 1:
                self._overflow = True
                self._partial.clear()
            else:
                self._partial += data
            return
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._partial:
            self._partial += lines[0]
            lines[0] = bytes(self._partial)
            self._partial.clear()
        limit = self.max_frame
        frames = self._frames
        for raw in lines:
            line = raw[:-1] if raw[-1:] == b"\r" else raw
            if len(line) > limit:
                # whole frames before this one still count; this one ends the stream
                self._overflow = True
                return
            if line:
                frames.append(line)
        if len(tail) > limit + 1:
            self._overflow = True
            return
        self._partial += tail

    def next_frame(self) -> bytes | None:
        if self._frames:
            return self._frames.popleft()
        if self._overflow:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"A frame is longer than the limit of {self.max_frame} bytes.",
                fatal=True,
            )
        return None
