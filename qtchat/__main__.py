"""``python -m qtchat``: the desktop client."""

import sys

from qtchat.ui.app import main

sys.exit(main())
