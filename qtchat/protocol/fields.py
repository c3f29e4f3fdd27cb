"""The kinds of field a frame holds, and the checks they share.

An event declares each of its fields once, as ``Annotated[type, Kind(...)]`` (see events.py): the kind
says how the field is checked when it arrives (its limits, its default on the wire, the exact
ProtocolError) and when it is left out of a frame that is sent. codec.py turns these declarations
into one encoder and one decoder per event class, as Python source compiled once at import, so a
frame costs what hand-written code would.

Each kind writes its own lines of that source (``decode_lines``) and the expression that puts its
value on the wire (``wire_value``); a new kind of field is a new subclass here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from .errors import ErrorCode, ProtocolError

MAX_SHORT_TEXT = 200  # reasons, tokens, client strings
MAX_MESSAGE_ID = (1 << 63) - 1  # what SQLite's INTEGER holds; real ids stay below 2**53

_C0_ALLOWED = frozenset("\t\n")
_FORBIDDEN_IN_TEXT = frozenset({"Cc", "Zl", "Zp"})


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


REQUIRED: Final = _Marker("REQUIRED")
"""A field's wire default when the frame must hold it."""
UNSET: Final = _Marker("UNSET")
"""A Kind's ``default`` when the declaration gives none (the constructor's default applies)."""


# --------------------------------------------------------------------- shared checks


def bad(message: str, ref: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FRAME, message, ref=ref)


def check_unicode(value: str, key: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(ErrorCode.BAD_UTF8, f"Field {key!r} holds a lone surrogate.") from None
    return value


def check_text(text: str, ref: str | None = None) -> None:
    """A chat text must have something visible and no control character (C0, DEL, C1) but tab and
    line feed, and no line or paragraph separator (U+2028, U+2029): lines end with a line feed."""
    if not text.strip():
        raise ProtocolError(ErrorCode.BAD_TEXT, "The message is empty.", ref=ref)
    if not text.isprintable():
        for ch in text:
            if not ch.isprintable() and ch not in _C0_ALLOWED and unicodedata.category(ch) in _FORBIDDEN_IN_TEXT:
                raise ProtocolError(
                    ErrorCode.BAD_TEXT,
                    f"The message contains the control character U+{ord(ch):04X}.",
                    ref=ref,
                )


def clean_line(text: str) -> str:
    """Free text for one line (a bye or kick reason): control characters and line breaks become spaces."""
    if text.isprintable():
        return text
    return "".join(
        " " if not ch.isprintable() and unicodedata.category(ch) in _FORBIDDEN_IN_TEXT else ch for ch in text
    )


def decode_limits(d: Mapping[str, Any], key: str) -> dict[str, float]:
    """A map of limit names to numbers; entries of other kinds are left out (later versions may add some)."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"Field {key!r} must be an object.")
    return {
        k: float(v) for k, v in value.items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e18
    }


def decode_str_list(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, list):
        raise bad(f"Field {key!r} must be a list of strings.")
    for item in value:
        if not isinstance(item, str):
            raise bad(f"Field {key!r} must be a list of strings.")
        check_unicode(item, key)
    return tuple(value)


MAX_ADDRESSES = 64  # addresses kept of an ``Addresses`` field
MAX_ADDRESS = 300  # code points of one address


def decode_addresses(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Absent or null: none; otherwise a list, of which the strings of at most MAX_ADDRESS code points are kept
    (at most MAX_ADDRESSES of them): an entry a client cannot use is left out, the frame is not refused."""
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad(f"Field {key!r} must be a list of strings.")
    kept = [v for v in value if isinstance(v, str) and 0 < len(v) <= MAX_ADDRESS]
    for item in kept:
        check_unicode(item, key)
    return tuple(kept[:MAX_ADDRESSES])


def decode_tally(d: Mapping[str, Any], key: str) -> dict[str, int]:
    """A map of strings to counts (absent: empty): reactions and how many gave each."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31
            for k, v in value.items()):
        raise bad(f"Field {key!r} must be an object of counts.")
    return dict(value)


def decode_name_map(d: Mapping[str, Any], key: str, max_len: int) -> dict[str, str]:
    """Absent or null: empty; otherwise an object of names to texts, of which the entries with a string of at most
    ``max_len`` code points are kept (an entry a client cannot use is left out, the frame is not refused)."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"Field {key!r} must be an object.")
    kept = {k: v for k, v in value.items() if isinstance(v, str) and len(v) <= max_len}
    for k, v in kept.items():
        check_unicode(k, key)
        check_unicode(v, key)
    return kept


HELPERS: dict[str, object] = {
    "_bad": bad, "_check_unicode": check_unicode, "_check_text": check_text, "_clean_line": clean_line,
    "_limits": decode_limits, "_str_list": decode_str_list, "_tally": decode_tally,
    "_addresses": decode_addresses, "_name_map": decode_name_map, "ProtocolError": ProtocolError,
}
"""The names the generated code calls."""


# --------------------------------------------------------------------- the plan of one field


class Slot:
    """One field of one class as the codec sees it: its kind, wire key, default and the variable it decodes to."""

    __slots__ = ("default", "key", "kind", "name", "optional", "var")

    def __init__(self, name: str, kind: Kind, optional: bool, default: object) -> None:
        self.name = name
        self.kind = kind
        self.key = kind.key or name
        self.optional = optional
        self.default = default  # the wire default: a value, or REQUIRED
        self.var = "v_" + name

    def missing(self) -> str:
        return f"Field {self.key!r} is missing."


def _q(text: str) -> str:
    return repr(text)


class Kind:
    """How a field travels. ``key``: its wire name when not the field's name; ``omit_empty``: left out
    of a sent frame when empty or false; ``omit_if``: left out when that other field is set (not None).
    ``default``: its value when the frame leaves it out, when that differs from the constructor's
    (``required=True``: the frame must hold it, whatever the constructor's default)."""

    python_type: Any = object

    def __init__(self, *, key: str | None = None, omit_empty: bool = False, omit_if: str | None = None,
                 default: object = UNSET, required: bool = False) -> None:
        self.key = key
        self.omit_empty = omit_empty
        self.omit_if = omit_if
        self.explicit_default = default
        self.required = required

    def needs(self) -> tuple[str, ...]:
        """Fields that must be decoded before this one."""
        return ()

    def accepts(self, annotation: Any) -> bool:
        return bool(annotation == self.python_type)

    def bind(self, s: Slot, consts: dict[str, object]) -> None:
        """Put what the generated code of this field calls into its namespace."""

    def wire_value(self, attr: str) -> str:
        return attr

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        raise NotImplementedError


def _default_expr(s: Slot, consts: dict[str, object]) -> str:
    if isinstance(s.default, (str, int, float, bool)) or s.default is None:
        return repr(s.default)
    name = f"_default_{s.name}"
    consts[name] = s.default
    return name


def _get(s: Slot, consts: dict[str, object]) -> str:
    """``d.get(key, default)``: a JSON null is the value None, not the default (for strings, bools, numbers)."""
    if s.default is REQUIRED or s.default is None:
        return f"{s.var} = d.get({_q(s.key)})"
    return f"{s.var} = d.get({_q(s.key)}, {_default_expr(s, consts)})"


def _wrong_type(s: Slot, what: str) -> str:
    """The message of a value of the wrong type: null (or absent) is "missing" where None is not allowed."""
    wrong = _q(f"Field {s.key!r} {what}.")
    return wrong if s.optional else f"{_q(s.missing())} if {s.var} is None else {wrong}"


def _optional(s: Slot, body: list[str]) -> list[str]:
    """An optional field: absent or null is None, anything else is checked like the required field."""
    if not s.optional:
        return body
    return [f"{s.var} = d.get({_q(s.key)})", f"if {s.var} is not None:", *("    " + line for line in body[1:])]


class Str(Kind):
    """A string of at most ``max_len`` code points, with no lone surrogate; ``clean``: control
    characters become spaces (free text for one line)."""

    python_type = str

    def __init__(self, max_len: int = MAX_SHORT_TEXT, *, clean: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self.max_len = max_len
        self.clean = clean

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        lines = [
            _get(s, consts),
            f"if {v}.__class__ is not str and not isinstance({v}, str):",
            f"    raise _bad({_wrong_type(s, 'must be a string')})",
            f"if len({v}) > {self.max_len}:",
            f"    raise _bad({_q(f'Field {s.key!r} is longer than {self.max_len} characters.')})",
            f"if not {v}.isascii():",
            f"    _check_unicode({v}, {_q(s.key)})",
        ]
        if self.clean:
            lines.append(f"{v} = _clean_line({v})")
        return _optional(s, lines)


class ChatText(Kind):
    """A chat message's text: visible, no control character but tab and line feed (``check_text``)."""

    python_type = str

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        return [
            f"{v} = d.get({_q(s.key)})",
            f"if not isinstance({v}, str):",
            f"    raise _bad({_q(f'Field {s.key!r} must be a string.')})",
            f"if not {v}.isascii():",
            f"    _check_unicode({v}, {_q(s.key)})",
            f"_check_text({v})",
        ]


class Query(Str):
    """A search query: trimmed, not empty, at most ``max_len`` code points after trimming (and ten
    times that before)."""

    def __init__(self, max_len: int, **common: Any) -> None:
        super().__init__(10 * max_len, **common)
        self.query_len = max_len

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        return [
            *super().decode_lines(s, consts),
            f"{v} = {v}.strip()",
            f"if not {v}:",
            "    raise _bad('The search query is empty.')",
            f"if len({v}) > {self.query_len}:",
            f"    raise _bad({_q(f'The search query is longer than {self.query_len} characters.')})",
        ]


class Int(Kind):
    """An integer (not a boolean). ``lo``/``hi``: its range, refused with ``range_message`` (formatted
    with ``key``, ``lo`` and ``hi``), or brought into it with ``clamp``; ``default_from``: absent or null
    means the value of that field."""

    python_type = int
    range_message = "Field {key!r} must be between {lo} and {hi}."

    def __init__(self, *, lo: int | None = None, hi: int | None = None, clamp: bool = False,
                 default_from: str | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.lo, self.hi, self.clamp = lo, hi, clamp
        self.default_from = default_from

    def needs(self) -> tuple[str, ...]:
        return (self.default_from,) if self.default_from else ()

    def _range_lines(self, s: Slot) -> list[str]:
        v, lo, hi = s.var, self.lo, self.hi
        if lo is None and hi is None:
            return []
        if self.clamp:
            return [f"if {v} < {lo}:", f"    {v} = {lo}", f"elif {v} > {hi}:", f"    {v} = {hi}"]
        test = f"{v} < {lo}" if hi is None else f"{v} > {hi}" if lo is None else f"not {lo} <= {v} <= {hi}"
        message = self.range_message.format(key=s.key, lo=lo, hi=hi)
        return [f"if {test}:", f"    raise _bad({_q(message)})"]

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        lines = [f"{v} = d.get({_q(s.key)})"]
        if self.default_from:
            lines += [f"if {v} is None:", f"    {v} = v_{self.default_from}"]
        elif s.default is not REQUIRED and not s.optional:
            lines += [f"if {v} is None:", f"    {v} = {_default_expr(s, consts)}"]
        lines += [
            f"if {v}.__class__ is not int and (isinstance({v}, bool) or not isinstance({v}, int)):",
            f"    raise _bad({_wrong_type(s, 'must be an integer')})",
            *self._range_lines(s),
        ]
        return lines if self.default_from else _optional(s, lines)


class Id(Int):
    """A message id: an integer from 0 to 2**63-1."""

    range_message = "Message ids are from 0 to 2**63-1."

    def __init__(self, **common: Any) -> None:
        super().__init__(lo=0, hi=MAX_MESSAGE_ID, **common)


class Count(Int):
    """A count: an integer, not negative."""

    range_message = "Field {key!r} must not be negative."

    def __init__(self, **common: Any) -> None:
        super().__init__(lo=0, **common)


class Bool(Kind):
    """true or false. ``only_with=(field, what)``: true only when that field is set (else the frame is
    refused: "Field 'held' is only for private messages (with 'to').")."""

    python_type = bool

    def __init__(self, *, only_with: tuple[str, str] | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.only_with = only_with

    def needs(self) -> tuple[str, ...]:
        return (self.only_with[0],) if self.only_with else ()

    def wire_value(self, attr: str) -> str:
        return "True" if self.omit_empty else attr  # sent only when true: the literal, as JSON has it

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        lines = [
            _get(s, consts),
            f"if {v} is not True and {v} is not False:",
            f"    raise _bad({_q(f'Field {s.key!r} must be true or false.')})",
        ]
        if self.only_with:
            other, what = self.only_with
            message = f"Field {s.key!r} is only for {what} (with {other!r})."
            lines += [f"if {v} and v_{other} is None:", f"    raise _bad({_q(message)})"]
        return _optional(s, lines)  # ``bool | None``: absent or null is None


class Seconds(Kind):
    """A number of seconds below a million, as a float; ``positive``: more than 0 (else at least 0)."""

    python_type = float

    def __init__(self, *, positive: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self.positive = positive

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        v = s.var
        low = "0 <" if self.positive else "0 <="
        return _optional(s, [
            _get(s, consts),
            f"if not isinstance({v}, (int, float)) or isinstance({v}, bool) or not {low} {v} < 1e6:",
            f"    raise _bad({_q(f'Field {s.key!r} must be a number of seconds.')})",
            f"{v} = float({v})",
        ])


class Limits(Kind):
    """A map of limit names to numbers (absent: empty); entries of other kinds are left out."""

    python_type = Mapping[str, float]

    def wire_value(self, attr: str) -> str:
        return f"dict({attr})"

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        return [f"{s.var} = _limits(d, {_q(s.key)})"]


class Tally(Kind):
    """A map of strings to positive counts (absent: empty), as a dict."""

    python_type = Mapping[str, int]

    def wire_value(self, attr: str) -> str:
        return f"dict({attr})"

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        return [f"{s.var} = _tally(d, {_q(s.key)})"]


class Names(Kind):
    """A list of strings (user names), as a tuple."""

    python_type = tuple[str, ...]

    def wire_value(self, attr: str) -> str:
        return f"list({attr})"

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        if self.omit_empty:  # left out when empty: absent means none
            return [f"{s.var} = _str_list(d, {_q(s.key)}) if d.get({_q(s.key)}) is not None else ()"]
        return [f"{s.var} = _str_list(d, {_q(s.key)})"]


class Addresses(Kind):
    """A list of network addresses (``host:port``), as a tuple; absent, null or empty: none (and left out of a
    sent frame). Entries that are not strings, or longer than MAX_ADDRESS, are left out (``decode_addresses``)."""

    python_type = tuple[str, ...]

    def __init__(self) -> None:
        super().__init__(omit_empty=True)

    def wire_value(self, attr: str) -> str:
        return f"list({attr})"

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        return [f"{s.var} = _addresses(d, {_q(s.key)})"]


class NameMap(Kind):
    """An object of names to short texts (who is away, with their messages); absent, null or empty: none (and
    left out of a sent frame). Entries whose text is no string of at most ``max_len`` code points are left out."""

    python_type = Mapping[str, str]

    def __init__(self, max_len: int) -> None:
        super().__init__(omit_empty=True)
        self.max_len = max_len

    def wire_value(self, attr: str) -> str:
        return f"dict({attr})"

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        return [f"{s.var} = _name_map(d, {_q(s.key)}, {self.max_len})"]
