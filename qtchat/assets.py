"""Where qtchat's resource files (icons, the desktop entry) are, the same way from a checkout, a pip install and a bundle.

The files live in the repository's top-level ``resources/`` folder. pip installs them as the package
``qtchat.resources`` (pyproject maps that package to the folder); the PyInstaller bundle copies
them to ``qtchat/resources`` inside the bundle, where the same import finds them.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resource_dir() -> Path | None:
    """The folder holding the resource files, or None when they are missing."""
    candidates: list[Path] = []
    import importlib.util

    spec = importlib.util.find_spec("qtchat.resources")  # a package only when installed or bundled
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) for p in spec.submodule_search_locations)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "qtchat" / "resources")
    candidates.append(Path(__file__).resolve().parent.parent / "resources")  # a source checkout
    for folder in candidates:
        if (folder / "qtchat.desktop").exists():
            return folder
    return None


def resource(name: str) -> Path | None:
    folder = resource_dir()
    path = folder / name if folder else None
    return path if path is not None and path.exists() else None
