"""qtchat-server on PostgreSQL (``--database``), and options from a config file and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qtchat.protocol import History, HistoryRequest, Message, SendMessage
from qtchat.server.cli import build_parser, config_file_args, environment_args
from tests.server.test_cli import BlockingClient, Proc, run


def test_a_node_on_postgresql_keeps_the_chat_across_restarts(postgres_server: Any) -> None:
    dsn = postgres_server.dsn(postgres_server.new_database())
    first = Proc("--database", dsn)
    assert any("connecting to PostgreSQL" in line for line in first.log)
    ann = BlockingClient(first.port, "ann")
    ann.sock.sendall(ann.conn.send(SendMessage("kept in postgres", cid="k1")))
    ann.read_until(lambda: any(isinstance(e, Message) and e.cid == "k1" for e in ann.events))
    first.stop()

    again = Proc(env={"QTCHAT_SERVER_DATABASE": dsn})  # the same, from the environment
    bob = BlockingClient(again.port, "bob")
    bob.sock.sendall(bob.conn.send(HistoryRequest()))
    bob.read_until(lambda: any(isinstance(e, History) for e in bob.events))
    (page,) = [e for e in bob.events if isinstance(e, History)]
    assert [(m.sender, m.text) for m in page.messages] == [("ann", "kept in postgres")]
    again.stop()


def test_a_database_that_cannot_be_reached_is_a_clear_error() -> None:
    out = run("--database", "postgresql://qtchat@127.0.0.1:1/nothing", "--port", "0")
    assert out.returncode == 2
    assert "cannot use the PostgreSQL database" in out.stderr


@pytest.mark.parametrize("args, says", [
    (("--database", "postgresql://qtchat@no-such-host.invalid/x"), "cannot find the PostgreSQL host"),
    (("--database", "not a url at all"), "not a PostgreSQL address"),
])
def test_a_bad_database_address_is_a_clear_error(args: tuple[str, ...], says: str) -> None:
    out = run(*args, "--port", "0")
    assert out.returncode == 2
    assert says in out.stderr


def test_database_and_data_dir_do_not_go_together(tmp_path: Path) -> None:
    out = run("--database", "postgresql://qtchat@127.0.0.1:1/x", "--data-dir", str(tmp_path), "--port", "0")
    assert out.returncode == 2 and "do not go together" in out.stderr


def test_a_config_file_sets_options_and_the_command_line_wins(tmp_path: Path) -> None:
    parser = build_parser()
    config = tmp_path / "server.toml"
    config.write_text('name = "Team chat"\nport = 5000\nrequire-accounts = true\nkeep_days = 30\n'
                      'cert-name = ["a.example", "b.example"]\n', encoding="utf-8")
    preset = config_file_args(parser, config)
    args = parser.parse_args([*preset, "--port", "6000"])
    assert (args.name, args.port, args.require_accounts, args.keep_days) == ("Team chat", 6000, True, 30)
    assert args.cert_name == ["a.example", "b.example"]


@pytest.mark.parametrize("text, says", [
    ("colour = 3\n", "'colour' is not an option"),
    ("require-accounts = 1\n", "is a flag"),
    ("port = [1, [2]]\n", "takes a value"),
    ("port = \n", "cannot read"),
    ("config = 'other.toml'\n", "not an option that can be set there"),
])
def test_a_bad_config_file_is_a_clear_error(tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=says):
        config_file_args(build_parser(), config)
    out = run("--config", str(config), "--port", "0")
    assert out.returncode == 2 and says.rsplit("'", maxsplit=1)[-1].strip() in out.stderr


def test_environment_variables_set_options() -> None:
    parser = build_parser()
    preset = environment_args(parser, {"QTCHAT_SERVER_NAME": "Env chat", "QTCHAT_SERVER_REQUIRE_ACCOUNTS": "yes",
                                       "QTCHAT_SERVER_NO_HISTORY": "0", "HOME": "/root"})
    args = parser.parse_args(preset)
    assert (args.name, args.require_accounts, args.no_history) == ("Env chat", True, False)
    with pytest.raises(ValueError, match="1/true/yes"):
        environment_args(parser, {"QTCHAT_SERVER_REQUIRE_ACCOUNTS": "maybe"})
    with pytest.raises(ValueError, match="not an option"):
        environment_args(parser, {"QTCHAT_SERVER_COLOUR": "blue"})
