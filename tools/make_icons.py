#!/usr/bin/env python3
"""Regenerate resources/ icons from qtchat/ui/icon.py's drawing.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_icons.py

Writes qtchat-<size>.png (16 to 512), qtchat.ico (Windows: every size up to 256 in one file, PNG
entries), qtchat.icns (macOS) and qtchat.svg (the scalable icon for Linux desktops).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QGuiApplication, QImageWriter

RES = Path(__file__).resolve().parent.parent / "resources"

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <path fill="#1e88e5" d="M16 6h32a12 12 0 0 1 12 12v16a12 12 0 0 1-12 12H30l-18 12 4-12A12 12 0 0 1 4 34V18A12 12 0 0 1 16 6z"/>
  <circle cx="20" cy="26" r="4" fill="#fff"/><circle cx="32" cy="26" r="4" fill="#fff"/>
  <circle cx="44" cy="26" r="4" fill="#fff"/>
</svg>
"""


def png_bytes(image: object) -> bytes:
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")  # type: ignore[attr-defined]
    return bytes(buf.data().data())


def write_ico(path: Path, images: list[tuple[int, bytes]]) -> None:
    """An ICO file whose entries are PNG images (read by Windows Vista and later)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, data in images:
        dim = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    path.write_bytes(header + entries + blobs)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication(sys.argv[:1])
    del app
    from qtchat.ui.icon import SIZES, paint_icon

    RES.mkdir(exist_ok=True)
    pngs = []
    for size in SIZES:
        image = paint_icon(size)
        image.save(str(RES / f"qtchat-{size}.png"))
        pngs.append((size, png_bytes(image)))
    write_ico(RES / "qtchat.ico", [(s, d) for s, d in pngs if s <= 256])
    writer = QImageWriter(str(RES / "qtchat.icns"), b"icns")
    if not writer.write(paint_icon(512)):
        print("no icns writer:", writer.errorString(), file=sys.stderr)
    (RES / "qtchat.svg").write_text(SVG, encoding="utf-8")
    print("wrote", ", ".join(sorted(p.name for p in RES.iterdir() if p.suffix in {".png", ".ico", ".icns", ".svg"})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
