"""The slash commands typed into the input (``/join``, ``/msg`` ...), declared once each.

Every ``Command`` states its name, its other names, its arguments as ``/help`` shows them, its help line
and its handler; ``/help`` is made from the same table, and so is the line for a missing argument.
``run_command`` is what ``Workspace.submit`` calls for a line that starts with a single ``/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qtchat.protocol import DEFAULT_ROOM, name_key

if TYPE_CHECKING:
    from .conversation import Conversation
    from .models import ChatLine
    from .workspace import Workspace

# what a command does: given the workspace, the conversation it was typed in and the rest of the line
# (stripped), perhaps the line it sent
Handler = Callable[["Workspace", "Conversation", str], "ChatLine | None"]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str  # as /help shows them; "" for none, in [brackets] when optional
    help: str
    run: Handler
    aliases: tuple[str, ...] = ()

    @property
    def needs_args(self) -> bool:
        return bool(self.args) and not self.args.startswith("[")

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}" if self.args else f"/{self.name}"

    def help_line(self) -> str:
        also = f" (also {', '.join('/' + a for a in self.aliases)})" if self.aliases else ""
        return f"{self.usage}  {self.help}{also}"


def _join(ws: Workspace, conv: Conversation, rest: str) -> None:
    ws.join(rest.removeprefix("#"))


def _part(ws: Workspace, conv: Conversation, rest: str) -> None:
    target = ws.room(rest.removeprefix("#")) if rest else conv
    if target is None:
        conv.error(f"You are not in a room {rest!r}.")
    else:
        ws.close(target)


def _topic(ws: Workspace, conv: Conversation, rest: str) -> None:
    if not conv.is_room:
        conv.error("Private conversations have no topic.")
        return
    try:
        ws.client.set_topic(conv.name, rest)
    except ValueError as exc:
        conv.error(f"Topic not set: {exc}")


def _msg(ws: Workspace, conv: Conversation, rest: str) -> ChatLine | None:
    name, _, body = rest.partition(" ")
    if not body.strip():
        conv.error(f"Usage: {MSG.usage}")
        return None
    return ws.conversation_with(name).send(body)


def _query(ws: Workspace, conv: Conversation, rest: str) -> None:
    ws.open_private(rest)


def _rooms(ws: Workspace, conv: Conversation, rest: str) -> None:
    if not ws.client.request_rooms():
        conv.error("Not connected.")


def _kick(ws: Workspace, conv: Conversation, rest: str) -> None:
    """In a room but the lobby: remove someone from that room; in the lobby (or a private conversation): /kill."""
    name, _, reason = rest.partition(" ")
    if conv.is_room and conv is not ws.lobby:
        _operator(conv, lambda: ws.client.kick_from_room(conv.name, name, reason.strip()))
    else:
        _kill(ws, conv, rest)


def _kill(ws: Workspace, conv: Conversation, rest: str) -> None:
    name, _, reason = rest.partition(" ")
    _operator(conv, lambda: ws.client.kick(name, reason.strip()))


def _in_room(conv: Conversation, request: Callable[[], None]) -> None:
    """A request of a room's operators, typed in a room (not the lobby)."""
    if not conv.is_room or name_key(conv.name) == name_key(DEFAULT_ROOM):
        conv.error("Type that in the room it is for (the lobby is open to all).")
        return
    _operator(conv, request)


def _private(ws: Workspace, conv: Conversation, rest: str) -> None:
    _in_room(conv, lambda: ws.client.set_room_mode(conv.name, invite_only=True, history="joined"))


def _public(ws: Workspace, conv: Conversation, rest: str) -> None:
    _in_room(conv, lambda: ws.client.set_room_mode(conv.name, invite_only=False))


def _history(ws: Workspace, conv: Conversation, rest: str) -> None:
    if rest not in ("joined", "full"):
        conv.error("Usage: /history joined|full")
        return
    _in_room(conv, lambda: ws.client.set_room_mode(conv.name, history=rest))


def _invite(ws: Workspace, conv: Conversation, rest: str) -> None:
    _in_room(conv, lambda: ws.client.invite(conv.name, rest.split(" ", maxsplit=1)[0]))


def _op(ws: Workspace, conv: Conversation, rest: str) -> None:
    _in_room(conv, lambda: ws.client.set_room_operator(conv.name, rest.split(" ", maxsplit=1)[0], True))


def _deop(ws: Workspace, conv: Conversation, rest: str) -> None:
    _in_room(conv, lambda: ws.client.set_room_operator(conv.name, rest.split(" ", maxsplit=1)[0], False))


def _ban(ws: Workspace, conv: Conversation, rest: str) -> None:
    name, _, reason = rest.partition(" ")
    first, _, more = reason.strip().partition(" ")
    minutes = int(first) if first.isdigit() and int(first) > 0 else None
    _operator(conv, lambda: ws.client.ban(name, minutes, (more if minutes else reason).strip()))


def _operator(conv: Conversation, request: Callable[[], None]) -> None:
    try:
        request()
    except ValueError as exc:
        conv.error(f"Not done: {exc}")


def _away(ws: Workspace, conv: Conversation, rest: str) -> None:
    try:
        ws.client.set_away(rest)
    except ValueError as exc:
        conv.error(f"Not away: {exc}")
        return
    message = ws.client.away
    unknown = " (this server does not tell the others)" if ws.client.welcome and not ws.client.server_knows_away else ""
    conv.notice((f"You are away: {message}" if message else "You are away.") + unknown)


def _back(ws: Workspace, conv: Conversation, rest: str) -> None:
    if ws.client.away is None:
        conv.error("You are not away.")
        return
    ws.client.set_back()
    conv.notice("You are back.")


def _help(ws: Workspace, conv: Conversation, rest: str) -> None:
    conv.notice(help_text())


MSG = Command("msg", "NAME message", "send a private message", _msg)
COMMANDS: tuple[Command, ...] = (
    Command("join", "ROOM", "enter a room, creating it if it does not exist", _join),
    Command("part", "[ROOM]", "leave this room (or that one)", _part, aliases=("leave", "close")),
    Command("topic", "[TEXT]", "set this room's topic (clear it with no text)", _topic),
    MSG,
    Command("query", "NAME", "open the private conversation with someone", _query),
    Command("rooms", "", "list the server's rooms", _rooms, aliases=("list",)),
    Command("kick", "NAME [reason]", "in a room: remove someone from it (its operators); in the lobby: /kill",
            _kick),
    Command("kill", "NAME [reason]", "for server operators: disconnect someone", _kill),
    Command("private", "", "make this room invite-only, its history shown from each member's joining on",
            _private),
    Command("public", "", "open this room to all again", _public),
    Command("history", "joined|full", "what history this room's members see", _history),
    Command("invite", "NAME", "let someone join this invite-only room", _invite),
    Command("op", "NAME", "for the room's creator: make someone an operator of this room", _op),
    Command("deop", "NAME", "for the room's creator: someone is no longer an operator of this room", _deop),
    Command("ban", "NAME [minutes] [reason]", "for operators: keep a name out (for good without minutes)", _ban),
    Command("away", "[message]", "tell the others you are away (until /back; the message changes with another)",
            _away),
    Command("back", "", "you are back (from /away, or away after a while idle)", _back),
    Command("help", "", "this list", _help),
)
BY_NAME = {name: cmd for cmd in COMMANDS for name in (cmd.name, *cmd.aliases)}


def help_text() -> str:
    lines = [cmd.help_line() for cmd in COMMANDS]
    return "\n".join(["Commands:", *lines, "Start a message with // to send it beginning with a single /."])


def run_command(ws: Workspace, conv: Conversation, text: str) -> ChatLine | None:
    """Carry out the command ``text`` (starting with one "/") typed in ``conv``; an unknown one, or one
    without the argument it needs, is refused with a line that says so."""
    word, _, rest = text[1:].partition(" ")
    rest = rest.strip()
    command = BY_NAME.get(word.lower())
    if command is None:
        conv.error(f"Unknown command {text.split(' ', 1)[0]!r}; /help lists them.")
        return None
    if command.needs_args and not rest:
        conv.error(f"Usage: {command.usage}")
        return None
    return command.run(ws, conv, rest)
