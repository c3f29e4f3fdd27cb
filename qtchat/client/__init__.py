"""qtchat's client core: connection, session state, reconnect, outbox, conversations and Qt models. No widgets."""

from .conversation import Conversation
from .models import ChatLine, MessageLog, UserListModel
from .pins import PinStore
from .session import CertificateProblem, ChatClient, ClientState, RoomState
from .workspace import ConversationList, Workspace

__all__ = [
    "CertificateProblem", "ChatClient", "ChatLine", "ClientState", "Conversation", "ConversationList", "MessageLog",
    "PinStore", "RoomState", "UserListModel", "Workspace",
]
