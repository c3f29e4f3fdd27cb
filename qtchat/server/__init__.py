"""qtchat's server core (QtCore and QtNetwork only) and the ``qtchat-server`` command.

docs/ARCHITECTURE.md has the map of its modules.
"""

from .backend import Backend
from .config import ServerConfig
from .core import ChatServer
from .memory_backend import MemoryBackend
from .operator import Operator, ServerSnapshot, UserSnapshot
from .sqlite_backend import MessageIds, SqliteBackend

__all__ = ["Backend", "ChatServer", "MemoryBackend", "MessageIds", "Operator", "ServerConfig", "ServerSnapshot", "SqliteBackend",
           "UserSnapshot"]
