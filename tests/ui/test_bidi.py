"""Text that cannot lie about its order (issue 14): overrides in messages and topics are shown, not obeyed."""

from __future__ import annotations

from PySide6.QtGui import QFont, QGuiApplication, QTextLayout
from PySide6.QtWidgets import QApplication

from qtchat.client.models import ChatLine
from qtchat.ui.bidi import FSI, PDI, isolate, mark_overrides, override_offsets
from qtchat.ui.message_delegate import MessageDelegate

SPOOF = "invoice_\u202efdp.exe"


def delegate() -> MessageDelegate:
    app = QApplication.instance()
    assert isinstance(app, QGuiApplication)
    return MessageDelegate(QFont(app.font()), app.palette())


def laid_out(text: str) -> QTextLayout:
    d = delegate()
    line = ChatLine(kind="msg", text=text, ts=0, sender="mallory")
    return d._layout(line, 2000)


def x_of(layout: QTextLayout, offset: int) -> float:
    x = layout.lineAt(0).cursorToX(offset)
    return float(x[0]) if isinstance(x, tuple) else float(x)  # type: ignore[arg-type]


def test_an_override_is_drawn_in_logical_order_with_a_visible_marker(qapp):
    layout = laid_out(SPOOF)
    shown = layout.text()
    assert "\u202e" not in shown and shown == "invoice_\u21e4fdp.exe"
    assert len(shown) == len(SPOOF)  # offsets for selection and links unchanged
    f, p, x = shown.index("f"), shown.index("p"), shown.rindex("x")
    assert x_of(layout, f) < x_of(layout, p) < x_of(layout, x)  # not "exe.pdf": left to right as written
    marker = [r for r in layout.formats() if r.start == shown.index("\u21e4")]
    assert marker and marker[0].length == 1  # painted in the error colour


def test_a_plain_message_is_laid_out_unchanged(qapp):
    assert laid_out("hello \u05e9\u05dc\u05d5\u05dd").text() == "hello \u05e9\u05dc\u05d5\u05dd"


def test_the_delegate_paints_an_override_message(qapp):
    from PySide6.QtGui import QImage, QPainter

    d = delegate()
    image = QImage(600, 40, QImage.Format.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    d.paint(painter, ChatLine(kind="msg", text=SPOOF, ts=0, sender="mallory"), 0, 600)
    painter.end()
    assert any(image.pixel(x, y) != 0xFFFFFFFF for x in range(d.text_x, 600) for y in range(0, 40, 2))


def test_helpers():
    assert mark_overrides("a\u202db\u202ec") == "a\u21e5b\u21e4c"
    assert override_offsets("\U0001f600\u202e") == [2]  # UTF-16 offsets
    assert isolate("x\u202ey") == f"{FSI}x\u21e4y{PDI}"


def test_a_topic_with_an_override_is_isolated_and_marked(window, qtbot):
    conv = window.workspace.active
    assert conv is not None
    conv.topic = SPOOF
    window._on_conversation_changed(conv)
    text = window.topic_label._full
    assert "\u202e" not in text
    assert f"{FSI}invoice_\u21e4fdp.exe{PDI}" in text
