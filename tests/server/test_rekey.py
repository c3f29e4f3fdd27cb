"""A data folder from before names compared by their skeletons: its non-ASCII keys are brought up to date at
start, once, so that accounts, room histories, read markers and kept messages are found under the new keys."""

from __future__ import annotations

import sqlite3

from qtchat.protocol import AccountStatus, History, HistoryRequest, JoinRoom, RoomJoined, name_key
from qtchat.protocol.names import fold
from qtchat.server.accounts import AccountStore, hash_password
from qtchat.server.store import MessageStore

PASSWORD = "correct horse battery"


def make_old_folder(folder) -> None:
    """What a server of before left: keys that are fold(name), user_version 0."""
    accounts = AccountStore(folder / "accounts.db")
    accounts.create(fold("Νίκος"), "Νίκος", hash_password(PASSWORD))
    accounts.create("alice", "alice", hash_password(PASSWORD))
    accounts.close()
    store = MessageStore(folder / "messages.db")
    room = fold("Κουζίνα")
    store.append([(1_000_001 + i, room, 1000 + i, "Νίκος", fold("Νίκος"), None, f"kali orexi {i}") for i in range(3)],
                 {(fold("Νίκος"), room): 1_000_002})
    store.close()
    for db in ("accounts.db", "messages.db"):
        con = sqlite3.connect(folder / db)
        con.execute("PRAGMA user_version = 0")
        con.close()
    assert fold("Νίκος") != name_key("Νίκος") and fold("Κουζίνα") != name_key("Κουζίνα")  # what is tested


def test_old_keys_are_brought_up_to_date_and_everything_is_found(make_server, connect, tmp_path):
    make_old_folder(tmp_path)
    server = make_server(data_dir=tmp_path)
    nikos = connect(server.port)
    welcome = nikos.login("Νίκος", password=PASSWORD)  # the account is found under its new key
    assert welcome.user == "Νίκος"
    assert nikos.wait_event(AccountStatus).registered
    nikos.send(JoinRoom("Κουζίνα"))
    joined = nikos.wait_event(RoomJoined)
    assert joined.info.read == 1_000_002 and joined.info.unread == 0  # the marker too (own messages)
    nikos.send(HistoryRequest(room="Κουζίνα"))
    page = nikos.wait_event(History)
    assert [m.text for m in page.messages] == ["kali orexi 0", "kali orexi 1", "kali orexi 2"]
    stored = sqlite3.connect(tmp_path / "messages.db")
    assert {r for (r,) in stored.execute("SELECT DISTINCT room FROM messages")} == {name_key("Κουζίνα")}
    assert stored.execute("PRAGMA user_version").fetchone()[0] == 2


def test_the_update_happens_once(tmp_path):
    make_old_folder(tmp_path)
    MessageStore(tmp_path / "messages.db").close()
    con = sqlite3.connect(tmp_path / "messages.db")
    con.execute("INSERT INTO messages (id, room, ts, sender, sender_key, cid, text) "
                "VALUES (2000000, 'κλειδί', 1, 'x', 'κλειδί', NULL, 'new row, new key')")
    con.commit()
    con.close()
    MessageStore(tmp_path / "messages.db").close()  # version 2 already: nothing is rewritten again
    con = sqlite3.connect(tmp_path / "messages.db")
    assert con.execute("SELECT room FROM messages WHERE id = 2000000").fetchone()[0] == "κλειδί"
