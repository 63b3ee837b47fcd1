"""One retry budget per marketplace, computed from the settings; the numbers the
reliability page quotes are the ones the code computes."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from syndication.budget import budgets, message_budget
from syndication.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "reliability.md"


def bulkheads_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split("## Bulkheads", 1)[1].split("\n## ", 1)[0]


def test_the_documented_default_budget_is_the_computed_one() -> None:
    budget = message_budget(Settings(), "hemnet")
    section = bulkheads_section()
    calls = re.search(r"\*\*(\d+) calls\*\*", section)
    seconds = re.search(r"\*\*(\d+) s\*\*", section)
    assert calls and seconds, "the Bulkheads section must state the calls and seconds in bold"
    assert int(calls.group(1)) == budget.calls == 30
    assert int(seconds.group(1)) == budget.worst_case_seconds
    minutes, rest = divmod(int(budget.worst_case_seconds), 60)
    assert f"({minutes} min {rest} s)" in section
    assert f"({sum(budget.backoff_seconds):.0f} s with the defaults)" in section
    assert f"{budget.tries} tries × {budget.attempts_per_try} calls" in section


def test_the_budget_follows_the_settings_and_the_marketplaces_file(tmp_path: Path) -> None:
    path = tmp_path / "marketplaces.toml"
    path.write_text(
        "[defaults]\nmax_attempts = 2\nmax_delay = 10\ndeadline = 5\n"
        "[marketplaces.hemnet]\ntransport = 'http'\nurl = 'https://h.example'\n"
        "[marketplaces.blocket]\ntransport = 'http'\nurl = 'https://b.example'\n"
        "max_attempts = 4\n",
        encoding="utf-8",
    )
    settings = replace(Settings(), marketplaces_file=path, max_retries=2, min_backoff_ms=1000)
    found = budgets(settings)
    assert found["hemnet"].calls == 3 * 2 and found["blocket"].calls == 3 * 4
    assert found["hemnet"].worst_case_seconds == 3 * (10 + 5) + (2 + 4)
    assert found["hittahem"].calls == 3 * 5
