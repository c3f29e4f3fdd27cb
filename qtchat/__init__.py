"""qtchat: a cross-platform desktop chat suite on Qt 6."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qtchat")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

APP_NAME = "qtchat"


def about_text(program: str) -> str:
    """What the About dialogs say; the version is the package's, from its metadata."""
    from PySide6 import __version__ as pyside

    return (f"{program} {__version__}\nA cross-platform chat suite on Qt 6.\n"
            f"Protocol version 1. PySide6 {pyside}.\nMIT licence.")
