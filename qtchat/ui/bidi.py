"""Text that cannot lie about its order: bidirectional overrides shown, other people's text isolated.

A right-to-left override (U+202E) makes ``invoice_\\u202efdp.exe`` show as "invoice_exe.pdf". Wherever the
client draws text someone else chose (messages, topics, names), it goes through here:

- ``mark_overrides`` replaces each override (U+202D LRO, U+202E RLO) with a visible marker of the same
  UTF-16 length, so offsets into the text (selection, links, the cursor) stay valid and copying copies
  the original; the delegate paints the marker in the error colour. Embeddings and isolates are kept (they
  have honest uses in right-to-left writing): each message is laid out as its own paragraph, and the
  Unicode bidi algorithm ends all of them at the end of a paragraph, so they cannot reach past it.
- ``isolate`` wraps text set into a line with other text (a topic after the room's name, a name beside an
  arrow) in FSI ... PDI, so its direction does not reorder what is around it.

Names carry none of this: format characters (category Cf, every direction control) are refused in names
(``qtchat.protocol.names``).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

OVERRIDE_MARKS = {"\u202d": "\u21e5", "\u202e": "\u21e4"}  # LRO -> ⇥, RLO -> ⇤ (one UTF-16 unit each, as they are)
_TABLE = str.maketrans(OVERRIDE_MARKS)
FSI, PDI = "\u2068", "\u2069"


def mark_overrides(text: str) -> str:
    """The text with each bidirectional override replaced by its visible marker (same length)."""
    return text.translate(_TABLE)


def override_offsets(text: str) -> list[int]:
    """UTF-16 offsets of the overrides in ``text`` (where the markers are drawn)."""
    out, at = [], 0
    for ch in text:
        if ch in OVERRIDE_MARKS:
            out.append(at)
        at += 2 if ord(ch) > 0xFFFF else 1
    return out


def isolate(text: str) -> str:
    """Overrides marked, and the whole kept to its own direction: FSI ... PDI."""
    return f"{FSI}{mark_overrides(text)}{PDI}"


class IsolatedNames(QStyledItemDelegate):
    """Items drawn isolated (FSI ... PDI), the model's text left as it is (sorting, filtering, copying):
    a right-to-left name cannot reorder what is drawn beside it (the user list, the admin window's table)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        if option.text:
            option.text = isolate(option.text)
