"""Searches off the loop: the search agent (search_agent.py) and the server's side of it (searcher.py)."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest

from qtchat.protocol import Error, Message, Ping, Pong, SearchRequest, SearchResults, SendMessage
from qtchat.server.search_agent import serve
from qtchat.server.store import MessageStore
from tests.helpers import RawClient

pytestmark = pytest.mark.sqlite


def say_all(client: RawClient, texts: list[str]) -> None:
    client.send_raw(b"".join(client.conn.send(SendMessage(t, cid=f"c{i}")) for i, t in enumerate(texts)))
    client.wait_for(lambda: len(client.of(Message)) >= len(texts), timeout=20)


def results(client: RawClient, query: str) -> list[str]:
    client.send(SearchRequest(query, limit=50))
    found = client.wait_event(SearchResults, query=query)
    client.events.remove(found)
    return [m.text for m in found.results]


def test_searches_run_in_the_agent_and_find_what_the_loop_finds(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path)
    ann = connect(server.port)
    ann.login("ann")
    say_all(ann, ["apples and pears", "an apple a day", "pears only", "Äpfel über alles"])
    searcher = server.backend.searcher
    assert searcher is not None and searcher.agent_pid is None  # started at the first search
    assert results(ann, "appl") == ["an apple a day", "apples and pears"]  # newest first
    assert searcher.agent_pid is not None and searcher.answered == 1
    server.backend.store.index_pending()  # from the index now, not the scan: the same answers
    assert results(ann, "appl") == ["an apple a day", "apples and pears"]
    assert results(ann, "apfel UBER") == ["Äpfel über alles"]
    assert results(ann, "zebra") == []
    assert searcher.answered == 4
    on_loop = server.backend._search_here("appl", ["lobby"], None, 50).result()
    assert [m.text for m in on_loop.messages] == ["an apple a day", "apples and pears"]


def test_a_dead_agent_is_replaced_and_no_search_is_lost(make_server, connect, tmp_path, qtbot):
    server = make_server(data_dir=tmp_path)
    ann, bob = connect(server.port), connect(server.port)
    ann.login("ann")
    bob.login("bob")
    say_all(ann, [f"needle {i}" for i in range(20)])
    searcher = server.backend.searcher
    assert len(results(ann, "needle")) == 20
    first = searcher.agent_pid
    for _ in range(5):
        ann.send(SearchRequest("needle"))
    os.kill(first, signal.SIGKILL)
    ann.wait_for(lambda: len(ann.of(SearchResults)) >= 5, timeout=10)  # answered all the same (on the loop)
    assert not ann.of(Error)
    assert all(len(r.results) == 20 for r in ann.of(SearchResults))
    ann.events.clear()
    assert len(results(ann, "needle 7")) == 1
    assert searcher.agent_pid not in (None, first)  # a new agent
    bob.send(Ping("still here"))
    bob.wait_event(Pong, token="still here")


def test_the_agent_answers_every_line_and_stops_a_search_past_its_budget(tmp_path):
    store = MessageStore(tmp_path / "messages.db")
    store.append([(i, "lobby", 0, "bob", "bob", None, f"word{i % 7} filler text") for i in range(1, 20_001)])
    store.close()
    ask = {"query": "word3", "rooms": ["lobby"], "before": None, "limit": 3, "upto": None, "budget": 5.0}
    lines = [json.dumps(ask), "not json\n", json.dumps([1]), json.dumps({**ask, "limit": "x"}),
             json.dumps({**ask, "query": "zzz", "budget": 0.0})]
    out = io.StringIO()
    serve(str(tmp_path / "messages.db"), [line + "\n" for line in lines], out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(replies) == 5
    assert [r[0] for r in replies[0]["rows"]] == [19995, 19988, 19981] and replies[0]["more"]
    assert replies[1] == {"error": "not JSON"} and replies[2] == {"error": "not a request"}
    assert "error" in replies[3]
    assert replies[4] == {"error": "too_costly"}  # the whole table scanned, far past a budget of 0


def test_a_server_without_a_data_folder_searches_on_the_loop(make_server, connect):
    server = make_server()
    assert server.backend.searcher is None
    ann = connect(server.port)
    ann.login("ann")
    say_all(ann, ["on the loop"])
    assert results(ann, "loop") == ["on the loop"]


def test_an_answer_for_a_connection_that_closed_goes_nowhere_quietly(make_server, connect, tmp_path, qtbot, caplog):
    """Searches answered after their asker left: nothing written to a deleted socket, nothing logged (a logged
    traceback per late answer stalled the loop for tens of milliseconds in benchmarks/barrage.py)."""
    server = make_server(data_dir=tmp_path)
    ann, bob = connect(server.port), connect(server.port)
    ann.login("ann")
    bob.login("bob")
    say_all(ann, [f"needle {i}" for i in range(50)])
    assert len(results(ann, "needle")) == 50  # the agent is running
    searcher = server.backend.searcher
    answered = searcher.answered
    for _ in range(50):
        bob.send(SearchRequest("needle"))
    # asked of the agent (some not answered yet, mostly: they are answered after the close)
    qtbot.waitUntil(lambda: bool(searcher._asked) or searcher.answered >= answered + 50, timeout=10_000)
    bob.sock.close()
    qtbot.waitUntil(lambda: not searcher._asked and searcher.answered > answered, timeout=10_000)
    qtbot.wait(50)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert len(results(ann, "needle")) == 50  # and the server goes on serving
