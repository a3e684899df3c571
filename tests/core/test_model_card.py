"""The model card of each family's key layout: family, sizes and the evidence each claim rests on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from inspector.core.hf_config import read_config
from inspector.core.model_card import DeviceMemory, ModelCard, build_model_card, card_lines, read_model_card
from inspector.core.peek import peek
from tests import model_card_fixtures as fx
from tests.layouts import write_dcp, write_hf_set


def _card(path: Path) -> ModelCard:
    index = peek(path)
    return build_model_card(index, read_config(index.path))


def _value(card: ModelCard, name: str) -> int | None:
    dim = card.dimension(name)
    assert dim is not None, f"no {name} in {[d.name for d in card.dimensions]}"
    return dim.value


def _fact(card: ModelCard, topic: str) -> str:
    return next(f.text for f in card.facts if f.topic == topic)


def _save(path: Path, shapes: fx.Shapes) -> Path:
    torch.save({k: torch.zeros(s) for k, s in shapes.items()}, path)
    return path


def test_llama_layout_gives_layers_sizes_and_grouped_query_attention_without_a_head_count(
    tmp_path: Path,
) -> None:
    card = _card(fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(layers=3, kv=16)))
    assert card.family == "llama"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (3, 64, 128)
    assert _value(card, "vocab") == 100
    assert card.evidence[0] == "3 blocks: model.layers.0 … model.layers.2"
    assert "model.layers.0.self_attn.k_proj.weight [16, 64]" in card.evidence
    heads, kv = card.dimension("heads"), card.dimension("kv_heads")
    assert heads is not None and heads.value is None and "not determined" in heads.note
    assert kv is not None and kv.value is None and "4 query heads per KV head" in kv.note
    assert kv.per_kv_head == 4 and card.to_json()["dimensions"]["kv_heads"]["per_kv_head"] == 4
    assert _fact(card, "norm").startswith("RMSNorm")
    assert "needs reading the data" in _fact(card, "tied_embeddings")  # safetensors: two storages
    assert card.params_by_part["embeddings"] == 100 * 64 and card.params_by_part["head"] == 100 * 64
    assert card.bytes_at["bf16"] == card.params * 2 and card.bytes_at["int4"] == card.params // 2
    assert card.stored_bytes == card.params * 4


def test_config_beside_the_file_names_the_heads_and_its_contradictions_are_said(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(layers=2, hidden=64, kv=16))
    config = {"num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 3, "hidden_size": 64}
    (tmp_path / "config.json").write_text(json.dumps(config))
    card = _card(tmp_path / "model.safetensors")
    assert (_value(card, "heads"), _value(card, "kv_heads"), _value(card, "head_dim")) == (4, 1, 16)
    assert card.config is not None and card.config.shown["num_attention_heads"] == 4
    text = " ".join(card.contradictions)
    assert "config says num_hidden_layers 3; the shapes give layers 2" in text
    assert "config says num_key_value_heads 4; the shapes give kv_heads 1" in text


def test_a_config_head_count_that_does_not_divide_the_projections_is_a_contradiction(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(hidden=64, kv=16))
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 48, "num_key_value_heads": 48}))
    card = _card(tmp_path / "model.safetensors")
    assert _value(card, "heads") is None
    assert card.contradictions == [
        "config says 48 heads with 48 KV heads; the q/k projection shapes imply 4 query heads per KV head."
    ]


def test_a_config_that_is_not_json_is_one_sentence_and_the_card_stands(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "model.safetensors", fx.llama())
    (tmp_path / "config.json").write_text("{not json")
    card = _card(tmp_path / "model.safetensors")
    assert card.family == "llama"
    assert card.config is not None and card.config.problems[0].startswith(
        "config.json beside the checkpoint is not"
    )


def test_a_per_head_norm_determines_the_head_count(tmp_path: Path) -> None:
    shapes = fx.llama(layers=1, hidden=64, kv=16) | {
        "model.layers.0.self_attn.q_norm.weight": (8,),
        "model.layers.0.self_attn.k_norm.weight": (8,),
    }  # Qwen3's q_norm is [head_dim]
    card = _card(fx.write_safetensors(tmp_path / "qwen3.safetensors", shapes))
    assert (_value(card, "head_dim"), _value(card, "heads"), _value(card, "kv_heads")) == (8, 8, 2)


def test_gpt2_tied_head_is_one_storage_in_a_torch_save(tmp_path: Path) -> None:
    state = {k: torch.zeros(s) for k, s in fx.gpt2(layers=4).items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]  # as GPT2LMHeadModel ties them
    torch.save(state, tmp_path / "gpt2.pt")
    card = _card(tmp_path / "gpt2.pt")
    assert card.family == "gpt2"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (4, 32, 128)
    assert (_value(card, "vocab"), _value(card, "max_positions")) == (50, 16)
    assert _value(card, "heads") is None
    assert _fact(card, "tied_embeddings").startswith("tied: the head and the embedding are one storage")
    assert _fact(card, "positions") == "learned absolute, 16 positions"
    assert _fact(card, "norm").startswith("LayerNorm")
    assert card.params_by_part["head"] == 0  # counted once, with the embedding


@pytest.mark.parametrize(
    ("shapes", "router", "expert"),
    [
        (
            fx.mixtral(experts=4, inter=48),
            "block_sparse_moe.gate.weight [4, 32]",
            "block_sparse_moe.experts.0.w1",
        ),
        (fx.qwen2_moe(experts=4, inter=48), "mlp.gate.weight [4, 32]", "mlp.experts.0.gate_proj"),
    ],
    ids=["mixtral", "qwen2-moe"],
)
def test_mixture_of_experts_counts_its_experts_and_their_size(
    shapes: fx.Shapes, router: str, expert: str, tmp_path: Path
) -> None:
    card = _card(fx.write_safetensors(tmp_path / "moe.safetensors", shapes))
    assert card.family == "llama" and _value(card, "layers") == 2
    experts = card.dimension("experts")
    assert experts is not None and experts.value == 4
    assert experts.evidence[0] == "model.layers.0." + router
    assert experts.evidence[1] == f"4 experts: model.layers.0.{expert.rsplit('.0.', 1)[0]}.0 … .3"
    assert _value(card, "intermediate") == 48
    assert card.dimension("intermediate").evidence[0].startswith("model.layers.0." + expert)  # type: ignore[union-attr]
    assert _fact(card, "variant") == "mixture of experts: 4 experts per layer, a router picks among them"


def test_opt_decoder_with_fc1_and_offset_learned_positions(tmp_path: Path) -> None:
    card = _card(
        fx.write_safetensors(tmp_path / "opt.safetensors", fx.opt(layers=3, hidden=32, ffn=128, positions=16))
    )
    assert card.family == "opt" and card.label == "decoder-only transformer (OPT-style)"
    assert (
        _value(card, "layers") == 3 and _value(card, "hidden") == 32 and _value(card, "intermediate") == 128
    )
    assert _value(card, "vocab") == 50 and _value(card, "max_positions") == 16
    assert card.evidence[0] == "3 blocks: model.decoder.layers.0 … model.decoder.layers.2"
    assert "model.decoder.layers.0.fc1.weight [128, 32]" in card.evidence
    assert _fact(card, "positions") == "learned absolute, 16 positions (18 rows: OPT's offset of 2)"
    assert _fact(card, "norm") == "LayerNorm (weight and bias)"
    assert card.params_by_part["head"] == 50 * 32 and card.params_by_part["embeddings"] == (50 + 18) * 32


def test_bert_encoder(tmp_path: Path) -> None:
    card = _card(fx.write_safetensors(tmp_path / "bert.safetensors", fx.bert(layers=3)))
    assert card.family == "bert"
    assert card.label.startswith("encoder-only")
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (3, 32, 64)
    assert (_value(card, "vocab"), _value(card, "max_positions"), _value(card, "token_types")) == (60, 24, 2)
    assert "bert.encoder.layer.0.attention.self.query.weight [32, 32]" in card.evidence
    kv = card.dimension("kv_heads")
    assert kv is not None and kv.value is None and kv.note.startswith("as many KV heads as query heads")
    assert card.params_by_part["head"] == 2 * 32  # classifier.weight


def test_t5_relative_bias_determines_heads(tmp_path: Path) -> None:
    card = _card(fx.write_safetensors(tmp_path / "t5.safetensors", fx.t5(layers=2, heads=4, d_kv=8)))
    assert card.family == "t5" and card.label.startswith("encoder-decoder")
    assert (_value(card, "layers"), _value(card, "decoder_layers")) == (2, 2)
    assert (_value(card, "hidden"), _value(card, "heads"), _value(card, "head_dim")) == (32, 4, 8)
    assert (_value(card, "intermediate"), _value(card, "vocab")) == (64, 40)
    assert _fact(card, "positions") == "relative position bias, 32 buckets"
    assert _fact(card, "norm").startswith("RMSNorm")


def test_resnet18_by_its_stages(tmp_path: Path) -> None:
    card = _card(_save(tmp_path / "resnet18.pth", fx.resnet18(classes=10)))
    assert card.family == "resnet"
    assert _fact(card, "variant") == "ResNet-18 layout"
    assert (_value(card, "classes"), _value(card, "input_channels"), _value(card, "layers")) == (10, 3, 8)
    assert _fact(card, "norm").startswith("BatchNorm")


def test_vit_patches_and_tokens(tmp_path: Path) -> None:
    card = _card(fx.write_safetensors(tmp_path / "vit.safetensors", fx.vit(layers=2, patch=4, tokens=17)))
    assert card.family == "vit"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "patch_size")) == (2, 32, 4)
    assert _fact(card, "positions") == "learned absolute, 17 tokens (patches and a class token)"


def test_falcon_fused_qkv_gives_the_key_value_width_and_the_ratio_not_the_head_count(tmp_path: Path) -> None:
    """falcon-7b's layout: one KV head; query_key_value [(heads + 2) × head_dim, hidden]."""
    card = _card(
        fx.write_safetensors(tmp_path / "falcon.safetensors", fx.falcon(layers=3, hidden=32, heads=4))
    )
    assert card.family == "falcon" and card.label == "decoder-only transformer (Falcon-style)"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (3, 32, 128)
    assert _value(card, "vocab") == 50
    assert card.evidence[:2] == [
        "3 blocks: transformer.h.0 … transformer.h.2",
        "transformer.h.0.self_attention.query_key_value.weight [48, 32]",
    ]
    heads, kv = card.dimension("heads"), card.dimension("kv_heads")
    assert heads is not None and heads.value is None and "not determined" in heads.note
    assert kv is not None and kv.value is None and kv.per_kv_head == 4
    assert _fact(card, "attention") == (
        "fused q/k/v of 48 rows: 32 for the queries (heads × head_dim, the output projection's input) "
        "+ 2 × 8 for keys and values (kv_heads × head_dim)"
    )
    assert _fact(card, "norm") == "LayerNorm (weight and bias)"
    assert card.params_by_part["embeddings"] == 50 * 32 and card.params_by_part["head"] == 50 * 32


@pytest.mark.parametrize(
    ("new", "heads", "kv", "config"),
    [
        (False, 4, 1, {"num_attention_heads": 4}),  # falcon-7b: multi-query
        (True, 8, 2, {"num_attention_heads": 8, "num_kv_heads": 2, "new_decoder_architecture": True}),
        (True, 8, 2, {"n_head": 8, "n_head_kv": 2}),  # the first Falcon-40B configs' names
    ],
    ids=["7b", "40b", "40b-rw-config"],
)
def test_falcon_config_head_count_settles_heads_and_kv_heads(
    new: bool, heads: int, kv: int, config: dict[str, object], tmp_path: Path
) -> None:
    fx.write_safetensors(tmp_path / "model.safetensors", fx.falcon(hidden=64, heads=heads, kv=kv, new=new))
    (tmp_path / "config.json").write_text(json.dumps(config))
    card = _card(tmp_path / "model.safetensors")
    assert card.family == "falcon"
    assert (_value(card, "heads"), _value(card, "kv_heads"), _value(card, "head_dim")) == (
        heads,
        kv,
        64 // heads,
    )
    assert card.contradictions == []
    variant = [f.text for f in card.facts if f.topic == "variant"]
    assert variant == (
        ["new decoder architecture: ln_attn and ln_mlp in each block (Falcon-40B/180B)"] if new else []
    )


def test_falcon_config_kv_heads_the_fused_shape_contradicts_are_said(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "model.safetensors", fx.falcon(hidden=32, heads=4, kv=1))
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 4, "num_kv_heads": 2}))
    card = _card(tmp_path / "model.safetensors")
    assert _value(card, "kv_heads") == 1
    assert card.contradictions == [
        "config says num_kv_heads 2; the shapes give kv_heads 1 "
        "(transformer.h.0.self_attention.query_key_value.weight [48, 32])."
    ]


def test_gpt2_falcon_and_bloom_all_number_blocks_h_n_and_keep_their_families(tmp_path: Path) -> None:
    gpt2 = _card(fx.write_safetensors(tmp_path / "gpt2.safetensors", fx.gpt2()))
    falcon = _card(fx.write_safetensors(tmp_path / "falcon.safetensors", fx.falcon()))
    bloom = _card(fx.write_safetensors(tmp_path / "bloom.safetensors", fx.bloom(layers=2, hidden=32)))
    assert (gpt2.family, falcon.family, bloom.family) == ("gpt2", "falcon", "bloom")
    assert bloom.label == "decoder-only transformer (BLOOM-style)"
    assert "transformer.word_embeddings_layernorm.weight [32]" in bloom.evidence
    assert (_value(bloom, "layers"), _value(bloom, "hidden"), _value(bloom, "intermediate")) == (2, 32, 128)
    kv = bloom.dimension("kv_heads")
    assert kv is not None and kv.note.startswith("as many KV heads as query heads")
    assert _fact(bloom, "tied_embeddings").startswith("no output head stored")


def test_phi2_is_phi_and_opt_stays_opt(tmp_path: Path) -> None:
    """Both have ``self_attn.q_proj`` and an ``fc1``/``fc2`` MLP: Phi names its output projection
    ``dense`` and keeps fc1 under ``mlp.``; OPT has ``out_proj``, fc1 in the block, ``embed_positions``."""
    card = _card(fx.write_safetensors(tmp_path / "phi.safetensors", fx.phi(layers=3, hidden=32, inter=128)))
    assert card.family == "phi" and card.label == "decoder-only transformer (Phi-1/1.5/2-style)"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (3, 32, 128)
    assert _value(card, "vocab") == 50
    assert card.evidence == [
        "3 blocks: model.layers.0 … model.layers.2",
        "model.layers.0.self_attn.q_proj.weight [32, 32]",
        "model.layers.0.self_attn.dense.weight [32, 32]",
        "model.layers.0.mlp.fc1.weight [128, 32]",
    ]
    kv = card.dimension("kv_heads")
    assert kv is not None and kv.note.startswith("as many KV heads as query heads")
    assert _fact(card, "norm") == "LayerNorm (weight and bias)"
    assert card.params_by_part["head"] == 50 * 32 + 50  # lm_head and its bias
    opt = _card(fx.write_safetensors(tmp_path / "opt.safetensors", fx.opt()))
    assert opt.family == "opt"


def test_phi_qk_layernorm_of_head_dim_determines_the_heads(tmp_path: Path) -> None:
    """PhiConfig's qk_layernorm adds q_layernorm/k_layernorm of [head_dim] to each block."""
    norms = {
        f"model.layers.{i}.self_attn.{n}_layernorm.{w}": (8,)
        for i in range(2)
        for n in "qk"
        for w in ("weight", "bias")
    }
    card = _card(fx.write_safetensors(tmp_path / "phi.safetensors", fx.phi(hidden=32) | norms))
    assert card.family == "phi"
    assert (_value(card, "head_dim"), _value(card, "heads"), _value(card, "kv_heads")) == (8, 4, 4)


def test_phi3_fused_qkv_and_gate_up_give_the_sizes(tmp_path: Path) -> None:
    shapes = fx.phi3(layers=2, hidden=32, heads=4, kv=2, inter=48)
    card = _card(fx.write_safetensors(tmp_path / "phi3.safetensors", shapes))
    assert card.family == "phi3" and card.label == "decoder-only transformer (Phi-3-style)"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "intermediate")) == (2, 32, 48)
    assert _value(card, "vocab") == 50
    assert "model.layers.0.self_attn.qkv_proj.weight [64, 32]" in card.evidence
    inter = card.dimension("intermediate")
    assert inter is not None and inter.note == "gate_up_proj holds the gate and up projections: 96 rows / 2"
    kv = card.dimension("kv_heads")
    assert kv is not None and kv.value is None and kv.per_kv_head == 2
    assert _fact(card, "attention").startswith("fused q/k/v of 64 rows: 32 for the queries")
    assert _fact(card, "norm").startswith("RMSNorm")
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 4, "num_key_value_heads": 2}))
    card = _card(tmp_path / "phi3.safetensors")
    assert (_value(card, "heads"), _value(card, "kv_heads"), _value(card, "head_dim")) == (4, 2, 8)
    assert card.contradictions == []


@pytest.mark.parametrize(
    ("shapes", "save", "inter", "head", "evidence"),
    [
        (fx.vit_hf(), False, 64, 5 * 32 + 5, ["2 blocks: vit.encoder.layer.0 … vit.encoder.layer.1",
         "vit.embeddings.patch_embeddings.projection.weight [32, 3, 4, 4]",
         "vit.encoder.layer.0.attention.attention.query.weight [32, 32]"]),
        (fx.vit_torchvision(), True, 64, 5 * 32 + 5, [
         "2 blocks: encoder.layers.encoder_layer_0 … encoder.layers.encoder_layer_1",
         "conv_proj.weight [32, 3, 4, 4]",
         "encoder.layers.encoder_layer_0.self_attention.in_proj_weight [96, 32]"]),
        (fx.vit_torchvision(legacy_mlp=True), True, 64, 5 * 32 + 5, None),
        (fx.vit(), False, 128, 5 * 32, ["2 blocks: blocks.0 … blocks.1",
         "patch_embed.proj.weight [32, 3, 4, 4]", "blocks.0.attn.qkv.weight [96, 32]"]),
    ],
    ids=["transformers", "torchvision", "torchvision-before-0.13", "timm"],
)  # fmt: skip
def test_vit_in_each_naming_gives_patches_tokens_and_sizes(
    shapes: fx.Shapes, save: bool, inter: int, head: int, evidence: list[str] | None, tmp_path: Path
) -> None:
    path = (
        _save(tmp_path / "vit.pth", shapes)
        if save
        else fx.write_safetensors(tmp_path / "vit.safetensors", shapes)
    )
    card = _card(path)
    assert card.family == "vit" and card.label == "vision transformer (ViT-style)"
    assert (_value(card, "layers"), _value(card, "hidden"), _value(card, "patch_size")) == (2, 32, 4)
    assert (_value(card, "intermediate"), _value(card, "image_tokens"), _value(card, "classes")) == (
        inter,
        17,
        5,
    )
    if evidence is not None:
        assert card.evidence == evidence
    assert _fact(card, "positions") == "learned absolute, 17 tokens (patches and a class token)"
    assert _fact(card, "norm") == "LayerNorm (weight and bias)"
    kv = card.dimension("kv_heads")
    assert kv is not None and kv.note.startswith("as many KV heads as query heads")
    assert card.params_by_part["head"] == head
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 4}))
    assert _value(_card(path), "heads") == 4


def test_bert_and_transformers_vit_keep_their_families(tmp_path: Path) -> None:
    """BERT's ``encoder.layer.N.attention.self.query`` against ViT's ``attention.attention.query``."""
    bert = _card(fx.write_safetensors(tmp_path / "bert.safetensors", fx.bert()))
    vit = _card(fx.write_safetensors(tmp_path / "vit.safetensors", fx.vit_hf()))
    assert (bert.family, vit.family) == ("bert", "vit")


@pytest.mark.parametrize("extra", [0, 5000], ids=["few", "more-block-0-lines-than-the-scan-reads"])
def test_a_block_0_named_encoder_layer_0_is_found_however_many_keys_hold_a_block_0_mark(
    extra: int, tmp_path: Path
) -> None:
    """torchvision numbers its blocks ``encoder_layer_0``: its anchor is found whether the lines
    holding ``.0.`` (each layer's ``mlp.0``, other keys) are few or more than the card reads one by
    one, and among other keys holding ``_0.``."""
    junk = {f"aux.0.w{i}": (1,) for i in range(extra)} | {f"aux_0.w{i}": (1,) for i in range(extra)}
    card = _card(fx.write_safetensors(tmp_path / "vit.safetensors", junk | fx.vit_torchvision(layers=3)))
    assert card.family == "vit" and _value(card, "layers") == 3
    assert card.evidence[0] == "3 blocks: encoder.layers.encoder_layer_0 … encoder.layers.encoder_layer_2"


def test_diffusion_unet_and_vae(tmp_path: Path) -> None:
    unet = _card(fx.write_safetensors(tmp_path / "unet.safetensors", fx.unet(cross=12)))
    assert unet.family == "unet" and _value(unet, "cross_attention") == 12 and _value(unet, "layers") == 2
    vae = _card(fx.write_safetensors(tmp_path / "vae.safetensors", fx.vae(latent=4)))
    assert vae.family == "vae" and _value(vae, "latent_channels") == 4


def test_peft_lora_adapter_gives_ranks_targets_alpha_and_its_base_family(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "adapter_model.safetensors", fx.peft_lora(layers=2, rank=8))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16}))
    card = _card(tmp_path / "adapter_model.safetensors")
    assert card.lora is not None
    assert card.lora.ranks == {"q_proj": [8], "v_proj": [8]}
    assert card.lora.modules == 4 and card.lora.adapter_only
    assert card.lora.alpha.startswith("16")
    assert [p.prefix for p in card.prefixes] == ["base_model.model."]
    assert card.family == "llama" and _value(card, "layers") == 2
    assert card.label == "LoRA adapter of a decoder-only transformer (LLaMA/Mistral/Qwen-style)"
    assert {f.topic for f in card.facts} == {
        "adapter"
    }  # nothing about positions or ties the file cannot show
    kv = card.dimension("kv_heads")
    assert kv is not None and "4 query heads per KV head" in kv.note  # from lora_B's rows


def test_adapter_config_rank_that_the_shapes_contradict_is_said(tmp_path: Path) -> None:
    fx.write_safetensors(tmp_path / "adapter_model.safetensors", fx.peft_lora(rank=8))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4}))
    card = _card(tmp_path / "adapter_model.safetensors")
    assert card.contradictions == [
        "adapter_config.json says r 4; the lora_A shapes give ranks q_proj 8, v_proj 8."
    ]


def test_dataparallel_and_compile_prefixes_are_named_and_seen_through(tmp_path: Path) -> None:
    shapes = {f"module._orig_mod.{k}": s for k, s in fx.resnet18().items()}
    card = _card(_save(tmp_path / "ddp.pth", shapes))
    assert [(p.prefix, p.strippable) for p in card.prefixes] == [("module.", True), ("_orig_mod.", True)]
    assert card.family == "resnet"
    assert any("strip prefixes" in line for line in card_lines(card))


def test_training_checkpoint_parts(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3)
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
         "epoch": 7, "ema": model.state_dict()},
        tmp_path / "train.pt",
    )  # fmt: skip
    card = _card(tmp_path / "train.pt")
    assert card.model_key == "model" and card.params == 15
    roles = {t.role: t for t in card.training}
    assert roles["optimizer"].text.startswith("AdamW, state for 2 parameters")
    assert roles["scheduler"].text == "StepLR"
    assert roles["epoch"].text == "epoch = 7"
    assert roles["ema"].key == "ema"


@pytest.mark.parametrize("layout", ["hf-sharded", "dcp"])
def test_shard_sets_and_dcp_folders_get_the_same_card(layout: str, tmp_path: Path) -> None:
    state = {k: torch.zeros(s) for k, s in fx.llama(layers=3).items()}
    path = (
        write_hf_set(tmp_path / "set", state)
        if layout == "hf-sharded"
        else write_dcp(tmp_path / "dcp", state)
    )
    (Path(path).parent if layout == "hf-sharded" else Path(path)).joinpath("config.json").write_text(
        json.dumps({"num_attention_heads": 4})
    )
    card = _card(Path(path))
    assert card.family == "llama" and _value(card, "layers") == 3 and _value(card, "heads") == 4
    assert card.params == sum(t.numel() for t in state.values())


@pytest.mark.parametrize("layout", ["pth", "safetensors", "hf-sharded", "dcp"])
def test_the_read_hands_the_card_its_rows_mapped_by_key(layout: str, tmp_path: Path) -> None:
    """The read counts the rows' dtypes as it lists them; the rows by key are made once, on the
    first call (the card's, after the tree is shown), and shared by every later one."""
    state = {k: torch.zeros(s) for k, s in fx.llama(layers=3).items()}
    state["model.norm.weight"] = state["model.norm.weight"].half()
    if layout == "pth":
        torch.save(state, path := tmp_path / "m.pth")
    elif layout == "safetensors":
        path = fx.write_safetensors(tmp_path / "m.safetensors", {k: tuple(v.shape) for k, v in state.items()})
    else:
        path = Path(
            write_hf_set(tmp_path / "set", state)
            if layout == "hf-sharded"
            else write_dcp(tmp_path / "d", state)
        )
    index = peek(path)
    assert index.counted_dtypes is not None
    assert index.keyed_rows is None  # not made before the tree is shown
    rows = list(index.root.tensors())
    by_key = index.tensors_by_key()
    assert list(by_key.items()) == [(n.key, n) for n in rows]
    assert index.tensors_by_key() is by_key
    assert sum(index.counted_dtypes.values()) == len(rows) == len(state)
    if layout != "safetensors":  # the fixture writer stores one dtype
        assert index.counted_dtypes["float16"] == 1
    assert build_model_card(index).family == "llama"


@pytest.mark.parametrize(
    ("family", "key", "shape"),
    [
        ("llama", "model.layers.0.self_attn.q_proj.weight", (64,)),
        ("llama", "model.layers.0.self_attn.k_proj.weight", ()),
        ("llama", "model.embed_tokens.weight", (0,)),
        ("t5", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", (32,)),
        ("resnet", "conv1.weight", (4,)),
        ("vit", "patch_embed.proj.weight", (32, 3)),
        ("gpt2", "transformer.h.0.attn.c_attn.weight", (5,)),
        ("falcon", "transformer.h.0.self_attention.query_key_value.weight", (48,)),
        ("falcon", "transformer.h.0.self_attention.dense.weight", (32,)),
        ("phi3", "model.layers.0.self_attn.o_proj.weight", (32,)),
        ("phi3", "model.layers.0.mlp.gate_up_proj.weight", ()),
        ("vit_hf", "vit.embeddings.position_embeddings", (17,)),
        ("vit_torchvision", "encoder.layers.encoder_layer_0.self_attention.out_proj.weight", (32,)),
    ],
)
def test_a_family_tensor_of_another_rank_gives_a_card_not_a_traceback(
    family: str, key: str, shape: tuple[int, ...], tmp_path: Path
) -> None:
    shapes: fx.Shapes = getattr(fx, "resnet18" if family == "resnet" else family)()
    card = _card(fx.write_safetensors(tmp_path / "odd.safetensors", shapes | {key: shape}))
    assert card_lines(card)[0].startswith("model card: ")


def test_unrecognised_keys_say_so(tmp_path: Path) -> None:
    card = _card(fx.write_safetensors(tmp_path / "x.safetensors", {"alpha": (3,), "beta.gamma": (2, 2)}))
    assert card.family == "unrecognised" and card.evidence == [] and card.dimensions == []


def test_fits_counts_the_stored_weights_against_free_memory(tmp_path: Path) -> None:
    index = peek(fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()))
    memory = [
        DeviceMemory("cpu", 10**9),
        DeviceMemory("cuda:0", 1000, 80 * 10**9, "NVIDIA A100-SXM4-80GB"),
        DeviceMemory("cuda:1", index.total_bytes, 2 * index.total_bytes),
    ]
    card = build_model_card(index, memory=memory)
    assert [(f.device, f.fits) for f in card.fits] == [("cpu", True), ("cuda:0", False), ("cuda:1", True)]
    lines = card_lines(card)
    assert "  · cuda:0 (NVIDIA A100-SXM4-80GB): the weights do not fit in 1000 B free of 74.5 GiB" in lines
    assert "count only the weights" in lines[-1]
    assert card.to_json()["fits"][1] == {
        "device": "cuda:0", "name": "NVIDIA A100-SXM4-80GB", "free_bytes": 1000, "total_bytes": 80 * 10**9,
        "fits": False,
    }  # fmt: skip


def test_read_model_card_puts_this_computers_memory_before_the_engines_devices(tmp_path: Path) -> None:
    index = peek(fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()))
    card = read_model_card(index, [DeviceMemory("cuda:0", 5 * 2**30, 8 * 2**30, "GPU")])
    assert [f.device for f in card.fits] == ["cpu", "cuda:0"]
    assert card.fits[0].free_bytes > 0 and card.fits[1].total_bytes == 8 * 2**30


def _best_of_each(runs: int, *works: Callable[[], object]) -> list[float]:
    """The fastest of ``runs`` runs of each, the runs interleaved so that a busy moment of a shared
    machine falls on all of them alike."""
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for i, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


@pytest.mark.timed
def test_card_of_100000_tensors_costs_about_one_walk_of_the_tree(tmp_path: Path) -> None:
    """The card makes one pass over the tensor rows the read listed (and looks its anchors up by
    name): it costs about what listing the tensors once costs, measured in the same run because the
    machine is shared (idle, both are tens of milliseconds; under load the ratio stays near 1)."""
    layers = 100_000 // 9
    shapes = fx.llama(layers=layers, hidden=2, inter=2, kv=1, vocab=2)
    index = peek(fx.write_safetensors(tmp_path / "big.safetensors", shapes))
    assert index.tensor_count > 100_000
    card = build_model_card(index)
    walk, spent = _best_of_each(7, lambda: list(index.root.tensors()), lambda: build_model_card(index))
    assert card.family == "llama" and _value(card, "layers") == layers
    assert card.params_by_part["blocks"] == layers * (4 + 2 + 2 + 4 + 3 * 4 + 2 * 2)  # q k v o, mlp, norms
    assert spent < 2 * walk, f"card {spent * 1000:.0f} ms, listing the tensors {walk * 1000:.0f} ms"


@pytest.mark.parametrize("junk", ["before", "after"])
def test_the_first_block_0_is_found_when_more_keys_hold_0_than_the_card_reads_one_by_one(
    junk: str, tmp_path: Path
) -> None:
    """5,000 keys holding ``.0.`` before the model's keys (the card then searches each anchor from
    where its reading stopped) or after them (block 0 was read already): the first stack is the one
    the card reads, never a later copy of it."""
    extra = {f"aux.0.w{i}": (1,) for i in range(5000)}
    model = fx.llama(layers=2)
    copy = {f"zzz.{k}": s for k, s in fx.llama(layers=3).items()}
    shapes = (extra | model | copy) if junk == "before" else (model | extra | copy)
    card = _card(fx.write_safetensors(tmp_path / "m.safetensors", shapes))
    assert card.family == "llama" and _value(card, "layers") == 2
    assert card.evidence[:2] == [
        "2 blocks: model.layers.0 … model.layers.1",
        "model.layers.0.self_attn.q_proj.weight [64, 64]",
    ]


def test_a_key_holding_a_newline_never_passes_for_the_keys_on_either_side_of_it(tmp_path: Path) -> None:
    """The card searches the keys joined by newlines: keys that hold one are read as the whole keys
    they are (here a prefix ``x⏎model.``), never as a key made of the text after the newline."""
    shapes = {f"x\n{k}": s for k, s in fx.llama(layers=2).items()}
    card = _card(fx.write_safetensors(tmp_path / "newlines.safetensors", shapes))
    assert card.family == "llama" and _value(card, "layers") == 2
    cited = [e for e in card.evidence if "[" in e]
    assert cited and all(e.split(" [")[0] in shapes for e in cited), card.evidence


@pytest.mark.parametrize(
    ("order", "layers"),
    [((0, 1, 2, 3), 4), ((2, 0, 3, 1), 4), ((0, 1, 3), 2), ((1, 2, 3), 0)],
    ids=["in-order", "out-of-order", "a-gap", "no-block-0"],
)
def test_blocks_are_counted_from_0_until_one_is_missing_in_any_storage_order(
    tmp_path: Path, order: tuple[int, ...], layers: int
) -> None:
    """The count walks the keys' text where blocks are stored in order and looks keys up where
    they are not: either way it is the blocks 0, 1, … present before the first missing one."""
    one = {k.removeprefix("model.layers.0."): s for k, s in fx.llama(layers=1).items() if ".layers.0." in k}
    shapes = {"model.embed_tokens.weight": (100, 64)}
    for i in order:
        shapes |= {f"model.layers.{i}.{name}": shape for name, shape in one.items()}
    torch.save({k: torch.zeros(s) for k, s in shapes.items()}, tmp_path / "m.pth")  # keeps the order
    index = peek(tmp_path / "m.pth")
    assert [n.key for n in index.tensor_rows()] == list(shapes)
    card = build_model_card(index)
    if layers:
        assert card.family == "llama" and _value(card, "layers") == layers
    else:
        assert card.family != "llama"
