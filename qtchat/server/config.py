"""The server's configuration: everything the command line can set, and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qtchat.protocol import DEFAULT_MAX_FRAME, TYPING_MAX_MEMBERS

from .guard import AccountLimits
from .limits import AWAY_CHANGES, RateLimits, WorkLimits


@dataclass
class ServerConfig:
    """Everything the command line can set. Times are in seconds, sizes in bytes."""

    host: str = "127.0.0.1"
    port: int = 4321
    name: str = "qtchat"
    motd: str = ""
    max_clients: int = 10_000
    max_frame: int = DEFAULT_MAX_FRAME
    max_output: int = 8 * 1024 * 1024
    handshake_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    close_timeout: float = 5.0
    data_dir: Path | None = None  # where bans.json and messages.db live; None keeps both in memory
    database: str | None = None  # a postgresql:// address: a node of a cluster (pg_backend.py), no data folder
    redis: str | None = None  # with database: the Redis the nodes pass each other's messages through (fanout.py)
    nodes: tuple[str, ...] = ()  # the cluster's addresses ("host:port") announced to clients in welcome.nodes
    keep_days: float | None = None  # history retention: drop messages older than this
    keep_messages: int | None = None  # history retention: keep at most this many per room
    history: bool = True  # False: keep no history at all (history requests get empty pages)
    full_text: bool = True  # False: searches scan the messages with LIKE (slower), as without SQLite's FTS5
    max_rooms_per_user: int = 50
    mailbox_size: int = 1000  # private messages kept per offline registered user; 0 keeps none
    mailbox_per_sender: int = 100  # of those, how many from one sender; 0: no share (a sender may fill it)
    edit_window: float = 900.0  # how long after sending a room message its author may edit it; 0: no edits
    registration: bool = True  # anyone may register a free name with a password
    require_accounts: bool = False  # only registered names may log in
    # per-connection limits (see qtchat/server/limits.py and docs/SECURITY.md); 0 turns one off
    rate_messages: float = 10.0  # chat messages per second
    rate_burst: int = 20  # chat messages at once
    rate_bytes: int = 64 * 1024  # bytes received per second
    rate_bytes_burst: int = 512 * 1024  # bytes at once (never less than max_frame + 2)
    flood_after: int = 50  # refused messages within flood_window seconds before a 'flood' disconnect
    flood_window: float = 10.0
    max_per_address: int = 16  # simultaneous connections from one IP address
    rate_work: float = 100.0  # work units per second every request is paid from (prices.py); 0: no limit
    rate_work_burst: float = 400.0  # work units at once
    max_backlog: int = 200  # frames held back while a connection waits for work units, before 'flood'
    # guessing, registering and changing passwords, per address (IPv6: per /64) and per account (guard.py)
    account_limits: AccountLimits = field(default_factory=AccountLimits)
    typing_max_members: int = TYPING_MAX_MEMBERS  # typing news is not relayed in rooms with more members
    notice_delay: float = 0.05  # joins/leaves wait this long to be sent together (scaled up for crowds)
    listen_backlog: int = 4096
    tls_cert: Path | None = None  # PEM certificate (chain); with tls_key, every connection is TLS
    tls_key: Path | None = None  # PEM private key of tls_cert


def rate_limits(cfg: ServerConfig) -> RateLimits:
    return RateLimits(
        messages=max(0.0, cfg.rate_messages), burst=max(1, cfg.rate_burst), bytes=max(0, cfg.rate_bytes),
        bytes_burst=max(cfg.rate_bytes_burst, cfg.max_frame + 2), flood_after=max(0, cfg.flood_after),
        flood_window=cfg.flood_window,
    )


def work_limits(cfg: ServerConfig) -> WorkLimits:
    return WorkLimits(per_s=max(0.0, cfg.rate_work), burst=max(1.0, cfg.rate_work_burst),
                      backlog=max(1, cfg.max_backlog))


def announced_limits(cfg: ServerConfig) -> dict[str, float]:
    """The limits a client is told in ``welcome`` (0: none)."""
    lim = rate_limits(cfg)
    return {
        "messages_per_s": lim.messages, "messages_burst": lim.burst if lim.messages else 0,
        "bytes_per_s": lim.bytes, "bytes_burst": lim.bytes_burst if lim.bytes else 0,
        "max_rooms": cfg.max_rooms_per_user, "max_per_address": cfg.max_per_address,
        "work_per_s": max(0.0, cfg.rate_work), "work_burst": max(1.0, cfg.rate_work_burst) if cfg.rate_work > 0 else 0,
        "edit_window": cfg.edit_window,
        "away_changes_per_s": AWAY_CHANGES.messages, "away_changes_burst": AWAY_CHANGES.burst,  # (and: away is known)
        "typing_members": max(0, cfg.typing_max_members),
    }
