"""The values view: pages of a 2-D slice of an N-d tensor, and the copy helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.value_text import cells_as_numpy, cells_as_text
from inspector.engine.direct_read import MappedCheckpoint
from inspector.engine.slices import value_slice


@pytest.fixture
def cube() -> torch.Tensor:
    return torch.arange(4 * 5 * 6, dtype=torch.float32).view(4, 5, 6)


def test_every_axis_pair_of_a_3d_tensor(cube: torch.Tensor) -> None:
    for row_axis in range(3):
        for col_axis in range(3):
            if row_axis == col_axis:
                continue
            (other,) = {0, 1, 2} - {row_axis, col_axis}
            index = [0, 0, 0]
            index[other] = cube.shape[other] - 1
            page = value_slice(cube, row_axis=row_axis, col_axis=col_axis, index=index, row_count=1000)
            expected = cube.select(other, index[other])
            if row_axis > col_axis:
                expected = expected.t()
            assert page.values == expected.tolist()
            assert (page.rows, page.cols) == (cube.shape[row_axis], cube.shape[col_axis])
            assert page.index[other] == index[other]


def test_pages_of_a_3d_slice(cube: torch.Tensor) -> None:
    page = value_slice(
        cube, row_axis=2, col_axis=0, index=[0, 3, 0], row_start=4, row_count=10, col_start=1, col_count=2
    )
    # rows run along axis 2 (length 6), columns along axis 0; axis 1 fixed at 3
    assert page.values == cube[1:3, 3, 4:6].t().tolist()
    assert (page.rows, page.cols, page.row_start, page.col_start) == (6, 4, 4, 1)


def test_page_of_a_large_mapped_embedding_reads_only_the_page(tmp_path: Path) -> None:
    emb = torch.randn(3000, 512).to(torch.bfloat16)
    path = tmp_path / "emb.pt"
    torch.save({"embed.weight": emb}, path)
    with MappedCheckpoint(path) as mapped:
        t = mapped.tensor(mapped.find("embed.weight"))
        page = value_slice(t, row_start=2900, row_count=50, col_start=500, col_count=100)
    assert page.values == emb[2900:2950, 500:512].to(torch.float64).tolist()
    assert len(page.values) == 50 and len(page.values[0]) == 12


def test_special_values_are_json_safe() -> None:
    t = torch.tensor([[1.5, math.nan], [math.inf, -math.inf]], dtype=torch.float16)
    page = value_slice(t)
    assert page.values == [[1.5, "nan"], ["inf", "-inf"]]
    json.dumps(page.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        (torch.tensor([[True, False]]), [[True, False]]),
        (torch.tensor([[2**64 - 1, 3]], dtype=torch.uint64), [[2**64 - 1, 3]]),
        (torch.tensor([[-7, 8]], dtype=torch.int8), [[-7, 8]]),
        (torch.tensor([[1 + 2j, complex(math.nan, 1)]], dtype=torch.complex64), [["(1+2j)", "(nan+1j)"]]),
        (torch.tensor([[0.5, 448.0]]).to(torch.float8_e4m3fn), [[0.5, 448.0]]),
        (torch.tensor([[3, 200]], dtype=torch.uint8).view(torch.bits8), [[3, 200]]),
    ],
)
def test_cells_of_every_kind(tensor: torch.Tensor, expected: list[list[object]]) -> None:
    assert value_slice(tensor).values == expected


def test_1d_and_0d() -> None:
    page = value_slice(torch.arange(5), row_axis=0, col_axis=None, row_start=1, row_count=2)
    assert page.values == [[1], [2]]
    scalar = value_slice(torch.tensor(2.5), row_axis=None, col_axis=None)
    assert scalar.values == [[2.5]]


def test_bad_arguments_are_sentences(cube: torch.Tensor) -> None:
    with pytest.raises(CheckpointError, match="outside axis 1"):
        value_slice(cube, row_axis=0, col_axis=2, index=[0, 9, 0])
    with pytest.raises(CheckpointError, match="do not fit"):
        value_slice(cube, row_axis=0, col_axis=0)
    with pytest.raises(CheckpointError, match="at most"):
        value_slice(torch.zeros(2000, 2000), row_count=2000, col_count=2000)


def test_copy_as_text_and_numpy_literal() -> None:
    rows = value_slice(torch.tensor([[1.0, math.nan], [-math.inf, 0.25]]).to(torch.bfloat16)).values
    assert cells_as_text(rows) == "1.0\tnan\n-inf\t0.25"
    literal = cells_as_numpy(rows, "bfloat16")
    assert literal.endswith("# bfloat16 in the checkpoint")
    back = eval(literal.split("  #")[0], {"np": np})
    np.testing.assert_array_equal(back, np.array([[1.0, np.nan], [-np.inf, 0.25]], dtype=np.float32))
    assert back.dtype == np.float32
    complex_rows = value_slice(torch.tensor([[1 + 2j, complex(math.inf, math.nan)]])).values
    z = eval(cells_as_numpy(complex_rows, "complex64"), {"np": np})
    assert z[0, 0] == 1 + 2j and math.isinf(z[0, 1].real) and math.isnan(z[0, 1].imag)
    ints = eval(cells_as_numpy([[1, 2], [3, 4]], "int64"), {"np": np})
    assert ints.dtype == np.int64 and ints.tolist() == [[1, 2], [3, 4]]


@pytest.fixture
def mapped_files_closed() -> Iterator[None]:
    from inspector.engine.inspect_jobs import close_mapped_files

    yield
    close_mapped_files()


def test_slice_job_in_the_worker(mapped_files_closed: None, tmp_path: Path, cube: torch.Tensor) -> None:
    from inspector.engine.protocol import Failure, Result, SliceRequest
    from inspector.engine.worker import JobControl, answer

    path = tmp_path / "cube.safetensors"
    from safetensors.torch import save_file

    save_file({"cube": cube}, str(path))
    request = SliceRequest(str(path), key="cube", axes=(1, 2), index=(3,), row_start=1, row_count=2,
                           col_start=4, col_count=10)  # fmt: skip
    page = answer(request, JobControl(9, lambda _event: None))
    assert isinstance(page, Result), page
    reply = request.reply(page.data)
    assert reply.values == cube[3, 1:3, 4:].tolist()
    assert reply.key == "cube"
    bad = answer(replace(request, index=(7,)), JobControl(10, lambda _event: None))
    assert isinstance(bad, Failure) and "outside axis 0" in bad.message


@pytest.fixture
def sources_closed() -> Iterator[None]:
    from inspector.engine.inspect_jobs import close_mapped_files

    yield
    close_mapped_files()


def test_the_window_s_value_and_stats_jobs_answer_for_a_dcp_and_an_hf_folder(
    sources_closed: None, tmp_path: Path
) -> None:
    """The window passes the path it opened (a folder); every page and statistic is answered."""
    from inspector.engine.protocol import Failure, Result, SliceRequest, StatsRequest
    from inspector.engine.worker import JobControl, answer
    from tests.layouts import sample_state, write_dcp_chunks, write_hf_set

    def run(request: SliceRequest | StatsRequest) -> Result | Failure:
        event = answer(request, JobControl(1, lambda _event: None))
        assert isinstance(event, (Result, Failure))
        return event

    w = torch.arange(24, dtype=torch.float32).view(4, 6)
    dcp = write_dcp_chunks(tmp_path / "ckpt", {"w": ((4, 6), [((0, 0), w[:2]), ((2, 0), w[2:])])})
    state = sample_state()
    write_hf_set(tmp_path / "hf", state)
    asks = [
        (dcp, {"key": "w", "row_start": 1, "row_count": 3, "col_start": 2, "col_count": 2}, w[1:4, 2:4]),
        (tmp_path / "hf", {"key": "lm_head.bias"}, state["lm_head.bias"].view(-1, 1)),
        (tmp_path / "hf", {"key": "model.embed.weight", "row_count": 2}, state["model.embed.weight"][:2]),
    ]
    for folder, ask, want in asks:
        page = run(SliceRequest(str(folder), **ask))
        assert isinstance(page, Result), page
        assert (
            page.data["values"] == want.to(torch.float64 if want.is_floating_point() else want.dtype).tolist()
        )
        stats = run(StatsRequest(str(folder), key=str(ask["key"])))
        assert isinstance(stats, Result), stats
    broken = write_dcp_chunks(tmp_path / "broken", {"w": ((8,), [((0,), torch.ones(4))])})
    failure = run(SliceRequest(str(broken), key="w"))
    assert isinstance(failure, Failure) and "hold 4 elements for a tensor of 8" in failure.message


@pytest.mark.parametrize(
    "dtype",
    [torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2,
     torch.float8_e5m2fnuz, torch.float8_e8m0fnu],
    ids=str,
)  # fmt: skip
def test_every_bit_pattern_reads_as_torch_widens_it(dtype: torch.dtype) -> None:
    """NumPy has no bfloat16 or float8: every pattern's value is the one torch gives in float64."""
    n = 1 << (8 * dtype.itemsize)
    patterns = torch.arange(n, dtype=torch.int32).to(torch.uint8 if dtype.itemsize == 1 else torch.uint16)
    t = patterns.view(dtype).view(n // 256, 256)
    page = value_slice(t, row_count=n, col_count=256)
    wide = t.to(torch.float64).tolist()

    def cell(x: float) -> float | str:
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")

    assert page.values == [[cell(x) for x in row] for row in wide]
    signs = [[math.copysign(1.0, x) for x in row if isinstance(x, float)] for row in page.values]
    assert signs == [[math.copysign(1.0, x) for x in row if math.isfinite(x)] for row in wide]
