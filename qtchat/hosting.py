"""Hosting a server inside the client: the same ChatServer core, on the same event loop.

The one composition module that joins the server and the desktop client (the client core never
imports the server): the connect dialog and the main window start and describe a hosted server
through it.
"""

from __future__ import annotations

from PySide6.QtNetwork import QAbstractSocket, QNetworkInterface

from qtchat.server import ChatServer, MemoryBackend, ServerConfig


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses that others on the network can reach (no loopback)."""
    found = []
    for iface in QNetworkInterface.allInterfaces():
        flags = iface.flags()
        if not flags & QNetworkInterface.InterfaceFlag.IsUp or flags & QNetworkInterface.InterfaceFlag.IsLoopBack:
            continue
        for entry in iface.addressEntries():
            ip = entry.ip()
            if ip.protocol() == QAbstractSocket.NetworkLayerProtocol.IPv4Protocol and not ip.isLoopback():
                found.append(ip.toString())
    return found


def start_local_server(port: int, name: str = "qtchat") -> ChatServer:
    """A ChatServer listening on every address of this computer, keeping the conversation in memory while the
    client runs; raises OSError if the port is taken."""
    server = ChatServer(ServerConfig(host="0.0.0.0", port=port, name=name, max_clients=500), backend=MemoryBackend())
    server.listen()
    return server


def join_addresses(server: ChatServer) -> list[str]:
    """host:port strings that others should use to join ``server``."""
    return [f"{ip}:{server.port}" for ip in lan_addresses()] or [f"127.0.0.1:{server.port}"]


__all__ = ["join_addresses", "lan_addresses", "start_local_server"]
