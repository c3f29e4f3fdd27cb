"""Username (and, later, room name) rules shared by servers and clients.

A name is accepted after trimming surrounding white space when it is 1-32 code
points long, holds no control, format, surrogate, private-use or unassigned
character and no line or paragraph separator, and does not start with one of
the characters kept for syntax (``#`` rooms, ``@`` mentions, ``/`` commands).

Nor may it hold an invisible character (Unicode's Default_Ignorable_Code_Point:
the combining grapheme joiner U+034F, variation selectors, Mongolian free
variation selectors, Hangul fillers...) or one that shows as blank (U+2800):
a name that looks like another, or like nothing, is refused.

Two names are the same name when their *keys* are equal. The key is the name
folded (NFKC, then casefold, then NFKC again, with runs of white space folded
to one space) and reduced to its confusable skeleton (UTS #39, as Ergo does:
each character that looks like another is replaced by that one's prototype,
from ``confusables.py``, generated from Unicode's data), folded again, until
nothing changes. Case is folded first, as Ergo does: so a name's key never
depends on its case, and the key of an old key (before skeletons) is the new
key, which lets stored keys be brought up to date (qtchat/server/rekey.py);
the price is that a capital whose small letter looks like nothing Latin (the
Greek capital Nu, small nu looking like "v") is not taken for the Latin
capital it resembles. So "Alice", "ALICE", the fullwidth
"\\uff21\\uff4c\\uff49\\uff43\\uff45" and the Cyrillic "\\u0410lice" are one name.
ASCII characters are never replaced (no "m" -> "rn"): every all-ASCII name
keeps the key it had before skeletons.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .confusables import DATA
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
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): drawn as nothing at all
_INVISIBLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
# not ignorable, but drawn as an empty cell (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0 are ignorable)
_BLANK = frozenset("\u2800\U0001d159")  # braille pattern blank, musical symbol null notehead
_INVISIBLE_CHARS = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _INVISIBLE) + "]")
_PROTOTYPES: dict[str, str] = dict(e.split("=", 1) for e in DATA.split("\x1e") if e)


def invisible(ch: str) -> bool:
    """Whether a character is drawn as nothing (Default_Ignorable_Code_Point)."""
    return _INVISIBLE_CHARS.fullmatch(ch) is not None


def fold(name: str) -> str:
    """Case and compatibility folding: the name key before skeletons (and the key of every ASCII name)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return _SPACE_RUN.sub(" ", folded).strip()


def skeleton(name: str) -> str:
    """UTS #39's skeleton of a name, folded: case folded first (so that a name's key does not depend on its
    case, and the key of a key is the key), then invisible characters dropped and look-alikes mapped, folded
    again, until nothing changes."""
    out = fold(name)
    for _ in range(6):  # a fixed point comes within two or three steps
        decomposed = unicodedata.normalize("NFD", _INVISIBLE_CHARS.sub("", out))
        step = fold("".join(_PROTOTYPES.get(ch, ch) for ch in decomposed))
        if step == out:
            break
        out = step
    return out


@lru_cache(maxsize=8192)  # the server looks room names up on every message
def name_key(name: str) -> str:
    """The comparison key of a name: equal keys mean the same name (or names that look the same)."""
    return skeleton(name)


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
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES or invisible(ch) or ch in _BLANK:
            raise ProtocolError(
                ErrorCode.NAME_INVALID,
                f"The {what} contains an invisible, blank or control character (U+{ord(ch):04X}).",
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
