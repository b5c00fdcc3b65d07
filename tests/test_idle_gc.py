"""Full garbage collections move to moments when nobody is typing, and the dashboard gives
CPython its thresholds back when it exits."""

from __future__ import annotations

import gc

import pytest
from conftest import make, settle, sync
from teamaccess.tui import idle_gc
from teamaccess.tui.idle_gc import IdleCollector


@pytest.fixture
def collector(monkeypatch):
    clock = [1000.0]
    collected = []
    counts = [(0, 0, 0)]
    monkeypatch.setattr(idle_gc.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(idle_gc.gc, "get_count", lambda: counts[0])
    monkeypatch.setattr(idle_gc.gc, "collect", lambda: collected.append(clock[0]) or 0)
    saved = gc.get_threshold()
    c = IdleCollector()
    c.start()
    yield c, clock, counts, collected
    c.stop()
    assert gc.get_threshold() == saved


def test_idle_collector_raises_only_the_oldest_threshold_and_gives_it_back():
    saved = gc.get_threshold()
    c = IdleCollector()
    c.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], IdleCollector.CAP)
    finally:
        c.stop()
    assert gc.get_threshold() == saved


def test_idle_collector_waits_for_quiet_and_for_a_due_collection(collector):
    c, clock, counts, collected = collector
    counts[0] = (0, 0, IdleCollector.DUE - 1)
    clock[0] += 10
    assert not c.tick() and collected == []  # quiet, but nothing due
    counts[0] = (0, 0, IdleCollector.DUE)
    c.saw_input()
    clock[0] += IdleCollector.IDLE / 2
    assert not c.tick() and collected == []  # due, but someone just typed
    clock[0] += IdleCollector.IDLE
    assert c.tick() and collected == [clock[0]] and c.collections == 1


def test_idle_collector_does_nothing_once_stopped(collector):
    c, clock, counts, collected = collector
    c.stop()
    counts[0] = (0, 0, 50)
    clock[0] += 10
    assert not c.tick() and collected == []


@sync
async def test_dashboard_hands_gc_thresholds_back_on_exit(demo_db):
    saved = gc.get_threshold()
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert gc.get_threshold()[2] == IdleCollector.CAP
        before = app.idle_gc.last_input
        await pilot.press("j")
        assert app.idle_gc.last_input > before  # keys reach the collector
    assert gc.get_threshold() == saved
