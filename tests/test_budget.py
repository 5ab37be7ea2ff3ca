"""The time limits of multi-process tests grow with how busy the machine is, so that load alone fails no test."""

from __future__ import annotations

import budget


def test_a_busy_machine_gets_longer_limits(monkeypatch) -> None:
    budget.slowdown.cache_clear()
    monkeypatch.setattr(budget, "_work", lambda: 4 * budget.QUIET_SECONDS)  # four times slower than quiet
    monkeypatch.setattr(budget.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    try:
        assert budget.budget(240) == 960
    finally:
        budget.slowdown.cache_clear()


def test_the_load_average_alone_is_enough(monkeypatch) -> None:
    budget.slowdown.cache_clear()
    monkeypatch.setattr(budget, "_work", lambda: budget.QUIET_SECONDS / 2)  # the measurement happened to be fast
    monkeypatch.setattr(budget.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    monkeypatch.setattr(budget.os, "cpu_count", lambda: 2)
    try:
        assert budget.budget(240) == 960  # load 8 on 2 cores
    finally:
        budget.slowdown.cache_clear()


def test_a_quiet_machine_keeps_the_limit(monkeypatch) -> None:
    budget.slowdown.cache_clear()
    monkeypatch.setattr(budget, "_work", lambda: budget.QUIET_SECONDS / 2)
    monkeypatch.setattr(budget.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    try:
        assert budget.budget(240) == 240
    finally:
        budget.slowdown.cache_clear()
