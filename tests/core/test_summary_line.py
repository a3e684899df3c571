"""The one-line summary ``info`` prints and the tab shows above the tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from inspector.core.peek import peek
from inspector.core.report import summary_line


def test_counts_of_thousands_of_tensors_are_written_with_separators(tmp_path: Path) -> None:
    path = tmp_path / "many.safetensors"
    save_file({f"blocks.{i}.weight": np.zeros(2, dtype=np.float32) for i in range(1200)}, str(path))
    line = summary_line(peek(path))
    assert "1,200 tensors" in line
    assert "float32 ×1,200" in line
    assert "cpu ×1,200" in line
