"""The bundle's ``qtchat-server`` executable."""

import sys

from qtchat.server_app import main

sys.exit(main())
