#!/usr/bin/env python3
"""Take the README's screenshots: the connect dialog and a busy conversation (over three days).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tools/screenshots.py [--dark]

Everything is real: an in-process server, bot users on real sockets, the real widgets; only the
server's clock is set back while the bots post the lobby's older days.
Writes docs/screenshot-connect.png, docs/screenshot-chat.png, docs/screenshot-edit.png, docs/screenshot-search.png
and docs/screenshot-admin.png (or -dark variants).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # this checkout's qtchat (a worktree's), not the one the venv has installed

if TYPE_CHECKING:
    from qtchat.client import ChatClient


def pump(app: QCoreApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def dark_palette() -> QPalette:
    p = QPalette()
    for role, color in {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#181a1b", QPalette.ColorRole.AlternateBase: "#24272a",
        QPalette.ColorRole.Text: "#e8eaed", QPalette.ColorRole.Button: "#2d2f31",
        QPalette.ColorRole.ButtonText: "#e8eaed", QPalette.ColorRole.Highlight: "#8ab4f8",
        QPalette.ColorRole.HighlightedText: "#202124", QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
    }.items():
        p.setColor(role, QColor(color))
    return p


def earlier_days(app: QCoreApplication, bots: dict[str, ChatClient]) -> None:
    """The lobby's messages of earlier days, stamped by the server as if sent then (alice sees them as
    history, under a separator per day)."""
    from qtchat.server import messages

    clock = "now_ms"  # the time messages.py stamps a room message with
    real = getattr(messages, clock)
    script = [
        (9, 17, 40, "ken", "Branched 1.4: only fixes go in from now on"),
        (9, 17, 43, "priya", "\U0001f389"),
        (1, 18, 5, "maria", "Design review moved to tomorrow 10:00"),
        (1, 18, 9, "olu", "ok, I'll bring the installer mockups"),
    ]
    try:
        for days, hour, minute, name, text in script:
            when = datetime.combine(date.today() - timedelta(days=days), datetime.min.time()).replace(
                hour=hour, minute=minute)
            setattr(messages, clock, lambda when=when: int(when.timestamp() * 1000))
            bots[name].send_text(text)
            pump(app, 0.1)
    finally:
        setattr(messages, clock, real)


def make_app(dark: bool = False) -> QApplication:
    """The screenshots' application: settings in a fresh temporary folder, the Fusion style (and dark)."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("qtchat-screenshots")
    app.setApplicationName("qtchat")
    app.setStyle("Fusion")
    if dark:
        app.setPalette(dark_palette())
    return app


def main() -> int:
    dark = "--dark" in sys.argv
    app = make_app(dark)
    from qtchat.client import ChatClient
    from qtchat.client.settings import ClientSettings
    from qtchat.server import ChatServer, ServerConfig
    from qtchat.ui.connect_dialog import ConnectDialog
    from qtchat.ui.icon import app_icon
    from qtchat.ui.main_window import MainWindow

    suffix = "-dark" if dark else ""
    # no rate limits: the scripted bots post faster than people do
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, name="Team room", rate_messages=0, rate_bytes=0))
    server.listen()
    bots: dict[str, ChatClient] = {}
    for name in ("maria", "ken", "priya", "olu", "jonas", "sam"):
        bot = ChatClient()
        bot.connect_to("127.0.0.1", server.port, name)
        bots[name] = bot
    pump(app, 0.5)
    earlier_days(app, bots)

    # the connect dialog, after a refused name
    settings = ClientSettings()
    settings.remember("chat.example.org", 4321, "ken", False)
    dialog_client = ChatClient()
    dialog = ConnectDialog(dialog_client, ClientSettings())
    dialog.setWindowIcon(app_icon())
    dialog.host.setEditText("127.0.0.1")
    dialog.port.setValue(server.port)
    dialog.show()
    dialog.start()
    pump(app, 0.8)
    dialog.grab().save(str(DOCS / f"screenshot-connect{suffix}.png"))
    dialog.hide()

    client = ChatClient()
    window = MainWindow(client, ClientSettings(), app_icon())
    window.resize(1100, 680)
    window.show()
    window.activateWindow()  # the active conversation counts nothing unread while the user looks at it
    client.connect_to("127.0.0.1", server.port, "alice")
    pump(app, 0.6)
    for room, members in (("release", ("ken", "priya", "olu")), ("design", ("maria", "sam"))):
        for name in members:
            bots[name].join_room(room)
        window.workspace.join(room)
    bots["ken"].set_topic("release", "1.4 ships Friday — blockers go here")
    pump(app, 0.3)
    bots["maria"].set_room_mode("design", invite_only=True)  # her room (she made it): a padlock in the sidebar
    pump(app, 0.2)
    window.workspace.activate(window.workspace.lobby)
    pump(app, 0.1)
    script = [
        ("sam", "anyone around?"),
        ("maria", "Morning all! Standup in 10 minutes \u2615"),
        ("priya", "morning \U0001f44b"),
        ("ken", "Build #4127 is green again \U0001f389 the flaky socket test was a real race, fixed in https://example.org/qtchat/pull/88"),
        ("priya", "Nice. Did anyone look at the crash report from the Windows beta?"),
        ("olu", "Yes: it only happens when the laptop sleeps mid-upload. The reconnect path resends the queued messages once they're acknowledged, so nothing is lost \u2014 but the progress bar never resets. I'll take it."),
        ("jonas", "<b>this is not bold</b> \u2014 user text is always shown exactly as typed ~ even with tildes ~"),
        ("maria", "alice, can you share the release notes draft before lunch?"),
        ("sam", "Two-line message:\nsecond line, indented under the text column"),
        ("ken", "Greetings in the changelog: \u041f\u0440\u0438\u0432\u0435\u0442, \u03b3\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 and \u05e9\u05dc\u05d5\u05dd \u2014 emoji too: \U0001f680\U0001f44d\U0001f3fd"),
        ("olu", "Reminder: the LAN party server is just `qtchat --serve`, nothing else to install"),
        ("sam", "\U0001f44d"),
    ]
    for name, text in script:
        bots[name].send_text(text)
        pump(app, 0.05)
    pump(app, 0.3)
    shown = {ln.text: ln for ln in window.conversation.log.lines if ln.kind == "msg"}
    bots["priya"].edit_message(shown["morning \U0001f44b"].id or 0, "morning all \U0001f44b")  # "(edited)"
    bots["sam"].delete_message(shown["anyone around?"].id or 0)  # "message deleted"
    bots["maria"].send_text("Standup notes are in the wiki", reply_to=shown["Morning all! Standup in 10 minutes \u2615"].id)
    green = shown["Build #4127 is green again \U0001f389 the flaky socket test was a real race, fixed in https://example.org/qtchat/pull/88"].id or 0
    for name, emoji in (("priya", "\U0001f389"), ("olu", "\U0001f389"), ("sam", "\U0001f680")):
        bots[name].react(green, emoji)  # reactions under ken's message
    client.react(green, "\U0001f389")  # (one of them alice's own)
    pump(app, 0.2)
    window.conversation.send("Sure \u2014 posting it in a minute, it's at www.example.org/notes (draft)")
    pump(app, 0.2)
    bots["priya"].send_text("thanks alice \U0001f64f")
    bots["olu"].send_text("can you review my PR after standup? no rush", to="alice")
    pump(app, 0.2)
    bots["ken"].send_text("RC2 is tagged, please smoke-test on your platform", room="release")
    bots["priya"].send_text("macOS: all green", room="release")
    bots["olu"].send_text("Windows installer signed ✅", room="release")
    bots["maria"].send_text("alice, which icon set did we pick?", room="design")
    bots["jonas"].quit()
    pump(app, 0.3)
    window.input.setPlainText("Release notes: https://example.org/rel")
    pump(app, 0.5)
    window.grab().save(str(DOCS / f"screenshot-chat{suffix}.png"))
    mine = next(ln for ln in reversed(window.conversation.log.lines) if ln.own and ln.id is not None)
    window.editing.start(window.conversation, mine)  # editing a sent message: its line above the field
    pump(app, 0.3)
    window.grab().save(str(DOCS / f"screenshot-edit{suffix}.png"))
    window.editing.cancel()
    # two people typing in the lobby: the line above the input says so
    bots["priya"].set_typing(True)
    bots["olu"].set_typing(True)
    pump(app, 0.4)
    window.grab().save(str(DOCS / f"screenshot-typing{suffix}.png"))
    # searching: a result far back in #ops, from before alice joined, opened with the messages around it
    chatter = [
        ("ken", "CI run {i} finished, {n} tests green"),
        ("priya", "reviewed PR #{i}, one nit about naming"),
        ("olu", "the installer for build {i} is on the share"),
        ("ken", "merging the docs fixes, thanks"),
        ("priya", "who owns the flaky reconnect test? it failed once on run {i}"),
        ("olu", "moving the signing step before the upload"),
    ]
    for name in ("ken", "priya", "olu"):
        bots[name].join_room("ops")
    pump(app, 0.3)
    for i in range(300):
        name, text = chatter[i % len(chatter)]
        if i == 40:
            name, text = "olu", "Windows installer: the code signing certificate expires in March, renew it before 1.5"
        bots[name].send_text(text.format(i=i, n=1200 + i), room="ops")
        pump(app, 0.01)
    pump(app, 0.3)
    window.input.clear()
    window.workspace.join("ops")
    pump(app, 0.5)
    window.search_field.setText("installer signing")
    window.search("installer signing")
    pump(app, 0.4)
    panel = window.search_panel
    last = panel.list.model().index(panel.list.model().rowCount() - 1, 0)
    panel.list.setCurrentIndex(last)
    panel.result_activated.emit(last.data(panel.model.MessageRole))
    pump(app, 0.6)
    window.grab().save(str(DOCS / f"screenshot-search{suffix}.png"))
    window.close_search()
    # the admin window over the same server
    import logging

    from qtchat.ui.admin_window import AdminWindow

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    admin = AdminWindow(server, confirm=False)
    admin.resize(1100, 640)
    admin.show()
    for name in ("eve", "mallory"):
        extra = ChatClient()
        extra.connect_to("127.0.0.1", server.port, name)
        bots[name] = extra
    pump(app, 0.5)
    for i in range(40):
        bots["ken"].send_text(f"status update {i}")
        for _ in range(i % 7):
            bots["maria"].send_text("ok \U0001f44d")
        pump(app, 0.1)
    server.operator.mute("mallory").result()
    server.operator.broadcast("Maintenance tonight at 22:00, expect a short disconnect.").result()
    server.operator.kick("eve", "testing the kick button").result()
    pump(app, 1.3)
    admin.model.apply()
    admin.table.selectRow(2)
    pump(app, 0.3)
    admin.grab().save(str(DOCS / f"screenshot-admin{suffix}.png"))
    admin._closing = True
    for bot in bots.values():
        bot.quit()
    client.quit()
    server.shutdown("done")
    pump(app, 0.5)
    print("wrote", *(DOCS / f"screenshot-{n}{suffix}.png" for n in ("connect", "chat", "edit", "typing", "search",
                                                                       "admin")))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main())

