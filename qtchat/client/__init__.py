"""qtchat's client core: connection, session state, reconnect, outbox, conversations and Qt models. No widgets."""

from .conversation import Conversation
from .models import ChatLine, MessageLog, UserListModel
from .session import ChatClient, ClientState, RoomState
from .workspace import ConversationList, Workspace

__all__ = [
    "ChatClient", "ChatLine", "ClientState", "Conversation", "ConversationList", "MessageLog", "RoomState",
    "UserListModel", "Workspace",
]
