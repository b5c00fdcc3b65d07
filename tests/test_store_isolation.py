"""The store never pulls in Textual or Rich: checked in a fresh interpreter, module by module."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from teamaccess import store

STORE_DIR = Path(store.__file__).parent
STORE_MODULES = sorted(f"teamaccess.store.{m.name}" for m in pkgutil.iter_modules([str(STORE_DIR)]))

# Imports every store module, then reports which UI packages ended up loaded (in one run, so the
# test stays fast; a module listed as failing to import fails the test too).
_PROBE = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = repr(err)
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"failed": failed, "ui": ui}))
"""


def test_the_store_has_the_modules_we_expect():
    # Guards the probe itself: an empty module list would make the real test pass vacuously.
    assert {f"teamaccess.store.{m}" for m in ("models", "db", "policy", "ops", "queries")} <= set(
        STORE_MODULES
    )


def test_no_store_module_imports_textual_or_rich():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "teamaccess.store", *STORE_MODULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=STORE_DIR.parent,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["ui"] == [], f"store imported UI packages: {report['ui']}"


def test_the_probe_would_notice_a_ui_import():
    # The same probe, fed a module that does import rich, must report it.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "rich.text"], capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "rich" in report["ui"]
