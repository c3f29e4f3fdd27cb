#!/usr/bin/env python3
"""``qtchat-server migrate`` speed: a data folder of N messages (default 100,000, 10 rooms, chat-like text, filled
through MessageStore as benchmarks/search.py does) plus a few accounts, moved into a PostgreSQL of its own
(tests/services.py: a temporary folder, a free port, fsync off; --dsn for another, empty database). Prints the
migration's own progress lines and rows/s for the messages and for the whole run, R times (a new database each).

    python benchmarks/migrate.py [--messages 100000] [--repeat 3] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from search import fill  # noqa: E402

from qtchat.server.accounts import AccountStore, hash_password  # noqa: E402
from qtchat.server.migrate import migrate  # noqa: E402
from qtchat.server.room_state import RoomTable  # noqa: E402


@contextlib.contextmanager
def databases(dsn: str | None) -> Iterator[object]:
    if dsn is not None:
        yield lambda: dsn
        return
    from tests.services import postgres

    with postgres() as pg:
        yield lambda: pg.dsn(pg.new_database())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="an empty database to migrate into (once)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        fill(folder / "messages.db", args.messages)
        accounts = AccountStore(folder / "accounts.db")
        RoomTable(accounts.db)
        hashed = hash_password("benchmark password", n=1 << 10)
        for i in range(50):
            accounts.create(f"user{i}", f"user{i}", hashed)
        accounts.close()
        print(f"filled {args.messages} messages in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with databases(args.dsn) as new:
            for _ in range(1 if args.dsn else args.repeat):
                summary = migrate(folder, new(), sys.stderr)  # type: ignore[operator]
                total = sum(summary.rows.values())
                print(f"migrated {total} rows in {summary.seconds:.2f} s: {total / summary.seconds:,.0f} rows/s "
                      f"overall", file=sys.stderr)


if __name__ == "__main__":
    main()
