"""Snapshots of every screen and dialog at 80x24 and 120x40, from the fixed demo database."""

from __future__ import annotations

import pytest
from teamaccess.store.db import Database
from teamaccess.tui.screens.tour import SCENES, Scene, make_app, play, prepare

CASES = [
    pytest.param(scene, size, id=f"{scene.name}-{size[0]}x{size[1]}")
    for scene in SCENES
    for size in scene.sizes
]


@pytest.mark.parametrize(("scene", "size"), CASES)
def test_snapshot(scene: Scene, size: tuple[int, int], snap_compare, tmp_path) -> None:
    db = Database(tmp_path / "demo.db")
    prepare(db)
    try:
        async def run_before(pilot) -> None:
            await play(pilot, scene)

        assert snap_compare(make_app(db, scene), terminal_size=size, run_before=run_before)
    finally:
        db.close()
