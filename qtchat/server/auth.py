"""Authentication: hello, registering a name, changing a password, and the limits on guessing.

A login with a free, unregistered name is admitted at once. A registered name needs
its password, checked in the hashing pool (accounts.Hasher: the server's only threads)
and the answer comes back to the event loop; the right password takes the name over
from a stale session. Registering hashes the new password there too. The limits on
guessing, registering and changing passwords (per address group and per account) are
guard.py's; a login of an existing account hashes in the pool's own lane, so others'
registrations never starve it. Every refusal is a ProtocolError (fatal before login),
turned into the ``error`` frame in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from qtchat.protocol import (
    AccountStatus,
    Bye,
    ByeCode,
    ErrorCode,
    Hello,
    PasswordChange,
    ProtocolError,
    Register,
    check_password,
    validate_name,
)

from .accounts import LOGIN, OTHER, Hasher, hash_password, verify_password
from .backend import Account, Backend, then
from .bans import Ban
from .config import ServerConfig
from .guard import AccountGuard, address_group
from .peer import Connections, Peer, User

log = logging.getLogger("qtchat.server")

PASSWD_REF = "passwd"  # the ``ref`` of every error that answers a ``passwd`` frame


class Authenticator:
    """Logins and passwords. ``admit(peer, name, key)`` lets a checked login in."""

    def __init__(self, config: ServerConfig, backend: Backend, connections: Connections, users: dict[str, User],
                 hasher: Hasher, *, admit: Callable[..., None], taken: Callable[[str], bool]) -> None:
        self.config = config
        self.backend = backend
        self.connections = connections
        self.users = users
        self.hasher = hasher
        self._admit = admit
        self._taken = taken  # a name in use, or being logged in with
        self.guard = AccountGuard(config.account_limits)
        hasher.per_owner = config.account_limits.jobs_per_address

    # ------------------------------------------------------------ login

    def on_hello(self, peer: Peer, hello: Hello) -> None:
        if peer.logging_in:
            return  # a second hello while the first one's password is checked
        name, key = validate_name(hello.user)
        ban = self.backend.bans.match(key, peer.address)
        if ban is not None:
            log.info("refused %s from %s: banned %s", name, peer.peer, ban.describe())
            raise banned_error(ban)
        account = self.backend.account(key)
        if account is None or hello.password is None:  # the right password takes a registered name over (below)
            self._check_free(name, key, registering=account is None and hello.register)
        password = hello.password or ""
        if account is not None:
            self._check_account(peer, name, hello)
            self._check_attempts(peer, key)
            stored = account.password_hash
            self._checked_job(peer, key, lambda: _verify(password, stored), lambda ok: ok is not True,
                              lambda ok: self._after_password(peer, name, key, ok is True), lane=LOGIN)
        elif hello.register:
            self._check_registration(password)
            self._check_registrations(peer)
            self._hash_job(peer, lambda: _hash(password), lambda hashed: self._registered(peer, name, key, hashed))
        elif self.config.require_accounts:
            how = "register the name first" if self.config.registration else "ask its operator for an account"
            raise ProtocolError(ErrorCode.ACCOUNT_REQUIRED, f"This server admits registered names only: {how}.",
                                fatal=True)
        else:
            self._admit(peer, name, key)

    def _check_account(self, peer: Peer, name: str, hello: Hello) -> None:
        if hello.register:
            raise ProtocolError(ErrorCode.NAME_REGISTERED,
                                f"The name {name!r} is registered already: log in with its password.", fatal=True)
        if hello.password is None:
            raise ProtocolError(ErrorCode.AUTH_REQUIRED,
                                f"The name {name!r} is registered: log in with its password.", fatal=True)

    def _check_registration(self, password: str, *, fatal: bool = True) -> None:
        if not self.config.registration:
            raise ProtocolError(ErrorCode.REGISTRATION_CLOSED,
                                "This server does not take registrations; ask its operator.", fatal=fatal)
        problem = check_password(password)
        if problem is not None:
            raise ProtocolError(ErrorCode.BAD_PASSWORD, problem, fatal=fatal)

    def _check_free(self, name: str, key: str, *, registering: bool = False) -> None:
        # a name to register must be free on the other nodes of a cluster too (as far as this node knows: their
        # users are mirrored; a guest logging in there meanwhile loses the name to the account)
        if self._taken(key) or (registering and self.backend.cluster.node_of(key) is not None):
            raise name_taken(name)

    def _check_attempts(self, peer: Peer, key: str, *, fatal: bool = True) -> None:
        """Refuse a password check while too many wrong ones (or checks still running) come from this address
        group or are aimed at this account."""
        wait = self.guard.guessing_full(peer.address, key, time.monotonic())
        if wait:
            raise _limited(f"Too many wrong passwords from your address or for this name; wait {wait:.0f} seconds.",
                           wait, fatal=fatal, ref=None if fatal else PASSWD_REF)

    def _check_registrations(self, peer: Peer, *, fatal: bool = True) -> None:
        now = time.monotonic()
        wait = self.guard.registration_full(peer.address, now)
        if wait:
            raise _limited(f"Too many registrations from your address or on this server; wait {wait:.0f} seconds.",
                           wait, fatal=fatal)
        self.guard.registered(peer.address, now)

    def _checked_job(self, peer: Peer, key: str, job: Callable[[], object], wrong: Callable[[object], bool],
                     finished: Callable[[object], None], *, lane: str, ref: str | None = None) -> None:
        """A job that checks a password for ``key``: counted as running until it ends, and as a wrong
        password if ``wrong(result)``, whether or not the connection lasted."""
        guard, address = self.guard, peer.address
        guard.check_started(address, key)

        def settle(result: object) -> None:
            guard.check_finished(address, key, time.monotonic(), wrong=result is not None and wrong(result))

        self._hash_job(peer, job, finished, ref, lane=lane, settle=settle)

    def _hash_job(self, peer: Peer, job: Callable[[], object], finished: Callable[[object], None],
                  ref: str | None = None, *, lane: str = OTHER,
                  settle: Callable[[object], None] | None = None) -> None:
        """Hash or check a password in the worker pool; ``finished`` runs on the event loop if the connection
        lasts, and a ProtocolError it raises is answered. ``settle`` runs once in any case (with None when the
        job could not be queued). Before login a full queue ends the connection (the client retries later);
        after, it is an error."""
        def finish(result: object) -> None:
            peer.logging_in = False
            if settle is not None:
                settle(result)
            if peer in self.connections.peers and not peer.detached:
                try:
                    finished(result)
                except ProtocolError as exc:
                    self.connections.fail(peer, exc)

        peer.logging_in = True
        if not self.hasher.submit(job, (), finish, lane=lane, owner=address_group(peer.address)):
            peer.logging_in = False
            if settle is not None:
                settle(None)
            self.connections.fail(peer, ProtocolError(
                ErrorCode.SERVER_BUSY, "The server is busy checking passwords; try again in a moment.",
                fatal=peer.user is None, ref=ref), report=True)

    def _after_password(self, peer: Peer, name: str, key: str, ok: bool) -> None:
        if not ok:
            log.info("refused %s from %s: wrong password", name, peer.peer)
            raise ProtocolError(ErrorCode.AUTH_FAILED, f"Wrong password for {name!r}.", fatal=True)
        old = self.users.get(key)
        if old is not None:  # its owner again, from elsewhere (or after a connection that hung)
            log.info("%s logged in again from %s: closing the session from %s", name, peer.peer, old.peer.peer)
            self.connections.drop(old.peer, "logged in elsewhere",
                                  farewell=Bye("logged in elsewhere", ByeCode.LOGGED_IN_ELSEWHERE))
        self._admit(peer, name, key, takeover=True)  # on another node of a cluster too (cluster.py)

    def _registered(self, peer: Peer, name: str, key: str, hashed: object) -> None:
        if not isinstance(hashed, str):
            raise ProtocolError(ErrorCode.INTERNAL, "The password could not be checked.", fatal=True)
        self._check_free(name, key, registering=True)  # someone may have logged in meanwhile
        if self.backend.account(key) is not None:
            raise ProtocolError(ErrorCode.NAME_REGISTERED, f"The name {name!r} was just registered.", fatal=True)

        def created(account: Account) -> None:
            log.info("%s registered from %s", account.name, peer.peer)
            if not peer.detached:  # (a guest of another node who got in meanwhile: the account decides)
                self._admit(peer, name, key, takeover=True)

        def broken(exc: BaseException) -> None:
            log.error("storing the account of %s: %s", name, exc)
            self.connections.fail(peer, ProtocolError(ErrorCode.INTERNAL, "The account could not be stored.",
                                                      fatal=True))

        then(self.backend.create_account(key, name, hashed), created, broken)

    # ------------------------------------------------------------ logged in

    def on_register(self, user: User, event: Register) -> None:
        """Protect the name of a logged-in user with a password."""
        if user.peer.logging_in:
            return
        if self.backend.account(user.key) is not None:
            raise ProtocolError(ErrorCode.NAME_REGISTERED, f"The name {user.name!r} is registered already.")
        self._check_registration(event.password, fatal=False)
        self._check_registrations(user.peer, fatal=False)
        password = event.password

        def store(hashed: object) -> None:
            if not isinstance(hashed, str) or self.backend.account(user.key) is not None:
                raise ProtocolError(ErrorCode.INTERNAL, "The name could not be registered.")

            def created(account: Account) -> None:
                log.info("%s registered their name", account.name)
                self.connections.send(user.peer, AccountStatus(True, False))

            then(self.backend.create_account(user.key, user.name, hashed), created,
                 lambda exc: self.connections.fail(user.peer, ProtocolError(
                     ErrorCode.INTERNAL, "The name could not be registered.")))

        self._hash_job(user.peer, lambda: _hash(password), store)

    def on_passwd(self, user: User, event: PasswordChange) -> None:
        """A logged-in user changes their own password: the old one is checked and the new one hashed in the
        pool (one job), the wrong-password limit applies, and every answer refers to ``passwd`` (``ref``)."""
        if user.peer.logging_in:
            raise _passwd_error(ErrorCode.SERVER_BUSY,
                                "A password of yours is being checked already; try again in a moment.")
        account = self.backend.account(user.key)
        if account is None:
            raise _passwd_error(ErrorCode.ACCOUNT_REQUIRED,
                                f"The name {user.name!r} is not registered, so it has no password to change.")
        self._check_attempts(user.peer, user.key, fatal=False)
        now = time.monotonic()
        wait = self.guard.passwd_full(user.key, now)
        if wait:
            raise _limited(f"Too many password changes tried; wait {wait:.0f} seconds.", wait, fatal=False,
                           ref=PASSWD_REF)
        problem = check_password(event.new)
        if problem is None and event.new == event.old:
            problem = "The new password is the same as the old one."
        if problem is not None:
            raise _passwd_error(ErrorCode.BAD_PASSWORD, problem)
        old, new, stored = event.old, event.new, account.password_hash

        def check_then_hash() -> object:  # in the pool: False for a wrong old password, else the new hash
            return _hash(new) if _verify(old, stored) else False

        self.guard.passwd_tried(user.key, now)
        self._checked_job(user.peer, user.key, check_then_hash, lambda result: result is False,
                          lambda result: self._new_password(user, stored, result), lane=OTHER, ref=PASSWD_REF)

    def _new_password(self, user: User, stored: str, result: object) -> None:
        now = self.backend.account(user.key)
        if result is False:
            log.info("refused a new password for %s from %s: wrong old password", user.name, user.peer.peer)
            raise _passwd_error(ErrorCode.AUTH_FAILED, "The current password is wrong, so the password was not changed.")
        if now is None or now.password_hash != stored:  # unregistered or reset by the operator meanwhile
            raise _passwd_error(ErrorCode.AUTH_FAILED, "The account changed while the password was checked; try again.")
        if not isinstance(result, str):
            raise _passwd_error(ErrorCode.INTERNAL, "The new password could not be stored.")

        def changed(_: None) -> None:
            log.info("%s changed their password (from %s)", user.name, user.peer.peer)
            self.connections.send(user.peer, AccountStatus(True, now.admin, password_changed=True))

        then(self.backend.set_password(user.key, result), changed, lambda exc: self.connections.fail(
            user.peer, _passwd_error(ErrorCode.INTERNAL, "The new password could not be stored.")))


def _limited(text: str, wait: float, *, fatal: bool, ref: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.TOO_MANY_ATTEMPTS, text, fatal=fatal, ref=ref,
                         retry_after=max(1.0, float(int(wait) + 1)))


def _passwd_error(code: ErrorCode, text: str) -> ProtocolError:
    return ProtocolError(code, text, ref=PASSWD_REF)


def name_taken(name: str) -> ProtocolError:
    return ProtocolError(ErrorCode.NAME_TAKEN, f"The name {name!r} is already in use on this server.", fatal=True)


def banned_error(ban: Ban) -> ProtocolError:
    """The fatal ``banned``: for good, or until a time in UTC that says so (``2031-05-04 12:30 UTC``)."""
    end = " for good" if ban.until is None else " until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ban.until))
    why = f": {ban.reason}" if ban.reason else "."
    return ProtocolError(ErrorCode.BANNED, f"You are banned from this server{end}{why}", fatal=True)


def _verify(password: str, stored: str) -> bool:
    try:
        return verify_password(password, stored)
    except Exception:  # a broken stored hash: no login, and no crash in the pool
        log.exception("cannot check a password against its stored hash")
        return False


def _hash(password: str) -> str | None:
    try:
        return hash_password(password)
    except Exception:
        log.exception("cannot hash a password")
        return None
