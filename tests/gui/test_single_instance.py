"""A second launch hands its file to the running window (two real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from inspector.gui.single_instance import send_request

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    return dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        CHECKPOINT_INSPECTOR_INSTANCE=name,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
    )


def test_second_launch_opens_its_file_as_a_tab_in_the_first(qtbot: Any, tmp_path: Path) -> None:
    first, second = tmp_path / "first.pth", tmp_path / "second.pth"
    torch.save({"a": torch.ones(2)}, first)
    torch.save({"b": torch.zeros(3)}, second)
    name = f"ci-single-{os.getpid()}"
    env = _env(tmp_path, name)
    app = subprocess.Popen([sys.executable, "-m", "inspector", str(first)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        status: dict[str, Any] = {}

        def listening() -> bool:
            reply = send_request({"command": "status"}, name=name, timeout_ms=500)
            status.update(reply or {})
            return bool(reply and str(first) in reply.get("files", []))

        qtbot.waitUntil(listening, timeout=60_000)
        # Relative path and "--": the running app resolves it against the sender's cwd.
        handed = subprocess.run(
            [sys.executable, "-m", "inspector", "--", second.name],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert handed.returncode == 0, handed.stderr
        reply = send_request({"command": "status"}, name=name)
        assert reply is not None and reply["files"] == [str(first), str(second)]
        assert app.poll() is None  # the first window is still running
    finally:
        app.kill()
        app.wait(timeout=30)


def test_new_window_opts_out_and_bad_messages_are_refused(qtbot: Any, tmp_path: Path) -> None:
    name = f"ci-single-b-{os.getpid()}"
    env = _env(tmp_path, name)
    app = subprocess.Popen([sys.executable, "-m", "inspector"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        qtbot.waitUntil(lambda: send_request({"command": "status"}, name=name, timeout_ms=500) is not None,
                        timeout=60_000)  # fmt: skip
        old = send_request({"command": "status", "version": 0}, name=name)
        assert old is not None and old["ok"] is False and "version" in old["error"]
        unknown = send_request({"command": "format-disk"}, name=name)
        assert unknown is not None and unknown["ok"] is False
        # --new-window neither hands over nor takes over the running app's channel.
        other = subprocess.Popen([sys.executable, "-m", "inspector", "--new-window"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            qtbot.waitUntil(lambda: other.poll() is None, timeout=10_000)
            reply = send_request({"command": "status"}, name=name)
            assert reply is not None and reply["files"] == []
        finally:
            other.kill()
            other.wait(timeout=30)
    finally:
        app.kill()
        app.wait(timeout=30)
