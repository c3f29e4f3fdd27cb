"""The ``qtchat-server`` command: the headless server's command line, with the admin window for ``--admin``.

The one composition module that joins the server and the widgets: qtchat.server
never imports a widget, and the admin window comes in only when ``--admin`` asks
for it (a headless server never loads QtWidgets).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from qtchat.server.cli import main as server_main
from qtchat.server.config import ServerConfig


def _admin_window(config: ServerConfig, admin_channel: bool) -> int:
    from qtchat.ui.admin_window import run_admin_window

    return run_admin_window(config, admin_channel=admin_channel)


def main(argv: Sequence[str] | None = None) -> int:
    return server_main(argv, admin_window=_admin_window)


if __name__ == "__main__":
    sys.exit(main())
