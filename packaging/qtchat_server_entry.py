"""The bundle's ``qtchat-server`` executable (also its sync agent, started with --sync-agent, and its search
agent, with --search-agent)."""

import sys

from qtchat.server import search_agent, sync_agent

sync_agent.run_if_asked()  # before anything of Qt is loaded: the agents need only the standard library
search_agent.run_if_asked()

from qtchat.server_app import main  # noqa: E402

sys.exit(main())
