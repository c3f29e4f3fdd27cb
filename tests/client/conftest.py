"""Fixtures for the client core tests."""

from __future__ import annotations

import pytest

from qtchat.client import ChatClient


@pytest.fixture
def client(qtbot):
    c = ChatClient()
    c.BACKOFF_BASE = 0.05  # reconnect quickly in tests
    yield c
    c.quit()
    c.deleteLater()
