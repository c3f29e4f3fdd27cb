"""Password rules shared by servers and clients: how long a new password may be.

A client checks them as the user types; a server checks them again before it hashes.
"""

from __future__ import annotations

MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def check_password(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD:
        return f"A password needs at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"A password may have at most {MAX_PASSWORD} characters."
    return None
