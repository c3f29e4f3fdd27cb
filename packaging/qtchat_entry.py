"""The bundle's ``qtchat`` executable."""

import sys

from qtchat.ui.app import main

sys.exit(main())
