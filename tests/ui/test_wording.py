"""The words for the client core's codes: every reason has its sentence, and the server's own words pass through."""

from __future__ import annotations

from qtchat.client import CertificateProblem, ClientState, Failure, Loss, Reason
from qtchat.client.reasons import login_code
from qtchat.protocol import ErrorCode
from qtchat.ui.wording import STATE_TEXT, connection_lost_text, password_failure_text, reason_text

FINGERPRINT = "ab" * 32


def test_every_loss_and_state_has_words():
    cert = CertificateProblem(Failure.CERTIFICATE_CHANGED, "h", 1, FINGERPRINT, "cd" * 32, "self-signed.")
    for loss in Loss:
        text = reason_text(Reason(loss, "chat.example.org", 4321, "detail words", cert))
        assert text and text.strip() == text, loss
    assert set(STATE_TEXT) == set(ClientState)


def test_the_servers_words_are_shown_as_it_wrote_them():
    assert reason_text(Reason(Loss.SERVER_ERROR, "h", 1, "That name is already in use.")) == \
        "That name is already in use."
    assert reason_text(Reason(Loss.SERVER_BYE, "h", 1, "kicked: cool down")) == \
        "The server closed the connection: kicked: cool down"
    assert connection_lost_text(Reason(Loss.CLOSED, "h", 1)) == \
        "Connection lost: The server closed the connection. Reconnecting\N{HORIZONTAL ELLIPSIS}"
    assert reason_text(Reason(Loss.REFUSED, "127.0.0.1", 9)) == "Nothing is listening at 127.0.0.1:9."


def test_password_failures_and_login_codes():
    assert password_failure_text("auth_failed", "Wrong password.") == "Wrong password."
    assert "may not have changed" in password_failure_text("network", "")
    assert login_code("name_taken") is ErrorCode.NAME_TAKEN
    assert login_code("network") is Failure.NETWORK
    assert login_code("from_a_later_version") is ErrorCode.INTERNAL  # an unknown code is treated as internal
