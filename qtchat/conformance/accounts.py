"""The accounts section: register a name, change its password, log in with it, and the refusals.

It registers one name (``cf...-acct``, left registered: a client cannot unregister) with one registration,
two wrong passwords and two password changes, well inside any server's limits on accounts. A server that
takes no registrations (``registration_closed``) is not checked further.
"""

from __future__ import annotations

from .checks import Suite
from .wire import Frame, Peer

PASSWORD = "conformance horse battery"
NEW_PASSWORD = "battery staple conformance"


def accounts(s: Suite) -> None:
    """register (account registered), passwd wrong (auth_failed) and right (password_changed), passwd on an
    unregistered name (account_required); then logins without, with a wrong and with the new password."""
    peer, _ = s.login("acct")
    account = peer.wait_type("account")
    peer.send({"type": "register", "password": PASSWORD})
    answer = peer.wait(lambda f: f.get("type") == "account" or f.get("type") == "error")
    if answer is not None and answer.get("code") == "registration_closed":
        s.skip("accounts: register", "the server takes no registrations (registration_closed)")
        return
    s.check("accounts: register answers account with registered true", account is not None and answer is not None
            and answer.get("type") == "account" and answer.get("registered") is True,
            '{"type":"account","registered":true,...}', answer)
    _passwd(s, peer, {"old": "not " + PASSWORD, "new": NEW_PASSWORD}, "a wrong old password", "auth_failed")
    peer.send({"type": "passwd", "old": PASSWORD, "new": NEW_PASSWORD})
    changed = peer.wait(lambda f: f.get("type") == "account" or f.get("type") == "error")
    s.check("accounts: passwd answers account with password_changed", changed is not None and
            changed.get("type") == "account" and changed.get("password_changed") is True,
            '{"type":"account","registered":true,"password_changed":true,...}', changed)
    _passwd(s, s.b, {"old": PASSWORD, "new": NEW_PASSWORD}, "an unregistered name", "account_required")
    peer.send({"type": "bye"})
    peer.wait_closed()
    peer.close()
    name = f"{s.tag}-acct"
    s.refused("accounts: a registered name without its password", s.hello(name), "auth_required")
    s.refused("accounts: a wrong password", s.hello(name, password=PASSWORD), "auth_failed")  # the old one
    again, welcome = s.login("acct", password=NEW_PASSWORD)
    status = again.wait_type("account")
    s.check("accounts: the new password logs in, registered", welcome is not None and status is not None and
            status.get("registered") is True, 'welcome, then {"type":"account","registered":true,...}',
            status or welcome)
    again.send({"type": "bye"})
    again.wait_closed()
    again.close()


def _passwd(s: Suite, peer: Peer, fields: dict[str, str], what: str, code: str) -> None:
    peer.send({"type": "passwd", **fields})
    error: Frame | None = peer.wait(lambda f: f.get("type") == "error" or f.get("password_changed") is True)
    s.check(f"accounts: passwd with {what} is {code}", error is not None and error.get("code") == code and
            error.get("fatal") is False and error.get("ref") == "passwd",
            f'{{"code":"{code}","fatal":false,"ref":"passwd"}}', error)
