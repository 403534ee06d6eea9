"""``plannote.PlanNote``: a long planning says once how far it got; a short one says
nothing (until 2026-12-01 a rerun planned for a minute without a word)."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from crawler.master.plannote import PlanNote


def test_a_long_planning_says_once_how_far_it_got(caplog: pytest.LogCaptureFixture) -> None:
    plan = SimpleNamespace(lines=0)
    with caplog.at_level(logging.INFO, logger="crawler"):
        note = PlanNote(plan, after=0.2)
        plan.lines = 1_234_567
        note.step = "resuming from the manifest of earlier runs"
        time.sleep(0.6)
        note.close()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("planning:")]
    assert said == [
        "planning: 1,234,567 list lines read so far, now resuming from the manifest of"
        " earlier runs (workers get work once it is done)"
    ]


def test_a_short_planning_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="crawler"):
        PlanNote(SimpleNamespace(lines=5), after=0.2).close()
        time.sleep(0.4)
    assert not [r for r in caplog.records if r.getMessage().startswith("planning:")]
