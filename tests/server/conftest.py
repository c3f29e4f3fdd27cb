"""Server tests marked ``backends`` run once per storage backend (tests/conftest.py: BACKENDS), unless they are
also marked ``sqlite`` (they need what only a data folder on disk does: a restart, the database itself)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("backends") is not None
    if marked and "backend_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker("sqlite") is None:
        metafunc.parametrize("backend_kind", BACKENDS)
