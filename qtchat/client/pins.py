"""Trust on first use: the certificate fingerprint the user accepted for each server, in QSettings.

A server whose certificate verifies against the system's certificate authorities (and names
the host) needs no pin. One that does not (a self-signed certificate, typically) is trusted
only when its certificate's SHA-256 fingerprint is the one pinned here for that host and port.
"""

from __future__ import annotations

from urllib.parse import quote

from PySide6.QtCore import QSettings

from qtchat.tls import normalize_fingerprint


class PinStore:
    """Pinned fingerprints per ``host:port`` (host compared without case)."""

    GROUP = "tls-pins"

    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings if settings is not None else QSettings()

    @staticmethod
    def _key(host: str, port: int) -> str:
        # one flat key per server, safe in every QSettings backend (ini, registry, plist)
        return f"{PinStore.GROUP}/{quote(host.strip().lower(), safe='')}_{int(port)}"

    def get(self, host: str, port: int) -> str | None:
        """The pinned fingerprint (64 lowercase hex digits), or None."""
        value = self._s.value(self._key(host, port))
        if not isinstance(value, str):
            return None
        try:
            return normalize_fingerprint(value)
        except ValueError:
            return None

    def set(self, host: str, port: int, fingerprint: str) -> None:
        """Pin a fingerprint (any common spelling); raises ValueError for one that is not SHA-256."""
        self._s.setValue(self._key(host, port), normalize_fingerprint(fingerprint))
        self._s.sync()

    def remove(self, host: str, port: int) -> None:
        self._s.remove(self._key(host, port))
        self._s.sync()
