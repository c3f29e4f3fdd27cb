#!/usr/bin/env python3
"""Codec throughput, A/B in one run: microseconds per frame to encode and to decode the frames that
matter, for this tree and for another checkout (by default the commit before "events declared once").

Each measurement runs in a fresh worker process whose PYTHONPATH is one tree's root, so each imports
its own ``qtchat.protocol``. A round measures every case once in each tree, case by case, the trees'
workers back to back in alternating order (A B, B A, ...), so a change in machine load hits both
alike; --rounds rounds. In a worker, each timing is the fastest of --batches batches of about 20 ms.
Over the rounds, "best" is the fastest and "median" the median.

Cases (the frames a chat spends its time on): a room ``msg`` from the server, a client's ``msg``, a
``history`` page of 50 messages, a ``welcome`` with 5 rooms and the limits, a ``users`` list of 50
names, and a ``ping``. For each:
- ``enc``: ``encode_event(event)``, the bytes to send (``to_wire`` and JSON);
- ``dec``: the frame's bytes to the event as a Connection does it (``decode_frame`` and ``from_wire``);
- ``to_wire`` and ``from_wire`` alone (on a decoded dict): the codec without JSON.

With --msgspec (and msgspec installed), a third column: this tree with msgspec's JSON encoder and
decoder in place of the standard library's (``to_wire``/``from_wire`` unchanged), to see what a
C JSON layer would buy.

    python benchmarks/codec.py [--base /work/base] [--rounds 7] [--batches 5] [--msgspec]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CASES = ("server msg", "client msg", "history 50", "welcome", "users 50", "ping")
KINDS = ("enc", "dec", "to_wire", "from_wire")


# --------------------------------------------------------------------- the worker (one tree)


def _events() -> dict[str, Any]:
    from qtchat import protocol as p

    text = "Shall we ship the release on Friday? \U0001f680 the build is green"
    messages = tuple(
        p.Message(id=1_795_677_099_673_163 + i, ts=1_795_677_099_673 + i, sender=f"user{i % 7}",
                  text=f"{text} ({i})", room="Dev Team", cid=f"7f3c-{i}" if i % 3 else None)
        for i in range(50)
    )
    rooms = tuple(p.RoomInfo(f"room {i}", "a topic", read=1_795_677_099_673_000 + i, unread=i) for i in range(5))
    return {
        "server msg": messages[1],
        "client msg": p.SendMessage(text, "Dev Team", "7f3c-1"),
        "history 50": p.History(messages, room="Dev Team", before=1_795_677_099_700_000, more=True),
        "welcome": p.Welcome(user="alice", server="qtchat-server 0.1.0", name="qtchat", rooms=rooms, motd="hi",
                             limits={"msg_per_s": 5.0, "burst": 10.0, "bytes_per_s": 65536.0}),
        "users 50": p.UserList(tuple(f"user number {i}" for i in range(50)), "Dev Team", more=False),
        "ping": p.Ping("k1"),
    }


def _time(fn: Callable[[], object], batches: int) -> float:
    """Seconds per call: the fastest of ``batches`` batches of about 20 ms."""
    n, start = 1, time.perf_counter()
    while True:  # calibrate
        for _ in range(n):
            fn()
        if time.perf_counter() - start > 0.005:
            break
        n *= 2
    loops = max(1, int(n * 0.02 / max(time.perf_counter() - start, 1e-9)))
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def _json_layer(use_msgspec: bool) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    from qtchat.protocol import decode_frame, encode_frame

    if not use_msgspec:
        return encode_frame, decode_frame
    msgspec = importlib.import_module("msgspec")  # not a dependency: only for --msgspec, where it is installed

    encode, decode = msgspec.json.Encoder().encode, msgspec.json.Decoder().decode
    return (lambda d: encode(d) + b"\n"), decode


def _cases(event: Any, line: bytes, wire: dict[str, Any], encode_frame: Callable[[Any], bytes],
           decode_frame: Callable[[bytes], Any]) -> dict[str, Callable[[], object]]:
    cls = type(event)

    def enc() -> object:
        return encode_frame(event.to_wire())

    def dec() -> object:
        return cls.from_wire(decode_frame(line))

    def from_wire() -> object:
        return cls.from_wire(wire)

    return {"enc": enc, "dec": dec, "to_wire": event.to_wire, "from_wire": from_wire}


def worker(cases: list[str], batches: int, use_msgspec: bool) -> dict[str, Any]:
    import qtchat

    encode_frame, decode_frame = _json_layer(use_msgspec)
    out: dict[str, Any] = {"tree": str(Path(qtchat.__file__).resolve().parent.parent), "times": {}}
    for case, event in _events().items():
        if case not in cases:
            continue
        cls = type(event)
        frame = encode_frame(event.to_wire())
        line = frame[:-1]
        wire = json.loads(line)
        assert cls.from_wire(wire) == event, case
        out["times"][case] = {kind: _time(fn, batches) for kind, fn in _cases(event, line, wire,
                                                                              encode_frame, decode_frame).items()}
    return out


# --------------------------------------------------------------------- the driver


def _run(tree: Path, case: str, batches: int, use_msgspec: bool = False) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    args = [sys.executable, str(Path(__file__).resolve()), "--worker", case, "--batches", str(batches)]
    if use_msgspec:
        args.append("--msgspec")
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    if Path(result["tree"]) != tree.resolve():
        raise SystemExit(f"the worker for {tree} imported qtchat from {result['tree']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, default=Path("/work/base"), help="the other tree (A)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--msgspec", action="store_true", help="also this tree with msgspec as the JSON layer")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker([args.worker], args.batches, args.msgspec)))
        return
    columns: dict[str, tuple[Path, bool]] = {"A (base)": (args.base, False), "B (this tree)": (REPO, False)}
    if args.msgspec:
        columns["C (B + msgspec JSON)"] = (REPO, True)
    runs: dict[str, list[dict[str, Any]]] = {name: [{} for _ in range(args.rounds)] for name in columns}
    for r in range(args.rounds):
        for i, case in enumerate(CASES):
            order = list(columns) if (r + i) % 2 == 0 else list(reversed(columns))
            for name in order:
                tree, use_msgspec = columns[name]
                runs[name][r].update(_run(tree, case, args.batches, use_msgspec)["times"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    report(runs)


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    names = list(runs)
    print(f"µs per frame, best / median of {len(runs[names[0]])} rounds; the ratios are to A, best / median")
    header = f"{'case':<12} {'what':<10}" + "".join(f"{n:>22}" for n in names)
    header += "".join(f"{n.split()[0] + ' / A':>14}" for n in names[1:])
    print(header)
    for case in CASES:
        for kind in KINDS:
            values = {name: [run[case][kind] * 1e6 for run in runs[name]] for name in names}
            best = {name: min(v) for name, v in values.items()}
            median = {name: statistics.median(v) for name, v in values.items()}
            line = f"{case:<12} {kind:<10}" + "".join(f"  {best[n]:9.2f} / {median[n]:8.2f}" for n in names)
            a = names[0]
            line += "".join(f"{best[n] / best[a]:7.2f} /{median[n] / median[a]:5.2f}" for n in names[1:])
            print(line)


if __name__ == "__main__":
    main()
