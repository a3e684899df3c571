"""File ▸ Compare…: the diff window over the real engine, and its controls over the fake one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import Qt

from inspector.core import diff as core_diff
from inspector.engine.protocol import DiffRequest
from inspector.gui.diff_window import COLUMNS, SORT_ROLE, DiffWindow
from inspector.gui.engine_bridge import EngineBridge

WAIT_MS = 120_000


def _pair(tmp_path: Path, prefix: str = "") -> tuple[Path, Path]:
    """A and a copy B with one tensor changed, one removed, one renamed and one dtype-changed."""
    torch.manual_seed(0)
    a = {f"layer{i}.weight": torch.randn(8, 8) for i in range(6)}
    a["head.bias"] = torch.randn(8)
    b = {prefix + k: v.clone() for k, v in a.items()}
    b[prefix + "layer0.weight"][2, 3] += 0.5  # changed
    del b[prefix + "layer1.weight"]  # removed
    b[prefix + "layer2.renamed"] = b.pop(prefix + "layer2.weight")  # renamed
    b[prefix + "layer3.weight"] = b[prefix + "layer3.weight"].half()  # dtype changed
    path_a, path_b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(a, path_a)
    torch.save(b, path_b)
    return path_a, path_b


def _window(qtbot: Any, engine: EngineBridge, a: Path, b: Path) -> DiffWindow:
    window = DiffWindow(engine, None, str(a), str(b))
    qtbot.addWidget(window)
    window.show()
    return window


def _rows(window: DiffWindow) -> dict[str, str]:
    """key → status, as the (sorted, filtered) table shows them."""
    proxy = window.proxy
    out = {}
    for row in range(proxy.rowCount()):
        key = (
            proxy.index(row, COLUMNS.index("key_a")).data() or proxy.index(row, COLUMNS.index("key_b")).data()
        )
        out[key] = proxy.index(row, 0).data()
    return out


@pytest.mark.slow
def test_diff_of_a_copy_with_four_kinds_of_change(
    qtbot: Any, real_engine: EngineBridge, tmp_path: Path
) -> None:
    a, b = _pair(tmp_path)
    window = _window(qtbot, real_engine, a, b)
    with qtbot.waitSignal(window.finished, timeout=WAIT_MS):
        window.compare()
    assert not window.running and window.progress_area.isHidden()
    assert set(_rows(window)) == {"layer0.weight", "layer1.weight", "layer2.weight", "layer3.weight"}
    window.filter_combo.setCurrentIndex(0)  # all tensors
    rows = _rows(window)
    assert rows == {
        "layer0.weight": "changed",
        "layer1.weight": "only in A",
        "layer2.weight": "renamed?",
        "layer3.weight": "dtype changed",
        "layer4.weight": "equal",
        "layer5.weight": "equal",
        "head.bias": "equal",
    }
    summary = window.summary_label.text()
    assert summary.startswith("3 equal, 1 changed, 1 dtype changed, 1 renamed?, 1 only in A")
    assert window.prefix_area.isHidden()

    # Numbers sort as numbers: the changed tensor has the largest max |a−b| of the common ones.
    column = COLUMNS.index("max_abs_diff")
    window.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    first = window.proxy.index(0, 0)
    assert window.proxy.index(0, COLUMNS.index("key_a")).data() == "layer0.weight"
    assert float(window.proxy.index(0, column).data()) == pytest.approx(0.5, rel=1e-6)
    values = [window.proxy.index(r, column).data(SORT_ROLE) for r in range(window.proxy.rowCount())]
    assert values == sorted(values, reverse=True)
    assert first.data() == "changed"
    cosine = window.proxy.index(0, COLUMNS.index("cosine")).data()
    assert 0.99 < float(cosine) < 1.0

    window.filter_combo.setCurrentIndex(4)  # only in A
    assert set(_rows(window)) == {"layer1.weight"}


@pytest.mark.slow
def test_prefix_is_detected_and_the_rename_offered(
    qtbot: Any, real_engine: EngineBridge, runner: Any, tmp_path: Path
) -> None:
    a, b = _pair(tmp_path, prefix="module.")
    window = DiffWindow(real_engine, runner, str(b), str(a))  # A is the one with "module."
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.finished, timeout=WAIT_MS):
        window.compare()
    assert not window.prefix_area.isHidden()
    assert "module." in window.prefix_label.text()
    assert window.rename_plan() == (str(b), "module.")
    window.filter_combo.setCurrentIndex(0)
    assert _rows(window)["module.layer4.weight"] == "equal"
    window.offer_rename()  # reads B's tree on the task pool, then opens the export dialog
    qtbot.waitUntil(lambda: window.export_dialog is not None, timeout=WAIT_MS)
    dialog = window.export_dialog
    assert dialog is not None
    assert dialog.strip_edit.text() == "module."  # type: ignore[attr-defined]
    after = [dialog.preview.item(r, 1).text() for r in range(dialog.preview.rowCount())]  # type: ignore[attr-defined]
    assert "layer4.weight" in after and not any(k.startswith("module.") for k in after)


def test_compare_sends_a_diff_job_and_cancel_stops_it(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    fake_client["hold"] = True
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    window = _window(qtbot, engine, a, b)
    window.compare()
    assert window.running and not window.progress_area.isHidden()
    client = engine.client
    job, request = client.submitted[-1]  # type: ignore[attr-defined]
    assert request == DiffRequest(str(a), str(b))
    client.progress(job, 50, 200)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.progress.value() == 250, timeout=WAIT_MS)
    window.cancel()
    assert client.cancelled == [job]  # type: ignore[attr-defined]
    assert not window.running and window.compare_button.isEnabled()
    assert "cancelled" in window.summary_label.text()


def test_missing_file_is_said_plainly(qtbot: Any, engine: EngineBridge, tmp_path: Path) -> None:
    window = _window(qtbot, engine, tmp_path / "nope.pth", tmp_path / "other.pth")
    window.compare()
    assert not window.running
    assert "does not exist" in window.summary_label.text()


def test_statuses_read_as_core_names_them_and_the_window_says_why_the_files_differ(
    qtbot: Any, engine: EngineBridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(core_diff.STATUS_LABELS, "changed", "values changed")  # one table of labels
    a, b = _pair(tmp_path)
    window = _window(qtbot, engine, a, b)
    with qtbot.waitSignal(window.finished, timeout=WAIT_MS):
        window.compare()
    window.filter_combo.setCurrentIndex(0)  # all tensors
    rows = _rows(window)
    assert rows["layer0.weight"] == "values changed" and rows["layer1.weight"] == "only in A"
    summary = window.summary_label.text()
    assert "Not identical: 1 tensor changed values; 1 tensor changed dtype;" in summary
    assert "1 tensor only in A" in summary
    window.filter_combo.setCurrentIndex(1)  # differences only: every status but "equal"
    assert set(_rows(window)) == {"layer0.weight", "layer1.weight", "layer2.weight", "layer3.weight"}
