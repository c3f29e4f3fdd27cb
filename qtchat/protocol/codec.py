"""One generic codec for every declared frame: it reads the declarations and compiles, once per class,
an encoder (``to_wire``) and a decoder (``from_wire``).

A declaration is a frozen dataclass whose fields are ``Annotated[type, Kind(...)]`` (the kinds are in
fields.py), decorated with ``declare`` (events.py wraps it as ``event``, adding the wire type). From
it this module writes Python source, the same code one would write by hand (a dict display for the
fields always sent, an ``if`` per field sent only sometimes; one check after another on the way in),
and compiles it with ``exec``, as dataclasses itself does. So declarations cost nothing per frame.
``source(cls)`` shows what was compiled, for reading and debugging.

Every check is made at import: each field has exactly one kind, the kind fits the field's type, the
wire order names every field once, and a field that depends on another (a default taken from it,
a rule about it) is decoded after it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self, TypeVar

from .fields import HELPERS, REQUIRED, UNSET, Kind, Slot

Wire = dict[str, Any]


class Record:
    """Something with a declared wire shape: an event, or a part of one (a room, say)."""

    __slots__ = ()
    WIRE_SOURCE: ClassVar[str] = ""  # the compiled codec's source, for source()

    def to_wire(self) -> Wire:
        """The JSON-ready dict for this record (compiled from its declaration)."""
        raise TypeError(f"{type(self).__name__} is not declared (see qtchat.protocol.codec)")

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Self:
        """Check a decoded JSON object and build the record from it, or raise ProtocolError (compiled)."""
        raise TypeError(f"{cls.__name__} is not declared (see qtchat.protocol.codec)")


R = TypeVar("R", bound=Record)


# --------------------------------------------------------------------- nested records


class Records(Kind):
    """A list of records (``tuple[X, ...]``). ``view``: the fields each entry carries on the wire, when
    not all of X's (a history entry has no room); ``not_object``: the error for an entry that is no
    JSON object; ``inherit``: fields of this frame each entry takes (a history page's room)."""

    def __init__(self, of: type[Record], *, view: Sequence[str] | None = None, not_object: str | None = None,
                 inherit: Sequence[str] = (), **common: Any) -> None:
        super().__init__(**common)
        self.of, self.view, self.not_object, self.inherit = of, view, not_object, tuple(inherit)

    def needs(self) -> tuple[str, ...]:
        return self.inherit

    def accepts(self, annotation: Any) -> bool:
        return typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (self.of, Ellipsis)

    def wire_value(self, attr: str) -> str:
        return f"_enc_{attr.rsplit('.', 1)[1]}({attr})"

    def bind(self, s: Slot, consts: dict[str, object]) -> None:
        consts[f"_enc_{s.name}"] = list_encoder(self.of, self.view)
        consts[f"_dec_{self.of.__name__}"] = _decoder_of(self.of)
        consts[f"_cls_{self.of.__name__}"] = self.of

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        name, v = self.of.__name__, s.var
        entry = "_e"
        if self.inherit:
            entry = "{**_e, " + ", ".join(f"{_slot_key(self.of, f)!r}: v_{f}" for f in self.inherit) + "}"
        lines = [f"_raw = d.get({s.key!r})"]
        if self.omit_empty:  # left out when empty: absent means empty
            lines += ["if _raw is None:", "    _raw = []"]
        lines += [
            "if not isinstance(_raw, list):",
            f"    raise _bad({f'Field {s.key!r} must be a list.'!r})",
            f"{v} = []",
            "for _e in _raw:",
        ]
        if self.not_object:
            lines += ["    if not isinstance(_e, dict):", f"        raise _bad({self.not_object!r})"]
        return [*lines, f"    {v}.append(_dec_{name}(_cls_{name}, {entry}))", f"{v} = tuple({v})"]


class Flat(Kind):
    """A record whose fields sit in this frame itself (a ``room`` frame is a room's description)."""

    def __init__(self, of: type[Record], **common: Any) -> None:
        super().__init__(**common)
        self.of = of

    def accepts(self, annotation: Any) -> bool:
        return annotation is self.of

    def wire_value(self, attr: str) -> str:
        return f"{attr}.to_wire()"

    def bind(self, s: Slot, consts: dict[str, object]) -> None:
        consts[f"_dec_{self.of.__name__}"] = _decoder_of(self.of)
        consts[f"_cls_{self.of.__name__}"] = self.of

    def decode_lines(self, s: Slot, consts: dict[str, object]) -> list[str]:
        return [f"{s.var} = _dec_{self.of.__name__}(_cls_{self.of.__name__}, dict(d))"]


# --------------------------------------------------------------------- reading a declaration


@dataclasses.dataclass(frozen=True)
class Shape:
    """What the codec read from one declaration."""

    cls: type[Record]
    slots: dict[str, Slot]  # by field name, in constructor order
    order: tuple[str, ...]  # wire order
    type_tag: str | None
    ref: str | None
    exclusive: tuple[str, ...]
    not_object: str | None


_SHAPES: dict[type[Record], Shape] = {}


def _slot_key(cls: type[Record], name: str) -> str:
    return _SHAPES[cls].slots[name].key


def _split(annotation: Any) -> tuple[Any, bool, Kind]:
    """(type without None, optional?, kind) of an ``Annotated[type, Kind]`` field."""
    if typing.get_origin(annotation) is not typing.Annotated:
        raise TypeError(f"{annotation!r} is not Annotated with a field kind")
    base, *meta = typing.get_args(annotation)
    kinds = [m for m in meta if isinstance(m, Kind)]
    if len(kinds) != 1:
        raise TypeError(f"{annotation!r} needs exactly one field kind")
    optional = False
    if isinstance(base, types.UnionType) and type(None) in typing.get_args(base):
        rest = [a for a in typing.get_args(base) if a is not type(None)]
        base, optional = (rest[0] if len(rest) == 1 else base), True
    return base, optional, kinds[0]


def _wire_default(f: dataclasses.Field[Any], kind: Kind, optional: bool) -> object:
    if kind.explicit_default is not UNSET:
        return kind.explicit_default
    if not kind.required and f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        return f.default_factory()  # (an empty mapping: events are frozen, nobody changes it)
    if kind.required or f.default is dataclasses.MISSING:
        return None if optional else REQUIRED
    return f.default


def _read(cls: type[Record], type_tag: str | None, *, order: Sequence[str] | None, ref: str | None,
          exclusive: Sequence[str], not_object: str | None) -> Shape:
    hints = typing.get_type_hints(cls, include_extras=True)
    slots: dict[str, Slot] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # a declared record is a dataclass
        base, optional, kind = _split(hints[f.name])
        if not kind.accepts(base):
            raise TypeError(f"{cls.__name__}.{f.name}: {type(kind).__name__} does not fit {base!r}")
        slots[f.name] = Slot(f.name, kind, optional, _wire_default(f, kind, optional))
    wire_order = tuple(order) if order is not None else tuple(slots)
    if sorted(wire_order) != sorted(slots):
        raise TypeError(f"{cls.__name__}: the wire order must name every field once: {wire_order}")
    shape = Shape(cls, slots, wire_order, type_tag, ref, tuple(exclusive), not_object)
    decoded: set[str] = set()
    for name in _decode_order(shape):
        slot = slots[name]
        missing = [n for n in slot.kind.needs() if n not in decoded]
        if missing or (slot.kind.omit_if is not None and slot.kind.omit_if not in slots):
            raise TypeError(f"{cls.__name__}.{name} depends on {missing or slot.kind.omit_if}, not decoded before it")
        decoded.add(name)
    return shape


def _decode_order(shape: Shape) -> list[str]:
    first = [shape.ref] if shape.ref else []
    return first + [n for n in shape.order if n != shape.ref]


# --------------------------------------------------------------------- writing the codec


def _compile(name: str, lines: list[str], consts: dict[str, object]) -> tuple[Callable[..., Any], str]:
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {**HELPERS, **consts}
    exec(compile(source, f"<qtchat codec: {name}>", "exec"), namespace)
    return namespace[lines[0].split()[1].split("(")[0]], source


def _condition(slot: Slot, fields: Sequence[str], obj: str) -> str | None:
    kind, attr = slot.kind, f"{obj}.{slot.name}"
    tests = []
    if slot.optional:
        tests.append(f"{attr} is not None")
    if kind.omit_empty:
        tests.append(attr)
    if kind.omit_if is not None and kind.omit_if in fields:
        tests.append(f"{obj}.{kind.omit_if} is None")
    return " and ".join(tests) or None


def _negation(condition: str) -> str:
    if condition.endswith(" is not None"):
        return condition[: -len(" is not None")] + " is None"
    return condition[: -len(" is None")] + " is not None" if condition.endswith(" is None") else ""


def _encoding(shape: Shape, fields: Sequence[str], obj: str, with_type: bool) -> tuple[str, list[str]]:
    """The dict display of the fields always sent first, and the statements that add the others."""
    head = [f"'type': {shape.type_tag!r}"] if with_type and shape.type_tag else []
    body: list[str] = []
    previous: str | None = None
    for name in fields:
        slot = shape.slots[name]
        value = slot.kind.wire_value(f"{obj}.{name}")
        condition = _condition(slot, fields, obj)
        if isinstance(slot.kind, Flat):
            item, statement = f"**{value}", f"d.update({value})"
        else:
            item, statement = f"{slot.key!r}: {value}", f"d[{slot.key!r}] = {value}"
        if condition is None and not body:
            head.append(item)
        elif condition is None:
            body.append(statement)
        elif previous is not None and condition == _negation(previous):  # room, or else to
            body += ["else:", f"    {statement}"]
        else:
            body += [f"if {condition}:", f"    {statement}"]
        previous = condition
    return "{" + ", ".join(head) + "}", body


def _encoder_lines(shape: Shape, fields: Sequence[str], with_type: bool) -> list[str]:
    head, body = _encoding(shape, fields, "self", with_type)
    if not body:
        return ["def to_wire(self):", f"    return {head}"]
    return ["def to_wire(self):", f"    d = {head}", *("    " + b for b in body), "    return d"]


def list_encoder(cls: type[Record], view: Sequence[str] | None) -> Callable[[Any], list[Wire]]:
    """An encoder of a sequence of ``cls`` records as a JSON list, each with the fields in ``view``
    (all of them when None), without their type: one call per list, not per record."""
    shape = _SHAPES[cls]
    head, body = _encoding(shape, tuple(view) if view is not None else shape.order, "x", with_type=False)
    if not body:
        lines = ["def encode_list(items):", f"    return [{head} for x in items]"]
    else:
        lines = ["def encode_list(items):", "    out = []", "    for x in items:", f"        d = {head}",
                 *("        " + b for b in body), "        out.append(d)", "    return out"]
    function, _ = _compile(f"{cls.__name__} list", lines, {})
    return typing.cast(Callable[[Any], list[Wire]], function)


def _decoder_lines(shape: Shape, consts: dict[str, object]) -> list[str]:
    lines = []
    if shape.not_object:
        lines += ["if not isinstance(d, dict):", f"    raise _bad({shape.not_object!r})"]
    names = _decode_order(shape)
    checked = names
    if shape.ref:
        lines += shape.slots[shape.ref].kind.decode_lines(shape.slots[shape.ref], consts)
        checked = names[1:]
    body: list[str] = []
    for name in checked:
        body += shape.slots[name].kind.decode_lines(shape.slots[name], consts)
    if shape.exclusive:
        keys = [shape.slots[n].key for n in shape.exclusive]
        message = "Give at most one of " + ", ".join(repr(k) for k in keys[:-1]) + f" and {keys[-1]!r}."
        count = " + ".join(f"(v_{n} is not None)" for n in shape.exclusive)
        body += [f"if {count} > 1:", f"    raise _bad({message!r})"]
    body.append("return cls(" + ", ".join(s.var for s in shape.slots.values()) + ")")
    if shape.ref:
        body = ["try:", *("    " + b for b in body), "except ProtocolError as exc:",
                f"    exc.ref = v_{shape.ref}  # every error about it names it", "    raise"]
    return ["def from_wire(cls, d):", *("    " + line for line in [*lines, *body])]


def _decoder_of(cls: type[Record]) -> Callable[..., Any]:
    """The compiled decoder as a plain function of (cls, d), for nested records."""
    return typing.cast(Callable[..., Any], cls.__dict__["from_wire"].__func__)


def view_encoder(cls: type[Record], view: Sequence[str] | None) -> Callable[[Any], Wire]:
    """An encoder of ``cls`` that sends only the fields in ``view`` (in that order), without the type;
    with no view, the record's own ``to_wire``."""
    shape = _SHAPES[cls]
    if view is None and shape.type_tag is None:
        return typing.cast(Callable[[Any], Wire], cls.__dict__["to_wire"])
    fields = tuple(view) if view is not None else shape.order
    function, _ = _compile(f"{cls.__name__} view", _encoder_lines(shape, fields, with_type=False), {})
    return typing.cast(Callable[[Any], Wire], function)


def declare(type_tag: str | None = None, *, order: Sequence[str] | None = None, ref: str | None = None,
            exclusive: Sequence[str] = (), not_object: str | None = None) -> Callable[[type[R]], type[R]]:
    """Compile the codec of a declared record (a frozen dataclass of Annotated fields).

    ``type_tag``: the frame's ``"type"`` (None for a part of a frame); ``order``: the wire order of the
    fields when it is not the constructor's; ``ref``: a field every error about the frame carries as its
    ``ref`` (a message's cid); ``exclusive``: fields of which at most one may be set; ``not_object``: the
    error for a record that is no JSON object.
    """

    def apply(cls: type[R]) -> type[R]:
        shape = _read(cls, type_tag, order=order, ref=ref, exclusive=exclusive, not_object=not_object)
        _SHAPES[cls] = shape
        consts: dict[str, object] = {}
        for slot in shape.slots.values():
            slot.kind.bind(slot, consts)
        decoder, decoder_source = _compile(cls.__name__, _decoder_lines(shape, consts), consts)
        encoder, encoder_source = _compile(cls.__name__, _encoder_lines(shape, shape.order, True), consts)
        cls.to_wire = encoder  # type: ignore[method-assign]
        cls.from_wire = classmethod(decoder)  # type: ignore[method-assign, assignment]
        cls.WIRE_SOURCE = encoder_source + "\n" + decoder_source
        return cls

    return apply


def shape_of(cls: type[Record]) -> Shape:
    return _SHAPES[cls]


def source(cls: type[Record]) -> str:
    """The Python source compiled for ``cls``'s encoder and decoder."""
    return cls.WIRE_SOURCE
