"""Text that cannot lie about its order (issue 14): overrides in messages and topics are shown, not obeyed."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect
from PySide6.QtGui import QFont, QGuiApplication, QImage, QPainter, QTextLayout
from PySide6.QtWidgets import QAbstractItemView, QApplication, QStyledItemDelegate, QStyleOptionViewItem

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


# a right-to-left name (names may be written in any script) beside text of ours: isolated everywhere
RTL = "\u05e9\u05dc\u05d5\u05dd"  # Hebrew: "shalom"
ISOLATED = f"{FSI}{RTL}{PDI}"


class RecordingPainter(QPainter):
    """A painter that keeps the strings drawn with it (our delegates call drawText on it directly)."""

    def __init__(self, device: QImage) -> None:
        super().__init__(device)
        self.texts: list[str] = []

    def drawText(self, *args: object) -> None:  # type: ignore[override]
        self.texts += [a for a in args if isinstance(a, str)]
        super().drawText(*args)  # type: ignore[call-overload]


def paint_item(delegate: QStyledItemDelegate, view: QAbstractItemView, index: QModelIndex) -> list[str]:
    image = QImage(400, 60, QImage.Format.Format_ARGB32)
    painter = RecordingPainter(image)
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = QRect(0, 0, 400, 40)
    delegate.paint(painter, option, index)
    painter.end()
    return painter.texts


def isolated_text(delegate: QStyledItemDelegate, view: QAbstractItemView, index: QModelIndex) -> str:
    option = QStyleOptionViewItem()
    option.initFrom(view)
    delegate.initStyleOption(option, index)
    return str(option.text)


def test_the_window_title_and_the_sidebar_isolate_names(window, qtbot):
    conv = window.workspace.open_private(RTL)
    assert window.windowTitle().startswith(f"{ISOLATED} \N{EM DASH} qtchat")
    assert ISOLATED in window.input.placeholderText()
    sidebar = window.sidebar
    row = sidebar.model().index(window.workspace.model.items.index(conv), 0)
    assert ISOLATED in paint_item(sidebar.itemDelegate(), sidebar, row)


def test_the_user_list_and_the_admin_table_draw_names_isolated_but_keep_them_as_they_are(window, server, connect,
                                                                                          qtbot):
    from qtchat.ui.admin_window import AdminWindow, BanDialog

    conv = window.workspace.active
    conv.users.reset(["alice", RTL])
    users = window.user_list
    index = users.model().index(1, 0)
    assert index.data() == RTL  # filtering, sorting and completing see the name itself
    assert isolated_text(users.itemDelegate(), users, index) == ISOLATED
    connect().login(RTL)
    admin = AdminWindow(server, confirm=False)
    qtbot.addWidget(admin)
    admin.model.apply()
    cell = admin.proxy.index(0, 0)
    assert cell.data() == RTL
    names = admin.table.itemDelegateForColumn(0)
    assert isinstance(names, QStyledItemDelegate)
    assert isolated_text(names, admin.table, cell) == ISOLATED
    ban = BanDialog(RTL, "127.0.0.1")
    qtbot.addWidget(ban)
    assert ISOLATED in ban.windowTitle() and ISOLATED in ban.by_name.text()
    admin._closing = True


def test_notifications_and_search_results_isolate_names_and_mark_overrides(window, qtbot):
    from qtchat.protocol import Message
    from qtchat.ui.notifications import notification
    from qtchat.ui.search_panel import ResultDelegate, result_meta

    conv = window.workspace.open_private(RTL)
    title, body = notification(conv, ChatLine("msg", SPOOF, 0, sender=RTL))
    assert title == f"{ISOLATED} (private)" and body == f"{FSI}invoice_\u21e4fdp.exe{PDI}"
    room = window.workspace.lobby
    title, _ = notification(room, ChatLine("msg", "hi", 0, sender=RTL))
    assert title == f"{ISOLATED} in {FSI}#lobby{PDI}"
    msg = Message(text=SPOOF, room=RTL, sender=RTL, id=1, ts=0)
    assert result_meta(msg).startswith(f"#{ISOLATED} \N{MIDDLE DOT} {ISOLATED} \N{MIDDLE DOT} ")
    model = window.workspace.search
    model.results = [msg]
    delegate = window.search_panel.list.itemDelegate()
    assert isinstance(delegate, ResultDelegate)
    drawn = paint_item(delegate, window.search_panel.list, model.index(0, 0))
    assert any(ISOLATED in t for t in drawn)
