"""The per-connection token buckets, with the clock passed in (no waiting, no timing)."""

from __future__ import annotations

import pytest

from qtchat.server import ServerConfig
from qtchat.server.config import announced_limits, rate_limits
from qtchat.server.limits import Limiter, RateLimits, Verdict

pytestmark = pytest.mark.backends

MSGS_ONLY = RateLimits(messages=10, burst=20, bytes=0, flood_after=50, flood_window=10)


def test_a_burst_passes_then_the_rate_holds():
    lim = Limiter(MSGS_ONLY, now=0.0)
    assert all(lim.message(0.0) == (Verdict.OK, 0.0) for _ in range(20))
    verdict, wait = lim.message(0.0)
    assert verdict is Verdict.SLOW_DOWN
    assert wait == pytest.approx(0.1)
    assert lim.message(0.1)[0] is Verdict.OK  # one token came back
    assert lim.message(0.1)[0] is Verdict.SLOW_DOWN
    assert [lim.message(1.1 + i / 10)[0] for i in range(10)] == [Verdict.OK] * 10  # 10 per second, for good


def test_a_refused_message_takes_no_token_so_waiting_as_told_works():
    lim = Limiter(MSGS_ONLY, now=0.0)
    for _ in range(20):
        lim.message(0.0)
    now = 0.0
    for _ in range(30):  # a client that resends each refused message after retry_after
        verdict, wait = lim.message(now)
        if verdict is Verdict.SLOW_DOWN:
            now += wait
            verdict, _ = lim.message(now)
        assert verdict is Verdict.OK


def test_flooding_after_warnings_is_flood_and_a_steady_overrun_below_the_leak_is_not():
    lim = Limiter(MSGS_ONLY, now=0.0)
    verdicts = [lim.message(0.0)[0] for _ in range(71)]
    assert verdicts[:20] == [Verdict.OK] * 20
    assert verdicts[20:70] == [Verdict.SLOW_DOWN] * 50
    assert verdicts[70] is Verdict.FLOOD
    steady = Limiter(MSGS_ONLY, now=0.0)
    t = 0.0
    seen = set()
    for _ in range(1500):  # 14 per second for 100 s: 4 refusals a second, below the leak of 5 per second
        t += 1 / 14
        seen.add(steady.message(t)[0])
    assert seen == {Verdict.OK, Verdict.SLOW_DOWN}


def test_bytes_go_into_debt_refuse_messages_and_a_deep_debt_is_flood():
    lim = Limiter(RateLimits(messages=0, bytes=1000, bytes_burst=5000, flood_after=0), now=0.0)
    assert lim.received(5000, 0.0) is Verdict.OK
    assert lim.message(0.0) == (Verdict.OK, 0.0)  # exactly used up, not in debt
    assert lim.received(1000, 0.0) is Verdict.OK
    verdict, wait = lim.message(0.0)
    assert verdict is Verdict.SLOW_DOWN and wait == pytest.approx(1.0)
    assert lim.message(1.0)[0] is Verdict.OK
    assert lim.received(5000, 1.0) is Verdict.OK  # debt 5000: a whole burst, not more
    assert lim.received(1, 1.0) is Verdict.FLOOD


def test_zero_turns_limits_off():
    off = RateLimits(messages=0, bytes=0)
    assert not off.enabled
    lim = Limiter(off, now=0.0)
    assert lim.received(10**9, 0.0) is Verdict.OK
    assert all(lim.message(0.0)[0] is Verdict.OK for _ in range(10_000))
    never = Limiter(RateLimits(messages=1, burst=1, bytes=0, flood_after=0), now=0.0)
    assert {never.message(0.0)[0] for _ in range(10_000)} == {Verdict.OK, Verdict.SLOW_DOWN}


def test_defaults_are_on_and_announced_and_the_byte_burst_fits_a_whole_frame():
    cfg = ServerConfig()
    assert cfg.rate_messages > 0 and cfg.rate_bytes > 0 and cfg.max_per_address > 0 and cfg.flood_after > 0
    limits = announced_limits(cfg)
    assert limits["messages_per_s"] == cfg.rate_messages and limits["max_rooms"] == cfg.max_rooms_per_user
    small = rate_limits(ServerConfig(max_frame=1 << 20, rate_bytes_burst=1000))
    assert small.bytes_burst >= (1 << 20) + 2


def test_a_large_message_is_not_charged_in_its_own_check_and_a_refused_one_gives_its_bytes_back():
    lim = Limiter(RateLimits(messages=0, bytes=1000, bytes_burst=20000, flood_after=0), now=0.0)
    # four resends of a 3000-byte message arrive together while the bucket is empty: each charged as read
    assert lim.received(20000, 0.0) is Verdict.OK
    assert lim.received(4 * 3000, 0.0) is Verdict.OK
    # without its own bytes the debt is 9000 (refused), and the refusal gives its 3000 back
    verdict, wait = lim.message(0.0, 3000)
    assert verdict is Verdict.SLOW_DOWN and wait == pytest.approx(9.0)
    assert lim.byte_tokens == pytest.approx(-9000)
    for _ in range(3):  # the others wait behind it (see below), their bytes given back too
        assert lim.message(0.0, 3000)[0] is Verdict.SLOW_DOWN
    assert lim.byte_tokens == pytest.approx(0)
    # resent together after the wait, as told: every one passes, and each is charged once
    assert lim.received(4 * 3000, 9.0) is Verdict.OK
    assert [lim.message(9.0, 3000) for _ in range(4)] == [(Verdict.OK, 0.0)] * 4
    assert lim.byte_tokens == pytest.approx(9000 - 12000)
    assert lim.message(9.0, 0)[0] is Verdict.SLOW_DOWN  # the debt still holds a message that has no bytes of its own


def test_a_refusal_holds_back_the_messages_after_it_so_their_order_is_kept():
    lim = Limiter(RateLimits(messages=0, bytes=1000, bytes_burst=20000, flood_after=0), now=0.0)
    assert lim.received(20000 + 3 * 3000, 0.0) is Verdict.OK  # three messages of 3000 bytes over the burst
    verdict, wait = lim.message(0.0, 3000)
    assert verdict is Verdict.SLOW_DOWN and wait == pytest.approx(6.0)
    # the next two would fit once the first gave its bytes back; they wait behind it instead
    assert lim.message(0.0, 3000) == (Verdict.SLOW_DOWN, pytest.approx(6.0))
    assert lim.message(0.0, 3000) == (Verdict.SLOW_DOWN, pytest.approx(6.0))
    assert lim.message(5.9, 0)[0] is Verdict.SLOW_DOWN
    # resent in order after the wait: all three pass (each without its own bytes in its check)
    assert lim.received(3 * 3000, 6.0) is Verdict.OK
    assert [lim.message(6.0, 3000)[0] for _ in range(3)] == [Verdict.OK] * 3
