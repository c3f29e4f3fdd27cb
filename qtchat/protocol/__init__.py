"""qtchat's wire protocol, with no I/O: feed it bytes, get events; give it events, get bytes.

Nothing in this package imports Qt (a test checks it). See docs/PROTOCOL.md.
"""

from .connection import NEED_DATA, PEER_CLOSED, Connection, Role, State, encode_event, negotiate_version
from .errors import ErrorCode, ProtocolError
from .events import (
    DEFAULT_ROOM,
    MAX_CID_LENGTH,
    MAX_QUERY,
    MAX_SEARCH_LIMIT,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    UNREAD_CAP,
    AccountStatus,
    BanRequest,
    Bye,
    ClientEvent,
    Delivered,
    Error,
    Event,
    Hello,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    KickRequest,
    Left,
    MarkRead,
    Message,
    Notice,
    PartRoom,
    PasswordChange,
    Ping,
    Pong,
    Register,
    RoomInfo,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SearchRequest,
    SearchResults,
    SendableEvent,
    SendMessage,
    ServerEvent,
    SetTopic,
    TopicChanged,
    UnknownEvent,
    UserList,
    UsersRequest,
    Welcome,
    check_text,
    clean_line,
    encode_name,
    encode_user_lists,
    names_per_frame,
)
from .framing import DEFAULT_MAX_FRAME, FrameDecoder, decode_frame, encode_frame
from .names import MAX_NAME_LENGTH, RESERVED_NAMES, name_key, validate_name

__all__ = [
    "DEFAULT_MAX_FRAME", "DEFAULT_ROOM", "MAX_CID_LENGTH", "MAX_NAME_LENGTH", "MAX_QUERY", "MAX_SEARCH_LIMIT",
    "NEED_DATA", "PEER_CLOSED", "PROTOCOL_VERSION", "RESERVED_NAMES", "SUPPORTED_VERSIONS", "UNREAD_CAP",
    "AccountStatus", "BanRequest", "Bye", "ClientEvent", "Connection", "Delivered", "Error", "ErrorCode", "Event",
    "FrameDecoder", "Hello", "History", "HistoryRequest", "JoinRoom", "Joined", "KickRequest", "Left", "MarkRead", "Message", "Notice",
    "PartRoom", "PasswordChange", "Ping", "Pong", "ProtocolError", "Register", "Role", "RoomInfo", "RoomJoined", "RoomList",
    "RoomsRequest", "SearchRequest", "SearchResults", "SendMessage", "SendableEvent", "ServerEvent", "SetTopic",
    "State", "TopicChanged",
    "UnknownEvent", "UserList", "UsersRequest", "Welcome", "check_text", "clean_line", "decode_frame", "encode_event",
    "encode_frame", "encode_name", "encode_user_lists", "name_key", "names_per_frame", "negotiate_version", "validate_name",
]
