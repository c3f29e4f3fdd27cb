"""Fixtures for the widget tests."""

from __future__ import annotations

import pytest

from qtchat.client import ChatClient
from qtchat.client.settings import ClientSettings
from qtchat.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot):
    client = ChatClient()
    client.BACKOFF_BASE = 0.05
    w = MainWindow(client, ClientSettings())
    w.view.open_links = False
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    yield w
    w._quitting = True  # the test's QApplication must outlive the window
    client.quit()
