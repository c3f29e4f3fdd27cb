"""qtchat's client core: connection, session state, reconnect, outbox and Qt models. No widgets."""

from .conversation import Conversation
from .models import ChatLine, MessageLog, UserListModel
from .session import ChatClient, ClientState

__all__ = ["ChatClient", "ChatLine", "ClientState", "Conversation", "MessageLog", "UserListModel"]
