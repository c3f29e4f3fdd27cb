"""The application icon: from resources/ when present, else drawn (the same drawing made those files)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPainterPath

from qtchat.assets import resource

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def paint_icon(size: int) -> QImage:
    """A blue speech bubble with three dots, at ``size`` pixels square."""
    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 64
    path = QPainterPath()
    path.addRoundedRect(QRectF(4 * s, 6 * s, 56 * s, 40 * s), 12 * s, 12 * s)
    tail = QPainterPath()
    tail.moveTo(QPointF(16 * s, 44 * s))
    tail.lineTo(QPointF(12 * s, 58 * s))
    tail.lineTo(QPointF(30 * s, 44 * s))
    p.fillPath(path.united(tail), QColor("#1e88e5"))
    p.setBrush(QColor("white"))
    p.setPen(Qt.PenStyle.NoPen)
    for x in (20, 32, 44):
        p.drawEllipse(QPointF(x * s, 26 * s), 4 * s, 4 * s)
    p.end()
    return img


def app_icon() -> QIcon:
    icon = QIcon()
    for size in SIZES:
        path = resource(f"qtchat-{size}.png")
        if path is not None:
            icon.addFile(str(path))
    if icon.isNull():
        from PySide6.QtGui import QPixmap

        for size in SIZES[:-1]:
            icon.addPixmap(QPixmap.fromImage(paint_icon(size)))
    return icon
