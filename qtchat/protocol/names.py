"""Username (and, later, room name) rules shared by servers and clients.

A name is accepted after trimming surrounding white space when it is 1-32 code
points long, holds no control, format, surrogate, private-use or unassigned
character and no line or paragraph separator, and does not start with one of
the characters kept for syntax (``#`` rooms, ``@`` mentions, ``/`` commands).

Two names are the same name when their *keys* are equal: NFKC, then casefold,
then NFKC again, with runs of white space folded to one space. So "Alice",
"ALICE" and the fullwidth "\\uff21\\uff4c\\uff49\\uff43\\uff45" are one name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .errors import ErrorCode, ProtocolError

MAX_NAME_LENGTH = 32
RESERVED_NAMES = frozenset(
    {
        "server", "admin", "administrator", "root", "system", "operator", "moderator",
        "sysop", "qtchat", "nobody", "everyone", "anonymous",
    }
)
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SYNTAX_PREFIXES = ("#", "@", "/")
_SPACE_RUN = re.compile(r"\s+")


@lru_cache(maxsize=8192)  # the server looks room names up on every message
def name_key(name: str) -> str:
    """The comparison key of a name: equal keys mean the same name."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return _SPACE_RUN.sub(" ", folded).strip()


def validate_name(raw: str, *, what: str = "username") -> tuple[str, str]:
    """Check a proposed name; return ``(display_name, key)``.

    Raises a fatal ProtocolError (``name_invalid`` or ``name_reserved``) with a
    message fit to show to a person.
    """
    name = raw.strip()
    if not name:
        raise ProtocolError(ErrorCode.NAME_INVALID, f"The {what} is empty.", fatal=True)
    if len(name) > MAX_NAME_LENGTH:
        raise ProtocolError(
            ErrorCode.NAME_INVALID,
            f"The {what} is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed.",
            fatal=True,
        )
    for ch in name:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ProtocolError(
                ErrorCode.NAME_INVALID,
                f"The {what} contains an invisible or control character (U+{ord(ch):04X}).",
                fatal=True,
            )
    if name.startswith(_SYNTAX_PREFIXES):
        raise ProtocolError(
            ErrorCode.NAME_INVALID, f"A {what} may not start with '#', '@' or '/'.", fatal=True
        )
    key = name_key(name)
    if not key:
        raise ProtocolError(ErrorCode.NAME_INVALID, f"The {what} is empty.", fatal=True)
    if key in RESERVED_NAMES:
        raise ProtocolError(ErrorCode.NAME_RESERVED, f"The {what} {name!r} is reserved.", fatal=True)
    return name, key
