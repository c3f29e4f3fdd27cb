"""``python -m qtchat.server``: the ``qtchat-server`` command (qtchat/server_app.py, which adds the admin window)."""

import sys

from qtchat.server_app import main

sys.exit(main())
