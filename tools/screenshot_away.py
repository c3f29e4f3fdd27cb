#!/usr/bin/env python3
"""Take docs/screenshot-away.png: a private conversation with someone away, the user list dimming those away.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tools/screenshot_away.py

Everything is real: an in-process server, bot users on real sockets, the real widgets (as tools/screenshots.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # this checkout's qtchat (a worktree's), not the one the venv has installed
sys.path.insert(0, str(ROOT / "tools"))

from screenshots import make_app, pump  # noqa: E402  (the README screenshots' setup)


def main() -> int:
    app = make_app()
    from qtchat.client import ChatClient
    from qtchat.client.settings import ClientSettings
    from qtchat.server import ChatServer, ServerConfig
    from qtchat.ui.icon import app_icon
    from qtchat.ui.main_window import MainWindow

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, name="Team room", rate_messages=0, rate_bytes=0))
    server.listen()
    bots: dict[str, ChatClient] = {}
    for name in ("maria", "ken", "priya", "olu", "sam"):
        bot = ChatClient()
        bot.connect_to("127.0.0.1", server.port, name)
        bots[name] = bot
    pump(app, 0.5)
    bots["ken"].set_away("at lunch, back at 2")
    bots["sam"].set_away()
    client = ChatClient()
    window = MainWindow(client, ClientSettings(), app_icon())
    window.resize(1000, 560)
    window.show()
    window.activateWindow()
    client.connect_to("127.0.0.1", server.port, "alice")
    pump(app, 0.8)
    bots["maria"].send_text("Standup moved to 11:30 today")
    bots["ken"].send_text("is the build green?", to="alice")
    pump(app, 0.4)
    window.workspace.activate(window.workspace.private("ken") or window.workspace.lobby)
    pump(app, 0.2)
    window.conversation.send("Yes, green since this morning")
    pump(app, 0.4)
    window.grab().save(str(DOCS / "screenshot-away.png"))
    window.workspace.activate(window.workspace.lobby)
    pump(app, 0.3)
    window.grab().save(str(Path(tempfile.gettempdir()) / "screenshot-away-lobby.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
