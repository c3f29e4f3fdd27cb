"""The bundle's ``qtchat-server`` executable (also its sync agent, started with --sync-agent)."""

import sys

from qtchat.server.sync_agent import run_if_asked

run_if_asked()  # before anything of Qt is loaded: the agent needs only the standard library

from qtchat.server_app import main  # noqa: E402

sys.exit(main())
