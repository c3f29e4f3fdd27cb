"""The View menu: the reader's preferences, each a checkable action kept in ``ClientSettings``.

A new preference is one ``Toggle`` in ``TOGGLES``: its words, the ``ClientSettings`` property (a bool
with a setter) that keeps it, and what turning it on or off does to the open window (done once at the start
too, with the kept value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from .typing_line import tell_typing

if TYPE_CHECKING:
    from .main_window import MainWindow


@dataclass(frozen=True, slots=True)
class Toggle:
    text: str
    setting: str  # the name of a bool property of ClientSettings
    apply: Callable[[MainWindow, bool], None]


def _show_presence(window: MainWindow, on: bool) -> None:
    window.workspace.set_show_presence(on)


def _send_typing(window: MainWindow, on: bool) -> None:
    window.client.send_typing = on
    if not on:  # the typing told of ends now
        tell_typing(window.workspace, window.workspace.active, False)


TOGGLES: tuple[Toggle, ...] = (
    Toggle("Show &joins and leaves", "show_presence", _show_presence),
    Toggle("Tell others when I am &typing", "send_typing", _send_typing),
)


def add_view_menu(window: MainWindow) -> dict[str, QAction]:
    """The View menu in the window's menu bar; its actions by setting name."""
    menu: QMenu = window.menuBar().addMenu("&View")
    actions: dict[str, QAction] = {}
    for toggle in TOGGLES:
        action = QAction(toggle.text, window)
        action.setCheckable(True)
        action.setChecked(bool(getattr(window.settings, toggle.setting)))
        toggle.apply(window, action.isChecked())  # as kept from the last run
        action.toggled.connect(lambda on, t=toggle: _set(window, t, on))
        menu.addAction(action)
        actions[toggle.setting] = action
    return actions


def _set(window: MainWindow, toggle: Toggle, on: bool) -> None:
    setattr(window.settings, toggle.setting, on)
    toggle.apply(window, on)
