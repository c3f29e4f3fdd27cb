"""The bundle's ``qtchat-server`` executable."""

import sys

from qtchat.server.cli import main

sys.exit(main())
