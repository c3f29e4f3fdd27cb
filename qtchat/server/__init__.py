"""qtchat's server core (QtCore and QtNetwork only) and the ``qtchat-server`` command."""

from .core import ChatServer, MessageIds, ServerConfig

__all__ = ["ChatServer", "MessageIds", "ServerConfig"]
