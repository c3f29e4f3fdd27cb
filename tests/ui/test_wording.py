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


def test_a_bye_with_a_code_gets_its_own_words():
    assert reason_text(Reason(Loss.KICKED, "h", 1, "kicked: cool down (by oper)")) == \
        "An operator disconnected you (cool down (by oper))."
    assert reason_text(Reason(Loss.KICKED, "h", 1, "kicked")) == "An operator disconnected you."
    assert reason_text(Reason(Loss.BANNED, "h", 1, "banned: spam")) == \
        "An operator banned you from this server (spam)."
    assert reason_text(Reason(Loss.SERVER_SHUTDOWN, "h", 1, "maintenance")) == \
        "The server is shutting down (maintenance)."
    assert "somewhere else" in reason_text(Reason(Loss.LOGGED_IN_ELSEWHERE, "h", 1, "logged in elsewhere"))


def test_a_bye_code_decides_the_loss_and_an_old_servers_words_still_count():
    from qtchat.client.reasons import bye_loss
    from qtchat.protocol import Bye

    assert bye_loss(Bye("whatever the words", "banned")) is Loss.BANNED
    assert bye_loss(Bye("maintenance", "shutdown")) is Loss.SERVER_SHUTDOWN
    assert bye_loss(Bye("kicked: spam")) is Loss.KICKED  # a server from before bye codes
    assert bye_loss(Bye("kicked: spam", "from_a_later_version")) is Loss.SERVER_BYE
    assert bye_loss(Bye("restarting")) is Loss.SERVER_BYE
