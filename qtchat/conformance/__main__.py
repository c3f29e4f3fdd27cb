"""``python -m qtchat.conformance HOST:PORT [--timeout S] [--tls [--insecure]]``."""

from __future__ import annotations

import argparse
import math
import ssl
import sys

from .checks import Suite


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds greater than 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qtchat.conformance",
                                     description="Check a qtchat server against docs/PROTOCOL.md.")
    parser.add_argument("address", type=address, help="the server, HOST:PORT")
    parser.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for each answer (5)")
    parser.add_argument("--handshake-timeout", type=seconds, metavar="S",
                        help="the server's handshake timeout in seconds (a server cannot announce it before the "
                             "handshake): check that a hello left unfinished gets handshake_timeout after that long; "
                             "without it that check is skipped")
    parser.add_argument("--tls", action="store_true", help="the server speaks TLS")
    parser.add_argument("--insecure", action="store_true", help="with --tls: do not check its certificate")
    args = parser.parse_args(argv)
    tls = None
    if args.tls:
        tls = ssl.create_default_context()
        if args.insecure:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    host, port = args.address
    try:
        results = Suite(host, port, args.timeout, tls, handshake_timeout=args.handshake_timeout).run()
    except OSError as exc:
        print(f"FAIL connect to {host}:{port}: {exc}")
        print("0 passed, 0 skipped, 1 failed")
        return 1
    for result in results:
        print(result.line())
    failed = sum(1 for r in results if not r.ok)
    skipped = sum(1 for r in results if r.skipped)
    print(f"{len(results) - failed - skipped} passed, {skipped} skipped, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
