"""Refresh the translation catalogs from the GUI's source, then compile them.

Run from anywhere: ``python resources/translations/update_translations.py``. It runs
``pyside6-lupdate`` over ``inspector/gui`` and ``inspector/app.py`` into every ``*.ts`` here
(new strings come in as unfinished, vanished ones are dropped), then ``pyside6-lrelease`` to write
the ``.qm`` files the app loads. Translate the unfinished entries (Qt Linguist:
``pyside6-linguist``) and run it again; commit both the ``.ts`` and the ``.qm``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOURCES = [ROOT / "inspector" / "gui", ROOT / "inspector" / "app.py"]
LANGUAGES = ("zh_CN",)


def _tool(name: str) -> str:
    """The PySide6 tool next to this Python (a venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"{name} was not found; install PySide6 in this environment.")
    return found


def main() -> int:
    sources = [str(p) for s in SOURCES for p in ([s] if s.is_file() else sorted(s.glob("*.py")))]
    for language in LANGUAGES:
        ts = HERE / f"checkpoint_inspector_{language}.ts"
        subprocess.run(
            [_tool("pyside6-lupdate"), *sources, "-no-obsolete", "-locations", "none", "-ts", str(ts)],
            check=True,
        )
        subprocess.run([_tool("pyside6-lrelease"), str(ts), "-qm", str(ts.with_suffix(".qm"))], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
