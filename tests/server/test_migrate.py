"""``qtchat-server migrate``: a data folder written by a real server, moved into PostgreSQL and served from there by a
cluster node (PostgresBackend) with the same ids; the refusals leave the database as it was; the command as a process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from qtchat.protocol import (
    Error,
    History,
    HistoryRequest,
    JoinRoom,
    MarkRead,
    Message,
    RoomJoined,
    RoomMode,
    RoomState,
    SearchRequest,
    SearchResults,
    SendMessage,
)
from qtchat.server import ChatServer, ServerConfig
from qtchat.server.accounts import hash_password
from qtchat.server.migrate import MigrateError, migrate
from tests.conftest import NO_LIMITS, open_postgres
from tests.helpers import RawClient, outcome

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)
REPO = Path(__file__).resolve().parents[2]


def history(client: RawClient, room: str, **asked: Any) -> History:
    client.send(HistoryRequest(room=room, **asked))
    page: History = client.wait_event(History, room=room, before=asked.get("before"))
    client.events.remove(page)
    return page


def search(client: RawClient, query: str) -> list[int]:
    client.send(SearchRequest(query))
    found: SearchResults = client.wait_event(SearchResults, query=query)
    client.events.remove(found)
    return [m.id for m in found.results]


def entered(client: RawClient, room: str) -> RoomJoined:
    def arrived() -> bool:
        return any(isinstance(e, RoomJoined) and e.info.name == room for e in client.events)

    client.wait_for(arrived)
    return next(e for e in client.events if isinstance(e, RoomJoined) and e.info.name == room)


def stop(qtbot: Any, server: ChatServer) -> None:
    with qtbot.waitSignal(server.stopped, timeout=10_000):
        server.shutdown("test over")


def fill(qtbot: Any, make_server: Any, folder: Path) -> dict[str, Any]:
    """A data folder written by a server: three rooms, an invite-only one, a registered account, a private message
    kept for an offline user, a read marker and a ban. Returns what was seen then."""
    server = make_server(data_dir=folder)
    for name in ("ann", "bob"):
        outcome(qtbot, server.operator.register_account(name, HASH))
    outcome(qtbot, server.operator.ban("mallory", reason="spam"))
    ann = RawClient(server.port, qtbot)
    ann.login("ann", password=PASSWORD)
    for room in ("den", "talk"):
        ann.send(JoinRoom(room))
        entered(ann, room)
        ann.wait_event(RoomState, room=room)
    ann.send(RoomMode("den", invite_only=True))
    ann.wait_event(RoomState, room="den", invite_only=True)
    ids: dict[str, list[int]] = {"lobby": [], "den": [], "talk": []}
    for i in range(30):
        room = ("lobby", "den", "talk")[i % 3]
        ann.say(f"apple {i} Crème brûlée e-mail" if i % 4 == 0 else f"pear {i}", cid=f"c{i}", room=room)
        ids[room].append(ann.wait_event(Message, cid=f"c{i}").id)
    ann.send(SendMessage("while you were out", cid="held", to="bob"))
    held = ann.wait_event(Message, cid="held")
    assert held.held
    ann.send(MarkRead("lobby", ids["lobby"][4]))
    seen = {"ids": ids, "held": held.id, "marker": ids["lobby"][4],
            "pages": [[m.id for m in history(ann, "lobby", limit=4).messages],
                      [m.id for m in history(ann, "talk", limit=3, before=ids["talk"][5]).messages]],
            "searches": {q: search(ann, q) for q in ("apple", "creme", "e-mail", "pear 1", "nothing")}}
    assert seen["searches"]["apple"] and seen["searches"]["creme"] == seen["searches"]["apple"]
    ann.close()
    stop(qtbot, server)
    return seen


@pytest.fixture
def node(qtbot, postgres_server):
    """Factory: a ChatServer on a PostgresBackend of the database given (a cluster node)."""
    servers: list[ChatServer] = []

    def make(database: str) -> ChatServer:
        config = ServerConfig(**{"host": "127.0.0.1", "port": 0, **NO_LIMITS})
        server = ChatServer(config, backend=open_postgres(qtbot, postgres_server, config, database))
        server.listen()
        servers.append(server)
        return server

    yield make
    for server in servers:
        stop(qtbot, server)
        server.deleteLater()


def counts(postgres_server: Any, db: str) -> str:
    return postgres_server.psql("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM mailbox), "
                                "(SELECT count(*) FROM accounts), (SELECT count(*) FROM rooms), "
                                "(SELECT count(*) FROM room_members), (SELECT last_value FROM message_ids)", db)


def test_a_migrated_folder_is_served_by_a_node_with_the_same_ids(qtbot, make_server, postgres_server, node, tmp_path):
    seen = fill(qtbot, make_server, tmp_path)
    db = postgres_server.new_database()
    summary = migrate(tmp_path, postgres_server.dsn(db))
    assert summary.rows["messages"] == 30 and summary.rows["mailbox"] == 1 and summary.rows["accounts"] == 2
    assert summary.rows["rooms"] == 2 and summary.rows["room_members"] >= 2 and summary.rows["bans"] == 1
    every = [i for room in seen["ids"].values() for i in room] + [seen["held"]]
    assert summary.top_id == max(every)
    # each room numbered 1..n in id order, and its counter at n
    for room, ids in seen["ids"].items():
        rows = postgres_server.psql(f"SELECT id, seq FROM messages WHERE room = '{room}' ORDER BY id", db).split()
        assert rows == [f"{mid}|{n}" for n, mid in enumerate(ids, 1)]
        assert postgres_server.psql(f"SELECT last_seq FROM room_seq WHERE room = '{room}'", db).strip() == str(len(ids))
    server = node(db)
    ann = RawClient(server.port, qtbot)
    welcome = ann.login("ann", password=PASSWORD)  # the password hash came along
    assert welcome.rooms[0].read == seen["marker"]  # the read marker in the lobby
    for room in ("den", "talk"):
        ann.send(JoinRoom(room))
        entered(ann, room)
        assert ann.wait_event(RoomState, room=room).invite_only == (room == "den")
    assert [[m.id for m in history(ann, "lobby", limit=4).messages],
            [m.id for m in history(ann, "talk", limit=3, before=seen["ids"]["talk"][5]).messages]] == seen["pages"]
    full = history(ann, "den", limit=500)
    assert [m.id for m in full.messages] == seen["ids"]["den"] and not full.more
    assert {q: search(ann, q) for q in seen["searches"]} == seen["searches"]
    ann.say("after the move", cid="new")
    assert ann.wait_event(Message, cid="new").id > max(every)
    # the private message waits for bob, who logs in with his password; the ban holds; den stays invite-only
    bob = RawClient(server.port, qtbot)
    bob.login("bob", password=PASSWORD)
    got = bob.wait_event(Message, held=True)
    assert (got.id, got.text, got.sender) == (seen["held"], "while you were out", "ann")
    bob.send(JoinRoom("den"))
    assert bob.wait_event(Error, ref="den").code == "invite_only"
    assert RawClient(server.port, qtbot).refused("bob", password="wrong password here").code != "banned"
    assert RawClient(server.port, qtbot).refused("Mallory").code == "banned"


def test_a_second_run_is_refused_and_duplicates_nothing(qtbot, make_server, postgres_server, tmp_path, capfd):
    fill(qtbot, make_server, tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    db = postgres_server.new_database()
    migrate(tmp_path, postgres_server.dsn(db))
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # the folder left as it was found
    before = counts(postgres_server, db)
    with pytest.raises(MigrateError, match="already holds messages"):
        migrate(tmp_path, postgres_server.dsn(db))
    assert counts(postgres_server, db) == before
    # an account alone (a folder of a server without history) is enough to refuse too
    other = postgres_server.new_database()
    postgres_server.psql("CREATE TABLE accounts (key text PRIMARY KEY, name text NOT NULL, password_hash text NOT "
                         "NULL, admin boolean NOT NULL, created double precision NOT NULL); INSERT INTO accounts "
                         "VALUES ('zed', 'zed', 'x', false, 0)", other)
    with pytest.raises(MigrateError, match="already holds accounts"):
        migrate(tmp_path, postgres_server.dsn(other))
    assert postgres_server.psql("SELECT count(*), to_regclass('messages') IS NULL FROM accounts", other).strip() == "1|t"
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_what_is_not_a_data_folder_is_refused_before_anything_is_written(postgres_server, tmp_path):
    db = postgres_server.new_database()
    nothing = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    with pytest.raises(MigrateError, match="not a folder"):
        migrate(tmp_path / "missing", postgres_server.dsn(db))
    with pytest.raises(MigrateError, match=r"no accounts\.db"):
        migrate(tmp_path, postgres_server.dsn(db))
    (tmp_path / "accounts.db").write_bytes(b"this is not SQLite at all, it is just some text" * 20)
    with pytest.raises(MigrateError, match="cannot read the data folder"):
        migrate(tmp_path, postgres_server.dsn(db))
    (tmp_path / "accounts.db").unlink()
    other = sqlite3.connect(tmp_path / "accounts.db")
    other.execute("CREATE TABLE notes (x)")
    other.close()
    with pytest.raises(MigrateError, match="not a qtchat-server database"):
        migrate(tmp_path, postgres_server.dsn(db))
    assert postgres_server.psql(nothing, db).strip() == "0"


def test_a_bad_ban_file_or_an_old_folder_is_refused(qtbot, make_server, postgres_server, tmp_path):
    fill(qtbot, make_server, tmp_path)
    db = postgres_server.new_database()
    (tmp_path / "bans.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(MigrateError, match="ban list"):
        migrate(tmp_path, postgres_server.dsn(db))
    (tmp_path / "bans.json").unlink()
    old = sqlite3.connect(tmp_path / "messages.db")
    old.execute("PRAGMA user_version = 1")
    with pytest.raises(MigrateError, match="open in another program"):  # this very process has it open
        migrate(tmp_path, postgres_server.dsn(db))
    old.close()
    with pytest.raises(MigrateError, match="older qtchat-server"):
        migrate(tmp_path, postgres_server.dsn(db))
    old = sqlite3.connect(tmp_path / "messages.db")
    old.execute("PRAGMA user_version = 2")
    old.close()
    # a room record that makes no sense is found after the messages went in: they are not kept either
    broken = sqlite3.connect(tmp_path / "accounts.db")
    broken.execute("UPDATE rooms SET state = '{broken' WHERE key = 'talk'")
    broken.commit()
    broken.close()
    with pytest.raises(MigrateError, match="the room 'talk'"):
        migrate(tmp_path, postgres_server.dsn(db))
    assert postgres_server.psql("SELECT to_regclass('messages') IS NULL", db).strip() == "t"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qtchat.server", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_the_command_as_a_process(qtbot, make_server, postgres_server, tmp_path):
    shown = run("migrate", "--help")
    assert shown.returncode == 0 and "Stop the server first" in shown.stdout and "--from DIR" in shown.stdout
    assert "migrate --help" in " ".join(run("--help").stdout.split())
    assert run("migrate", "--from", str(tmp_path)).returncode == 2  # no --to
    fill(qtbot, make_server, tmp_path)
    db = postgres_server.new_database()
    done = run("migrate", "--from", str(tmp_path), "--to", postgres_server.dsn(db))
    assert done.returncode == 0, done.stderr
    assert "messages: 30 rows" in done.stderr and "accounts: 2 rows" in done.stderr and "done:" in done.stderr
    again = run("migrate", "--from", str(tmp_path), "--to", postgres_server.dsn(db))
    assert again.returncode == 2 and "already holds messages" in again.stderr
    unreachable = run("migrate", "--from", str(tmp_path), "--to", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 2 and "nothing was written" in unreachable.stderr
    assert "Traceback" not in again.stderr + unreachable.stderr


def test_a_folder_a_running_server_has_open_is_refused(postgres_server, tmp_path):
    from tests.services import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "qtchat.server", "--data-dir", str(tmp_path), "--port",
                               str(port), "--host", "127.0.0.1", "--no-admin-channel"], cwd=REPO,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "messages.db-shm").exists() or not (tmp_path / "accounts.db-shm").exists():
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.05)
        db = postgres_server.new_database()
        refused = run("migrate", "--from", str(tmp_path), "--to", postgres_server.dsn(db))
        assert refused.returncode == 2 and "stop it, then migrate" in refused.stderr, refused.stderr
        assert postgres_server.psql("SELECT to_regclass('messages') IS NULL", db).strip() == "t"
    finally:
        server.terminate()
        server.wait(30)
    assert server.returncode == 0
    done = run("migrate", "--from", str(tmp_path), "--to", postgres_server.dsn(db))  # stopped: it goes
    assert done.returncode == 0, done.stderr


def test_the_ascii_shortcut_of_fold_folds_as_the_general_way():
    import random
    import unicodedata

    from qtchat.server.search_agent import _NOT_WORD, fold

    def general(text: str) -> str:
        bare = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
        return " " + _NOT_WORD.sub(" ", bare)

    rng = random.Random(5)
    every = "".join(map(chr, range(128)))
    for text in [every, every[::-1], "", "E-Mail_Address  x", *("".join(rng.choices(every, k=40)) for _ in range(500))]:
        assert text.isascii() and fold(text) == general(text)
    assert fold("Crème Brûlée") == " creme brulee" and fold("ǅemal") == general("ǅemal")


def test_edits_deletions_replies_and_reactions_come_along(qtbot, make_server, postgres_server, node, tmp_path):
    from qtchat.protocol import REACTIONS, DeleteMessage, EditMessage, MessageDeleted, MessageEdited, React, Reactions

    server = make_server(data_dir=tmp_path)
    ann = RawClient(server.port, qtbot)
    ann.login("ann")
    ann.say("first draft", cid="a")
    first = ann.wait_event(Message, cid="a")
    ann.say("oops", cid="b")
    gone = ann.wait_event(Message, cid="b")
    ann.send(SendMessage("answering it", cid="c", reply_to=first.id))
    ann.wait_event(Message, cid="c")
    ann.send(EditMessage(first.id, "final text"))
    ann.wait_event(MessageEdited, id=first.id)
    ann.send(DeleteMessage(gone.id))
    ann.wait_event(MessageDeleted, id=gone.id)
    ann.send(React(first.id, REACTIONS[0]))
    ann.wait_event(Reactions, yours=True)
    stop(qtbot, server)
    db = postgres_server.new_database()
    migrate(tmp_path, postgres_server.dsn(db))
    again = RawClient(node(db).port, qtbot)
    again.login("ann")
    page = history(again, "lobby", limit=10).messages
    assert [(m.text, bool(m.edited), m.deleted) for m in page] == [("final text", True, False), ("", False, True),
                                                                 ("answering it", False, False)]
    assert (page[2].reply_to, page[2].reply_from, page[2].reply_text) == (first.id, "ann", "final text")
    assert page[0].reactions == {REACTIONS[0]: 1}
    again.send(SearchRequest("draft"))
    assert again.wait_event(SearchResults).results == ()  # the old text is not found on the node either
