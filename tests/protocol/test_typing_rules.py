"""The typing rules, sans-I/O: the sender's throttle (a start at once, again at most every 3 s, a stop only
after a start, none after a message) and the bucket both sides count typing frames with."""

from __future__ import annotations

from qtchat.protocol import (
    TYPING_BURST,
    TYPING_EVERY,
    TYPING_RATE,
    Typing,
    TypingBucket,
    TypingThrottle,
    target_key,
)


def test_a_start_goes_at_once_and_again_only_after_the_interval():
    t = TypingThrottle(0.0)
    assert t.change(True, 0.0) == Typing("lobby", on=True)
    assert t.change(True, 1.0) is None and t.change(True, TYPING_EVERY - 0.01) is None
    assert t.change(True, TYPING_EVERY) == Typing("lobby", on=True)  # still typing: news again
    assert t.typing_in("lobby") and not t.typing_in("other")


def test_a_stop_goes_only_after_a_start_and_a_message_is_the_stop():
    t = TypingThrottle(0.0)
    assert t.change(False, 0.0) is None  # never started
    assert t.change(True, 0.0, to="bo") == Typing(to="bo", on=True)
    assert t.change(False, 0.5, to="bo") == Typing(to="bo", on=False)
    assert t.change(False, 0.6, to="bo") is None  # once
    assert t.change(True, 0.7, to="bo") is not None  # typing again after a stop: at once
    t.sent(to="BO")  # a message to bo (names compare as keys)
    assert not t.typing_in(to="bo") and t.change(False, 0.8, to="bo") is None
    assert t.change(True, 0.9, to="bo") is not None  # the next keystroke starts anew
    t.reset()
    assert not t.typing_in(to="bo")


def test_each_conversation_has_its_own_start():
    t = TypingThrottle(0.0)
    assert t.change(True, 0.0, room="a") is not None
    assert t.change(True, 0.0, room="b") is not None
    assert t.change(True, 0.1, room="A") is None  # the same room, spelled otherwise


def test_the_client_stays_under_the_servers_bucket_however_it_is_asked():
    """Switching conversations and stopping as fast as possible: the throttle's own bucket (one frame smaller
    than the server's) never lets through what the server would refuse, even bunched by a second on the way."""
    client = TypingThrottle(0.0)
    server = TypingBucket(0.0)
    now, sent = 0.0, []
    for step in range(2000):
        now += 0.01
        frame = client.change(step % 3 != 2, now, room=f"r{step % 7}")
        if frame is not None:
            sent.append(now)
    assert len(sent) <= TYPING_BURST - 1 + now * TYPING_RATE + 1
    # the first half held up a second on the way, then delivered with what was sent meanwhile
    arrivals = sorted(t + (1.0 if t < now / 2 else 0.0) for t in sent)
    assert all(server.take(t) for t in arrivals)


def test_the_bucket_refuses_past_its_burst_and_refills():
    b = TypingBucket(0.0)
    assert [b.take(0.0) for _ in range(TYPING_BURST + 1)] == [True] * TYPING_BURST + [False]
    assert b.wait(0.0) == 1 / TYPING_RATE
    assert not b.take(0.5) and b.take(1.0)  # one a second
    assert b.wait(1.0) > 0


def test_target_keys_tell_rooms_from_people():
    assert target_key("Lobby") == "#lobby" and target_key(to="Lobby") == "@lobby"
