"""The status line and the connect dialog: where we are, said as the conversation says it, and colours readable in either palette."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor, QPalette

from qtchat.client import ClientState
from qtchat.ui.status_bar import state_color


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours."""
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_status_line_names_the_server_then_its_address_in_brackets(make_server: Any, window: Any,
                                                                      qtbot: Any) -> None:
    server = make_server(name="Team room")
    with qtbot.waitSignal(window.client.logged_in, timeout=5000):
        window.client.connect_to("127.0.0.1", server.port, "alice")
    qtbot.waitUntil(lambda: " as alice" in window.server_label.text())
    assert window.server_label.text() == f"Team room (127.0.0.1:{server.port}) as alice"
    window.workspace.lobby.log.flush()
    first = window.workspace.lobby.log.lines[0].text
    assert f"Team room (127.0.0.1:{server.port})" in first  # the same words as the conversation's first line


def test_every_state_colour_is_readable_on_a_light_and_on_a_dark_window() -> None:
    for window in ("#ffffff", "#efefef", "#202124", "#2d2f31"):
        for state in ClientState:
            ratio = contrast(QColor(state_color(state, QColor(window))), QColor(window))
            assert ratio >= 4.5, (state, window, ratio)


def test_the_state_label_follows_a_dark_palette(window: Any) -> None:
    dark = QPalette(window.state_label.palette())
    dark.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    window.state_label.setPalette(dark)
    window.status.show_state(ClientState.ONLINE, None)
    sheet = window.state_label.styleSheet()
    assert state_color(ClientState.ONLINE, QColor("#202124")) in sheet
    assert contrast(QColor(sheet.split(":")[1].strip(" ;")), QColor("#202124")) >= 4.5


def test_the_connect_dialogs_error_is_readable_on_a_dark_window(qtbot: Any) -> None:
    from PySide6.QtWidgets import QApplication

    from qtchat.client import ChatClient
    from qtchat.client.settings import ClientSettings
    from qtchat.ui.connect_dialog import ERROR_COLOR, ERROR_COLOR_DARK, ConnectDialog

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    light = app.palette()
    dark = QPalette(light)
    dark.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    try:
        app.setPalette(dark)
        dialog = ConnectDialog(ChatClient(), ClientSettings())
        qtbot.addWidget(dialog)
        assert ERROR_COLOR_DARK in dialog.error.styleSheet()
    finally:
        app.setPalette(light)
    assert contrast(QColor(ERROR_COLOR_DARK), QColor("#202124")) >= 4.5
    assert contrast(QColor(ERROR_COLOR), QColor("#ffffff")) >= 4.5 > contrast(QColor(ERROR_COLOR), QColor("#202124"))
