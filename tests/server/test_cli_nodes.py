"""qtchat-server --nodes: the cluster's addresses, validated, announced to clients in welcome.nodes (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.server.cli import build_parser, config_from_args


def test_nodes_are_read_and_written_back_as_host_port() -> None:
    args = build_parser().parse_args(["--nodes", "chat1.example.org:4321, [2001:DB8::1]:4322,10.0.0.3:4321"])
    assert config_from_args(args).nodes == ("chat1.example.org:4321", "[2001:db8::1]:4322", "10.0.0.3:4321")
    assert config_from_args(build_parser().parse_args([])).nodes == ()


@pytest.mark.parametrize(("value", "words"), [
    ("chat1:4321,chat2", "'chat2' needs a port: host:port."),
    ("chat1:99999", "must be a number from 1 to 65535"),
    ("bad host:1", "'bad host' is not a host name"),
    (" , ", "Give the server's address"),
])
def test_a_bad_entry_is_a_clear_error(value: str, words: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--nodes", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --nodes:" in err and words in err


def test_the_nodes_are_announced_in_welcome(make_server: Any, qtbot: Any) -> None:
    from tests.helpers import RawClient

    server = make_server(nodes=("127.0.0.2:4321", "127.0.0.3:4321"))
    client = RawClient(server.port, qtbot)
    assert client.login("alice").nodes == ("127.0.0.2:4321", "127.0.0.3:4321")
    client.close()
    plain = RawClient(make_server().port, qtbot)
    assert plain.login("bob").nodes == ()  # none announced: the field is left out
    plain.close()
