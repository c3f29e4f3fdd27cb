"""What the client remembers between runs, in QSettings (the platform's own store)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from qtchat.protocol.addresses import format_addresses, parse_addresses

MAX_RECENT = 10


class ClientSettings:
    def __init__(self) -> None:
        self._s = QSettings()

    def _str(self, key: str, default: str = "") -> str:
        value = self._s.value(key, default)
        return value if isinstance(value, str) else default

    @property
    def host(self) -> str:
        """The server's address as the user gave it: one, or several comma-separated (host or host:port)."""
        return self._str("connection/host", "127.0.0.1")

    @property
    def port(self) -> int:
        value = str(self._s.value("connection/port", 4321))  # ini files give back strings
        return int(value) if value.isdigit() and 0 < int(value) < 65536 else 4321

    @property
    def user(self) -> str:
        return self._str("connection/user")

    @property
    def hosting(self) -> bool:
        return self._str("connection/hosting", "false") == "true"

    @property
    def tls(self) -> bool:
        """Did the last connection use TLS?"""
        return self._str("connection/tls", "false") == "true"

    @property
    def show_presence(self) -> bool:
        """Show "joined" and "left" notices in rooms (View > Show joins and leaves)."""
        return self._str("view/show_presence", "true") == "true"

    @show_presence.setter
    def show_presence(self, on: bool) -> None:
        self._s.setValue("view/show_presence", "true" if on else "false")

    @property
    def hours(self) -> str:
        """Times of day in "24" or "12" hours, or as the locale does: "locale" (View > Time of day)."""
        value = self._str("view/hours", "locale")
        return value if value in ("locale", "24", "12") else "locale"

    @hours.setter
    def hours(self, value: str) -> None:
        self._s.setValue("view/hours", value if value in ("24", "12") else "locale")

    @property
    def auto_away_minutes(self) -> float:
        """Minutes with no input in the window before the client says you are away (0: never; client/away.py)."""
        try:
            value = float(str(self._s.value("away/idle_minutes", 10)))  # ini files give back strings
        except ValueError:
            return 10.0
        return value if 0 <= value <= 24 * 60 else 10.0

    @auto_away_minutes.setter
    def auto_away_minutes(self, minutes: float) -> None:
        self._s.setValue("away/idle_minutes", minutes)

    @property
    def send_typing(self) -> bool:
        """Tell the others when you are typing (View > Tell others when I am typing)."""
        return self._str("view/send_typing", "true") == "true"

    @send_typing.setter
    def send_typing(self, on: bool) -> None:
        self._s.setValue("view/send_typing", "true" if on else "false")

    def _list(self, key: str) -> list[str]:
        value = self._s.value(key, [])
        if isinstance(value, str):
            return [value] if value else []
        return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []

    @property
    def recent(self) -> list[str]:
        return self._list("connection/recent")

    @property
    def recent_tls(self) -> list[str]:
        """The recent entries (``host:port``) last used with TLS."""
        return self._list("connection/recent_tls")

    def remember(self, host: str, port: int, user: str, hosting: bool, tls: bool = False) -> None:
        """The server just logged in to: ``host`` is the user's address text (one address or several); the
        recent list keeps it as ``host:port`` (several: each with its port, comma-separated)."""
        self._s.setValue("connection/host", host)
        self._s.setValue("connection/port", port)
        self._s.setValue("connection/user", user)
        self._s.setValue("connection/hosting", "true" if hosting else "false")
        self._s.setValue("connection/tls", "true" if tls and not hosting else "false")
        if not hosting:
            try:
                entry = format_addresses(parse_addresses(host, port))
            except ValueError:
                entry = f"{host}:{port}"
            recent = [entry, *[r for r in self.recent if r != entry]][:MAX_RECENT]
            self._s.setValue("connection/recent", recent)
            with_tls = [r for r in self.recent_tls if r != entry and r in recent]
            self._s.setValue("connection/recent_tls", [entry, *with_tls] if tls else with_tls)

    @property
    def has_server(self) -> bool:
        return bool(self.user) and self._s.contains("connection/host")

    def rooms(self, host: str, port: int) -> list[str]:
        """The rooms to join on that server (the lobby not included)."""
        value = self._s.value(f"rooms/{_server_key(host, port)}", [])
        if isinstance(value, str):
            return [value]
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def set_rooms(self, host: str, port: int, names: list[str]) -> None:
        self._s.setValue(f"rooms/{_server_key(host, port)}", names)

    def geometry(self, key: str) -> QByteArray | None:
        value = self._s.value(f"window/{key}")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, key: str, value: QByteArray) -> None:
        self._s.setValue(f"window/{key}", value)

    def sync(self) -> None:
        self._s.sync()


def _server_key(host: str, port: int) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in f"{host}_{port}")
