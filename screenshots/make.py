"""Render the dashboard's screens from the demo data into screenshots/ (SVG, and PNG where
rsvg-convert is installed): ``python screenshots/make.py [--all] [SCENE ...]``.

By default it renders the scenes the README shows, at 120x40; ``--all`` renders every scene of
the snapshot tests at every size they use.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from teamaccess.store.db import Database  # noqa: E402
from teamaccess.tui.screens.tour import SCENE_BY_NAME, SCENES, Scene, make_app, play, prepare  # noqa: E402


async def render(scene: Scene, size: tuple[int, int], workdir: Path) -> str:
    """One scene as SVG text, from a fresh demo database."""
    db = Database(workdir / f"{scene.name}-{size[0]}x{size[1]}.db")
    prepare(db)
    app = make_app(db, scene)
    try:
        async with app.run_test(size=size) as pilot:
            await play(pilot, scene)
            return app.export_screenshot(title=f"teamaccess — {scene.name.replace('_', ' ')}")
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", help="scene names (default: the README's)")
    parser.add_argument("--all", action="store_true", help="every scene at every size")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenes if name not in SCENE_BY_NAME]
    if unknown:
        parser.error(f"unknown scene {unknown[0]!r}: choose from {', '.join(SCENE_BY_NAME)}")
    if args.scenes:
        chosen = [(SCENE_BY_NAME[n], (120, 40)) for n in args.scenes]
    elif args.all:
        chosen = [(s, size) for s in SCENES for size in s.sizes]
    else:
        chosen = [(s, (120, 40)) for s in SCENES if s.readme]
    rsvg = shutil.which("rsvg-convert")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for scene, size in chosen:
            stem = scene.name if size == (120, 40) else f"{scene.name}-{size[0]}x{size[1]}"
            svg = args.out / f"{stem}.svg"
            svg.write_text(asyncio.run(render(scene, size, Path(tmp))), encoding="utf-8")
            made = [svg.name]
            if rsvg:
                png = svg.with_suffix(".png")
                subprocess.run([rsvg, str(svg), "-o", str(png)], check=True)
                made.append(png.name)
            print(" ".join(made))
    if not rsvg:
        print("rsvg-convert not found: wrote SVG only (apt-get install librsvg2-bin for PNG)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
