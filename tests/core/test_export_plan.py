"""The export plan and its key mapping: what the preview shows is what the engine will write."""

from __future__ import annotations

import pytest

from inspector.core.export_plan import ExportPlan, ExportPlanError, KeyRule, discard_partial, map_keys
from inspector.core.peek import peek
from tests.checkpoints import BuiltCheckpoint, TinyNet


def _plan(built: BuiltCheckpoint, **kw: object) -> ExportPlan:
    return ExportPlan(str(built.path), str(built.path.parent / "out.pth"), **kw)  # type: ignore[arg-type]


def test_plan_survives_json() -> None:
    plan = ExportPlan(
        "a.pth", "b.safetensors", "safetensors", device=None, dtype="bfloat16", convert_only=("*.weight",),
        subtree="model", include=("layers.*",), exclude=("*.bias",), strip_prefixes=("module.",),
        renames=(KeyRule.parse_rename(r"^layers\.(\d+)=>blocks.\1"),), metadata={"k": "v"}, force=True,
        allowed_globals=("argparse.Namespace",),
    )  # fmt: skip
    again = ExportPlan.from_json(plan.to_json())
    assert again == plan
    mapped = ExportPlan.from_json({**ExportPlan("a", "b", device={"cuda:1": "cuda:0"}).to_json()})
    assert mapped.device == {"cuda:1": "cuda:0"} and mapped.target_device("cuda:1") == "cuda:0"
    assert mapped.target_device("cpu") == "cpu"


def test_temp_path_lies_beside_the_target_and_is_discarded(tmp_path) -> None:
    plan = ExportPlan("a.pth", str(tmp_path / "b.pth"))
    assert plan.temp_path.startswith(str(tmp_path) + "/.b.pth.")
    assert plan.temp_path != ExportPlan("a.pth", str(tmp_path / "b.pth")).temp_path
    open(plan.temp_path, "wb").close()
    assert discard_partial(plan) is True
    assert not (tmp_path / plan.temp_path).exists()
    assert discard_partial(plan) is False


def test_strip_prefix_maps_data_parallel_keys_to_the_plain_model(built_checkpoints) -> None:
    built = built_checkpoints["data_parallel-zip"]
    mapping = map_keys(peek(built.path), _plan(built, strip_prefixes=("module.",)))
    assert mapping.ok, mapping.problems
    assert [t.output_key for t in mapping.tensors] == list(TinyNet().state_dict())
    assert all(t.source_key == "module." + t.output_key for t in mapping.tensors)


def test_subtree_writes_the_model_flat_and_leaves_the_rest(built_checkpoints) -> None:
    built = built_checkpoints["training-zip"]
    mapping = map_keys(peek(built.path), _plan(built, subtree="model"))
    assert mapping.ok, mapping.problems
    assert [t.output_key for t in mapping.tensors] == list(TinyNet().state_dict())
    assert all(len(t.output_path) == 1 for t in mapping.tensors)
    assert mapping.values == []  # epoch, args, optimizer are outside the subtree


def test_subtree_must_be_a_container(built_checkpoints) -> None:
    index = peek(built_checkpoints["training-zip"].path)
    plan = ExportPlan("x", "y", subtree="model.layers")
    assert "group of dotted keys" in " ".join(map_keys(index, plan).problems)
    plan = ExportPlan("x", "y", subtree="nothing")
    assert "no container" in " ".join(map_keys(index, plan).problems)


def test_rename_collisions_are_found_and_block_writing(built_checkpoints) -> None:
    built = built_checkpoints["data_parallel-zip"]
    plan = _plan(built, renames=(KeyRule.parse_rename(r"^module\.layers\.\d+=>x"),))
    mapping = map_keys(peek(built.path), plan)
    assert not mapping.ok
    assert mapping.collisions["x.0.weight"] == ["module.layers.0.0.weight", "module.layers.1.0.weight"]
    assert "Keys would become one" in " ".join(mapping.problems)


def test_rename_rules_apply_in_order(built_checkpoints) -> None:
    built = built_checkpoints["state_dict-zip"]
    rules = (KeyRule.parse_rename(r"^layers=>blocks"), KeyRule.parse_rename(r"^blocks\.0=>first"))
    mapping = map_keys(peek(built.path), _plan(built, renames=rules))
    keys = [t.output_key for t in mapping.tensors]
    assert "first.0.weight" in keys and "blocks.1.0.weight" in keys and "layers.0.0.weight" not in keys


def test_bad_rules_are_sentences() -> None:
    with pytest.raises(ExportPlanError, match="not a valid regular expression"):
        KeyRule.parse_rename("(unclosed=>x")
    with pytest.raises(ExportPlanError, match="does not fit"):
        KeyRule.parse_rename(r"a=>\2")
    with pytest.raises(ExportPlanError, match="REGEX=>REPLACEMENT"):
        KeyRule.parse_rename("no arrow")


def test_torch_formats_cannot_move_a_key_out_of_its_container(built_checkpoints) -> None:
    built = built_checkpoints["training-zip"]
    plan = _plan(built, renames=(KeyRule.parse_rename(r"^model\.=>net."),))
    assert "moves it out of" in " ".join(map_keys(peek(built.path), plan).problems)
    safetensors = ExportPlan(str(built.path), "o.safetensors", "safetensors", renames=plan.renames)
    mapping = map_keys(peek(built.path), safetensors)
    assert mapping.ok and "net.embed.weight" in [t.output_key for t in mapping.tensors]


def test_keys_that_would_leave_their_container_are_one_short_sentence_with_keys_escaped(tmp_path) -> None:
    import torch

    path = tmp_path / "many.pth"
    torch.save({"model": {f"layer{i}.\x1b[2Jw": torch.ones(1) for i in range(28)}, "step": 3}, path)
    plan = ExportPlan(str(path), str(tmp_path / "out.pth"), strip_prefixes=("model.",))
    [said] = map_keys(peek(str(path)), plan).problems
    assert said.startswith(
        "“model.layer0.\\x1b[2Jw” would become “layer0.\\x1b[2Jw”, which moves it out of “model”, and so "
        "would 27 more keys;"
    )
    assert "\x1b" not in said and said.count("would become") == 1
    assert said.endswith("(export the container with --subtree, or write safetensors).")


def test_include_and_exclude_globs(built_checkpoints) -> None:
    built = built_checkpoints["training-zip"]
    index = peek(built.path)
    mapping = map_keys(index, _plan(built, include=("model.*",), exclude=("*.bias",)))
    keys = [t.output_key for t in mapping.tensors]
    assert keys and all(k.startswith("model.") and not k.endswith(".bias") for k in keys)
    assert "optimizer.state.0.exp_avg" in mapping.excluded and "model.head.bias" in mapping.excluded
    assert {v.source_key for v in mapping.values if v.fate == "dropped"} >= {"epoch"}


def test_dtype_conversion_touches_floating_tensors_only(built_checkpoints) -> None:
    built = built_checkpoints["training-zip"]
    mapping = map_keys(peek(built.path), _plan(built, dtype="bfloat16"))
    by_key = {t.source_key: t for t in mapping.tensors}
    assert by_key["model.embed.weight"].output_dtype == "bfloat16"
    assert by_key["model.norm.num_batches_tracked"].output_dtype == "int64"
    step = by_key["optimizer.state.0.step"]
    assert step.dtype == "float32" and step.output_dtype == "float32"  # a step counter stays
    only = map_keys(peek(built.path), _plan(built, dtype="float16", convert_only=("model.*",)))
    assert {t.output_dtype for t in only.tensors if t.source_key.startswith("optimizer.")} == {"float32"}


def test_legacy_format_refuses_dtypes_it_cannot_store(built_checkpoints) -> None:
    built = built_checkpoints["dtypes-zip"]
    problems = " ".join(map_keys(peek(built.path), _plan(built, format="pth-legacy")).problems)
    assert "legacy format cannot store" in problems and "float8_e4m3fn" in problems and "uint16" in problems


def test_safetensors_stores_aliases_once_and_clones_other_views(built_checkpoints) -> None:
    built = built_checkpoints["shared-zip"]
    mapping = map_keys(peek(built.path), _plan(built, format="safetensors"))
    assert mapping.ok, mapping.problems
    assert mapping.aliases() == {"views.same": "views.t", "tied.lm_head.weight": "tied.embed.weight"}
    assert mapping.cloned() == {"views.tail": "views.t", "views.t_T": "views.t", "views.column": "views.t"}


def test_safetensors_values_go_to_metadata_or_are_dropped(built_checkpoints) -> None:
    training = built_checkpoints["training-zip"]
    mapping = map_keys(peek(training.path), _plan(training, format="safetensors"))
    fates = {v.source_key: v.fate for v in mapping.values}
    assert fates == {
        "optimizer.param_groups": "metadata",
        "scheduler": "metadata",
        "epoch": "metadata",
        "args": "metadata",
    }
    namespace = built_checkpoints["namespace-zip"]
    fates = {
        v.source_key: v.fate
        for v in map_keys(peek(namespace.path), _plan(namespace, format="safetensors")).values
    }
    assert fates == {"args": "dropped", "epoch": "metadata"}


def test_torch_formats_keep_values(built_checkpoints) -> None:
    training = built_checkpoints["training-zip"]
    fates = {v.source_key: v.fate for v in map_keys(peek(training.path), _plan(training)).values}
    assert fates["epoch"] == "kept" and fates["args.lr"] == "kept"
    assert set(fates.values()) == {"kept"}


def test_device_mapping_and_refusals(built_checkpoints) -> None:
    built = built_checkpoints["cuda_tagged-zip"]
    mapping = map_keys(peek(built.path), _plan(built, device={"cuda:1": "cuda:0"}))
    devices = {t.source_key: t.output_device for t in mapping.tensors}
    assert devices == {"encoder.weight": "cuda:0", "decoder.weight": "cuda:0", "decoder.bias": "cuda:0",
                       "cpu_buffer": "cpu"}  # fmt: skip
    assert "no device" in " ".join(
        map_keys(peek(built.path), _plan(built, format="safetensors", device="cpu")).problems
    )
    assert "meta device" in " ".join(map_keys(peek(built.path), _plan(built, device="meta")).problems)


def test_size_estimate_follows_the_conversion(built_checkpoints) -> None:
    built = built_checkpoints["state_dict-zip"]
    index = peek(built.path)
    full = map_keys(index, _plan(built)).estimated_bytes
    half = map_keys(index, _plan(built, dtype="bfloat16")).estimated_bytes
    assert full >= index.total_bytes
    assert half < full and full - half >= (index.total_bytes - 8) // 2 - 64


def test_a_many_key_collision_is_listed_readably_and_bounded(tmp_path) -> None:
    import torch

    path = tmp_path / "many.pth"
    torch.save({f"block{i}.weight": torch.zeros(1) for i in range(28)} | {"a.w": torch.ones(1)}, path)
    plan = ExportPlan(
        str(path), str(tmp_path / "o.pth"), "pth", renames=(KeyRule.parse_rename(r"^block\d+=>x"),)
    )
    mapping = map_keys(peek(path), plan)
    (message,) = [p for p in mapping.problems if "would become one" in p]
    assert message.startswith("Keys would become one: “x.weight” from 28 keys (")
    assert "“block0.weight”, “block1.weight”, “block2.weight” and 25 more)" in message
    assert message.count("block") == 3 and len(message) < 300


def test_tensors_made_of_several_tensors_are_refused_by_name(tmp_path) -> None:
    import torch

    path = tmp_path / "sparse.pth"
    torch.save({"coo": torch.eye(3).to_sparse_coo(), "w": torch.ones(2)}, path)
    plan = ExportPlan(str(path), str(tmp_path / "o.pth"), "pth")
    problems = map_keys(peek(path), plan).problems
    assert any("“coo” is a sparse_coo tensor made of several tensors" in p for p in problems), problems
    kept = map_keys(peek(path), ExportPlan(str(path), str(tmp_path / "o.pth"), "pth", exclude=("coo",)))
    assert kept.ok and [t.source_key for t in kept.tensors] == ["w"]


def test_a_whole_module_exports_to_safetensors_under_its_state_dict_names(tmp_path) -> None:
    import torch

    net = TinyNet()
    path = tmp_path / "whole.pth"
    torch.save(net, path)
    index = peek(path)
    mapping = map_keys(index, ExportPlan(str(path), str(tmp_path / "o.safetensors"), "safetensors"))
    assert {t.output_key for t in mapping.tensors} == set(net.state_dict())
    refused = map_keys(index, ExportPlan(str(path), str(tmp_path / "o.pth"), "pth")).problems
    assert any("“the file” is a tests.checkpoints.TinyNet holding tensors" in p for p in refused), refused
