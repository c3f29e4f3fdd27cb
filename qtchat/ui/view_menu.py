"""The View menu: the reader's preferences, each kept in ``ClientSettings``.

A new yes-or-no preference is one ``Toggle`` in ``TOGGLES`` (a checkable action): its words, the
``ClientSettings`` property (a bool with a setter) that keeps it, and what turning it on or off does to the
open window (done once at the start too, with the kept value). A preference of a few values is one ``Choice``
in ``CHOICES``: a submenu of exclusive actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from .dates import H12, H24, LOCALE
from .typing_line import tell_typing

if TYPE_CHECKING:
    from .main_window import MainWindow


@dataclass(frozen=True, slots=True)
class Toggle:
    text: str
    setting: str  # the name of a bool property of ClientSettings
    apply: Callable[[MainWindow, bool], None]


@dataclass(frozen=True, slots=True)
class Choice:
    text: str  # the submenu's words
    setting: str  # the name of a str property of ClientSettings
    options: tuple[tuple[str, str], ...]  # (words, value), the first the default
    apply: Callable[[MainWindow, str], None]


def _show_presence(window: MainWindow, on: bool) -> None:
    window.workspace.set_show_presence(on)


def _hours(window: MainWindow, hours: str) -> None:
    for view in window.views.values():
        view.set_hours(hours)
    window.search_panel.set_hours(hours)


def _send_typing(window: MainWindow, on: bool) -> None:
    window.client.send_typing = on
    if not on:  # the typing told of ends now
        tell_typing(window.workspace, window.workspace.active, False)


TOGGLES: tuple[Toggle, ...] = (
    Toggle("Show &joins and leaves", "show_presence", _show_presence),
    Toggle("Tell others when I am &typing", "send_typing", _send_typing),
)

CHOICES: tuple[Choice, ...] = (
    Choice("&Time of day", "hours", (("As your &region writes it", LOCALE), ("&24-hour (14:05)", H24),
                                     ("&12-hour (2:05 PM)", H12)), _hours),
)


def add_view_menu(window: MainWindow) -> dict[str, QAction]:
    """The View menu in the window's menu bar; its actions by setting name (a choice's: "setting:value")."""
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
    for choice in CHOICES:
        submenu = menu.addMenu(choice.text)
        group = QActionGroup(submenu)  # exclusive
        current = getattr(window.settings, choice.setting)
        for words, value in choice.options:
            action = QAction(words, group)
            action.setCheckable(True)
            action.setChecked(value == current)
            action.triggered.connect(lambda _=False, c=choice, v=value: _choose(window, c, v))
            submenu.addAction(action)
            actions[f"{choice.setting}:{value}"] = action
    return actions


def _set(window: MainWindow, toggle: Toggle, on: bool) -> None:
    setattr(window.settings, toggle.setting, on)
    toggle.apply(window, on)


def _choose(window: MainWindow, choice: Choice, value: str) -> None:
    setattr(window.settings, choice.setting, value)
    choice.apply(window, value)
