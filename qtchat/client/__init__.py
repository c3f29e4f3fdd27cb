"""qtchat's client core: connection, session state, reconnect, outbox, conversations and Qt models. No widgets."""

from .conversation import Conversation
from .link import ClientState
from .models import ChatLine, MessageLog, UserListModel
from .pins import PinStore
from .reasons import CertificateProblem, Failure, Loss, Reason
from .rooms import RoomState
from .session import ChatClient
from .typists import Typists
from .workspace import ConversationList, Workspace

__all__ = [
    "CertificateProblem", "ChatClient", "ChatLine", "ClientState", "Conversation", "ConversationList", "Failure",
    "Loss", "MessageLog", "PinStore", "Reason", "RoomState", "Typists", "UserListModel",
    "Workspace",
]
