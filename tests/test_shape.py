"""The code keeps a shape a newcomer can read: modules of about 600 lines at most, and no function more
tangled than radon's grade C (cyclomatic complexity 20)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_rank, cc_visit

PACKAGE = Path(__file__).resolve().parent.parent / "qtchat"
MAX_LINES = 620  # "about 600": a module past this is split by job
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_longer_than_about_600_lines() -> None:
    assert len(SOURCES) > 40
    long = {str(p.relative_to(PACKAGE)): n for p in SOURCES if (n := len(p.read_text(encoding="utf-8").splitlines()))
            > MAX_LINES}
    assert long == {}


def test_no_function_is_graded_worse_than_c() -> None:
    worse = {}
    for path in SOURCES:
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if cc_rank(block.complexity) > "C":
                worse[f"{path.relative_to(PACKAGE)}:{block.lineno} {block.name}"] = block.complexity
    assert worse == {}


def test_the_grading_sees_a_tangled_function() -> None:
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(25))
    (block,) = cc_visit(f"def f(x):\n{branches}    return -1\n")
    assert cc_rank(block.complexity) > "C"
