"""Tiny checkpoints with each family's published key names and shape layout (transformers' LLaMA,
GPT-2, BERT, T5, Falcon, Phi, Phi-3 and ViT naming, torchvision's ResNet and ViT, timm's ViT,
diffusers' UNet and VAE, a PEFT LoRA adapter), written from those layouts by hand: transformers,
torchvision and peft are not installed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

Shapes = dict[str, tuple[int, ...]]


def write_safetensors(path: Path, shapes: Shapes, dtype: str = "F32") -> Path:
    """A safetensors file of zeros with these keys and shapes (stdlib only)."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[dtype]
    header: dict[str, object] = {}
    offset = 0
    for key, shape in shapes.items():
        n = size
        for d in shape:
            n *= d
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


def llama(layers: int = 2, hidden: int = 64, inter: int = 128, vocab: int = 100, kv: int = 16) -> Shapes:
    """LlamaForCausalLM: ``model.layers.N.self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``."""
    shapes: Shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"model.layers.{i}."
        shapes |= {
            b + "self_attn.q_proj.weight": (hidden, hidden),
            b + "self_attn.k_proj.weight": (kv, hidden),
            b + "self_attn.v_proj.weight": (kv, hidden),
            b + "self_attn.o_proj.weight": (hidden, hidden),
            b + "mlp.gate_proj.weight": (inter, hidden),
            b + "mlp.up_proj.weight": (inter, hidden),
            b + "mlp.down_proj.weight": (hidden, inter),
            b + "input_layernorm.weight": (hidden,),
            b + "post_attention_layernorm.weight": (hidden,),
        }
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def gpt2(layers: int = 2, hidden: int = 32, vocab: int = 50, positions: int = 16) -> Shapes:
    """GPT2LMHeadModel: ``transformer.h.N`` with Conv1D weights stored [in, out]."""
    shapes: Shapes = {
        "transformer.wte.weight": (vocab, hidden),
        "transformer.wpe.weight": (positions, hidden),
    }
    for i in range(layers):
        b = f"transformer.h.{i}."
        shapes |= {
            b + "ln_1.weight": (hidden,),
            b + "ln_1.bias": (hidden,),
            b + "attn.c_attn.weight": (hidden, 3 * hidden),
            b + "attn.c_attn.bias": (3 * hidden,),
            b + "attn.c_proj.weight": (hidden, hidden),
            b + "attn.c_proj.bias": (hidden,),
            b + "ln_2.weight": (hidden,),
            b + "ln_2.bias": (hidden,),
            b + "mlp.c_fc.weight": (hidden, 4 * hidden),
            b + "mlp.c_fc.bias": (4 * hidden,),
            b + "mlp.c_proj.weight": (4 * hidden, hidden),
            b + "mlp.c_proj.bias": (hidden,),
        }
    return shapes | {"transformer.ln_f.weight": (hidden,), "transformer.ln_f.bias": (hidden,)}


def bert(layers: int = 3, hidden: int = 32, inter: int = 64, vocab: int = 60, positions: int = 24) -> Shapes:
    """BertForSequenceClassification: ``bert.embeddings.*``, ``bert.encoder.layer.N.attention.self.*``."""
    e = "bert.embeddings."
    shapes: Shapes = {
        e + "word_embeddings.weight": (vocab, hidden),
        e + "position_embeddings.weight": (positions, hidden),
        e + "token_type_embeddings.weight": (2, hidden),
        e + "LayerNorm.weight": (hidden,),
        e + "LayerNorm.bias": (hidden,),
    }
    for i in range(layers):
        b = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes |= {
                b + f"attention.self.{name}.weight": (hidden, hidden),
                b + f"attention.self.{name}.bias": (hidden,),
            }
        shapes |= {
            b + "attention.output.dense.weight": (hidden, hidden),
            b + "attention.output.LayerNorm.weight": (hidden,),
            b + "attention.output.LayerNorm.bias": (hidden,),
            b + "intermediate.dense.weight": (inter, hidden),
            b + "intermediate.dense.bias": (inter,),
            b + "output.dense.weight": (hidden, inter),
            b + "output.LayerNorm.weight": (hidden,),
            b + "output.LayerNorm.bias": (hidden,),
        }
    return shapes | {"bert.pooler.dense.weight": (hidden, hidden), "classifier.weight": (2, hidden)}


def t5(
    layers: int = 2, d_model: int = 32, heads: int = 4, d_kv: int = 8, d_ff: int = 64, vocab: int = 40
) -> Shapes:
    """T5ForConditionalGeneration: ``encoder.block.N.layer.0.SelfAttention.{q,k,v,o}``, relative bias."""
    inner = heads * d_kv
    shapes: Shapes = {"shared.weight": (vocab, d_model)}
    for side in ("encoder", "decoder"):
        for i in range(layers):
            b = f"{side}.block.{i}.layer."
            for n in "qkv":
                shapes[b + f"0.SelfAttention.{n}.weight"] = (inner, d_model)
            shapes[b + "0.SelfAttention.o.weight"] = (d_model, inner)
            if i == 0:
                shapes[b + "0.SelfAttention.relative_attention_bias.weight"] = (32, heads)
            shapes[b + "0.layer_norm.weight"] = (d_model,)
            ff = "1"
            if side == "decoder":
                for n in "qkv":
                    shapes[b + f"1.EncDecAttention.{n}.weight"] = (inner, d_model)
                shapes[b + "1.layer_norm.weight"] = (d_model,)
                ff = "2"
            shapes[b + f"{ff}.DenseReluDense.wi.weight"] = (d_ff, d_model)
            shapes[b + f"{ff}.DenseReluDense.wo.weight"] = (d_model, d_ff)
            shapes[b + f"{ff}.layer_norm.weight"] = (d_model,)
        shapes[f"{side}.final_layer_norm.weight"] = (d_model,)
    return shapes | {"lm_head.weight": (vocab, d_model)}


def resnet18(width: int = 4, classes: int = 10) -> Shapes:
    """torchvision resnet18, tiny: ``conv1``, ``bn1``, ``layer1`` … ``layer4`` of basic blocks, ``fc``."""

    def bn(name: str, c: int) -> Shapes:
        return {f"{name}.{p}": (c,) for p in ("weight", "bias", "running_mean", "running_var")} | {
            f"{name}.num_batches_tracked": ()
        }

    shapes: Shapes = {"conv1.weight": (width, 3, 7, 7)} | bn("bn1", width)
    c_in = width
    for stage in range(1, 5):
        c = width * 2 ** (stage - 1)
        for block in range(2):
            b = f"layer{stage}.{block}."
            shapes |= {b + "conv1.weight": (c, c_in if block == 0 else c, 3, 3)} | bn(b + "bn1", c)
            shapes |= {b + "conv2.weight": (c, c, 3, 3)} | bn(b + "bn2", c)
            if block == 0 and stage > 1:
                shapes |= {b + "downsample.0.weight": (c, c_in, 1, 1)} | bn(b + "downsample.1", c)
        c_in = c
    return shapes | {"fc.weight": (classes, c_in), "fc.bias": (classes,)}


def vit(layers: int = 2, dim: int = 32, patch: int = 4, tokens: int = 17, classes: int = 5) -> Shapes:
    """timm VisionTransformer: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.attn.qkv``."""
    shapes: Shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, tokens, dim),
        "patch_embed.proj.weight": (dim, 3, patch, patch),
        "patch_embed.proj.bias": (dim,),
    }
    for i in range(layers):
        b = f"blocks.{i}."
        shapes |= {
            b + "norm1.weight": (dim,),
            b + "norm1.bias": (dim,),
            b + "attn.qkv.weight": (3 * dim, dim),
            b + "attn.proj.weight": (dim, dim),
            b + "norm2.weight": (dim,),
            b + "norm2.bias": (dim,),
            b + "mlp.fc1.weight": (4 * dim, dim),
            b + "mlp.fc2.weight": (dim, 4 * dim),
        }
    return shapes | {"norm.weight": (dim,), "norm.bias": (dim,), "head.weight": (classes, dim)}


def unet(widths: tuple[int, ...] = (8, 16), cross: int = 12) -> Shapes:
    """diffusers UNet2DConditionModel: ``conv_in``, ``time_embedding``, ``down_blocks.N.resnets.M``."""
    shapes: Shapes = {
        "conv_in.weight": (widths[0], 4, 3, 3),
        "time_embedding.linear_1.weight": (32, widths[0]),
    }
    for i, w in enumerate(widths):
        shapes[f"down_blocks.{i}.resnets.0.conv1.weight"] = (w, w, 3, 3)
        t = f"down_blocks.{i}.attentions.0.transformer_blocks.0.attn2."
        shapes[t + "to_k.weight"] = (w, cross)
    shapes["mid_block.resnets.0.conv1.weight"] = (widths[-1], widths[-1], 3, 3)
    shapes["up_blocks.0.resnets.0.conv1.weight"] = (widths[-1], widths[-1], 3, 3)
    return shapes | {"conv_out.weight": (4, widths[0], 3, 3)}


def vae(latent: int = 4) -> Shapes:
    """diffusers AutoencoderKL: ``encoder.down_blocks``, ``decoder.conv_in`` from the latent."""
    return {
        "encoder.conv_in.weight": (8, 3, 3, 3),
        "encoder.down_blocks.0.resnets.0.conv1.weight": (8, 8, 3, 3),
        "encoder.down_blocks.1.resnets.0.conv1.weight": (16, 8, 3, 3),
        "encoder.conv_out.weight": (2 * latent, 16, 3, 3),
        "quant_conv.weight": (2 * latent, 2 * latent, 1, 1),
        "post_quant_conv.weight": (latent, latent, 1, 1),
        "decoder.conv_in.weight": (16, latent, 3, 3),
        "decoder.up_blocks.0.resnets.0.conv1.weight": (16, 16, 3, 3),
    }


def peft_lora(layers: int = 2, hidden: int = 64, kv: int = 16, rank: int = 8) -> Shapes:
    """A PEFT LoRA adapter of a LLaMA-style model on q_proj and v_proj (``adapter_model.safetensors``)."""
    shapes: Shapes = {}
    for i in range(layers):
        b = f"base_model.model.model.layers.{i}.self_attn."
        shapes |= {
            b + "q_proj.lora_A.weight": (rank, hidden),
            b + "q_proj.lora_B.weight": (hidden, rank),
            b + "v_proj.lora_A.weight": (rank, hidden),
            b + "v_proj.lora_B.weight": (kv, rank),
        }
    return shapes


def mixtral(
    layers: int = 2, hidden: int = 32, inter: int = 48, experts: int = 4, kv: int = 8, vocab: int = 50
) -> Shapes:
    """MixtralForCausalLM: LLaMA's attention, and ``block_sparse_moe`` with a router ``gate``
    [experts, hidden] and ``experts.E.w1/w3`` [inter, hidden], ``w2`` [hidden, inter]."""
    shapes: Shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"model.layers.{i}."
        shapes |= {
            b + "self_attn.q_proj.weight": (hidden, hidden),
            b + "self_attn.k_proj.weight": (kv, hidden),
            b + "self_attn.v_proj.weight": (kv, hidden),
            b + "self_attn.o_proj.weight": (hidden, hidden),
            b + "block_sparse_moe.gate.weight": (experts, hidden),
        }
        for e in range(experts):
            m = b + f"block_sparse_moe.experts.{e}."
            shapes |= {
                m + "w1.weight": (inter, hidden),
                m + "w2.weight": (hidden, inter),
                m + "w3.weight": (inter, hidden),
            }
        shapes |= {b + "input_layernorm.weight": (hidden,), b + "post_attention_layernorm.weight": (hidden,)}
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def qwen2_moe(
    layers: int = 2, hidden: int = 32, inter: int = 16, experts: int = 6, vocab: int = 50
) -> Shapes:
    """Qwen2MoeForCausalLM: ``mlp.gate`` router [experts, hidden], ``mlp.experts.E.{gate,up,down}_proj``."""
    shapes: Shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[b + f"self_attn.{n}.weight"] = (hidden, hidden)
        shapes[b + "mlp.gate.weight"] = (experts, hidden)
        for e in range(experts):
            m = b + f"mlp.experts.{e}."
            shapes |= {m + "gate_proj.weight": (inter, hidden), m + "up_proj.weight": (inter, hidden),
                       m + "down_proj.weight": (hidden, inter)}  # fmt: skip
        shapes[b + "input_layernorm.weight"] = (hidden,)
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def opt(layers: int = 2, hidden: int = 32, ffn: int = 128, vocab: int = 50, positions: int = 16) -> Shapes:
    """OPTForCausalLM: ``model.decoder.layers.N.self_attn.{q,k,v,out}_proj`` with biases, ``fc1``/``fc2``,
    learned positions ``embed_positions`` [positions + 2, hidden] (OPT offsets them by 2)."""
    d = "model.decoder."
    shapes: Shapes = {
        d + "embed_tokens.weight": (vocab, hidden),
        d + "embed_positions.weight": (positions + 2, hidden),
    }
    for i in range(layers):
        b = f"{d}layers.{i}."
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
            shapes |= {b + f"self_attn.{n}.weight": (hidden, hidden), b + f"self_attn.{n}.bias": (hidden,)}
        shapes |= {
            b + "self_attn_layer_norm.weight": (hidden,), b + "self_attn_layer_norm.bias": (hidden,),
            b + "fc1.weight": (ffn, hidden), b + "fc1.bias": (ffn,),
            b + "fc2.weight": (hidden, ffn), b + "fc2.bias": (hidden,),
            b + "final_layer_norm.weight": (hidden,), b + "final_layer_norm.bias": (hidden,),
        }  # fmt: skip
    return shapes | {d + "final_layer_norm.weight": (hidden,), d + "final_layer_norm.bias": (hidden,),
                     "lm_head.weight": (vocab, hidden)}  # fmt: skip


def falcon(
    layers: int = 2, hidden: int = 32, heads: int = 4, kv: int = 1, new: bool = False, vocab: int = 50
) -> Shapes:
    """FalconForCausalLM: ``transformer.h.N.self_attention.query_key_value`` fused
    [(heads + 2 × kv) × head_dim, hidden] (falcon-7b: one KV head; ``new`` the grouped layout of
    40b/180b, with ``ln_attn``/``ln_mlp``), ``dense``, ``mlp.dense_h_to_4h``/``dense_4h_to_h``."""
    head_dim = hidden // heads
    norms = ("ln_attn", "ln_mlp") if new else ("input_layernorm",)
    shapes: Shapes = {"transformer.word_embeddings.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"transformer.h.{i}."
        shapes |= {
            b + "self_attention.query_key_value.weight": ((heads + 2 * kv) * head_dim, hidden),
            b + "self_attention.dense.weight": (hidden, hidden),
            b + "mlp.dense_h_to_4h.weight": (4 * hidden, hidden),
            b + "mlp.dense_4h_to_h.weight": (hidden, 4 * hidden),
        }
        for n in norms:
            shapes |= {b + f"{n}.weight": (hidden,), b + f"{n}.bias": (hidden,)}
    return shapes | {"transformer.ln_f.weight": (hidden,), "transformer.ln_f.bias": (hidden,),
                     "lm_head.weight": (vocab, hidden)}  # fmt: skip


def phi(layers: int = 2, hidden: int = 32, inter: int = 128, vocab: int = 50) -> Shapes:
    """PhiForCausalLM (Phi-1, 1.5, 2): ``self_attn.{q,k,v}_proj`` and ``dense`` with biases,
    ``mlp.fc1``/``fc2``, one LayerNorm ``input_layernorm`` a block, ``final_layernorm``, ``lm_head``."""
    shapes: Shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "dense"):
            shapes |= {b + f"self_attn.{n}.weight": (hidden, hidden), b + f"self_attn.{n}.bias": (hidden,)}
        shapes |= {
            b + "mlp.fc1.weight": (inter, hidden), b + "mlp.fc1.bias": (inter,),
            b + "mlp.fc2.weight": (hidden, inter), b + "mlp.fc2.bias": (hidden,),
            b + "input_layernorm.weight": (hidden,), b + "input_layernorm.bias": (hidden,),
        }  # fmt: skip
    return shapes | {"model.final_layernorm.weight": (hidden,), "model.final_layernorm.bias": (hidden,),
                     "lm_head.weight": (vocab, hidden), "lm_head.bias": (vocab,)}  # fmt: skip


def phi3(
    layers: int = 2, hidden: int = 32, heads: int = 4, kv: int = 2, inter: int = 48, vocab: int = 50
) -> Shapes:
    """Phi3ForCausalLM: ``self_attn.qkv_proj`` fused [(heads + 2 × kv) × head_dim, hidden], ``o_proj``,
    ``mlp.gate_up_proj`` fused [2 × inter, hidden], ``down_proj``, RMSNorms (a weight, no bias)."""
    head_dim = hidden // heads
    shapes: Shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        b = f"model.layers.{i}."
        shapes |= {
            b + "self_attn.o_proj.weight": (hidden, heads * head_dim),
            b + "self_attn.qkv_proj.weight": ((heads + 2 * kv) * head_dim, hidden),
            b + "mlp.gate_up_proj.weight": (2 * inter, hidden),
            b + "mlp.down_proj.weight": (hidden, inter),
            b + "input_layernorm.weight": (hidden,),
            b + "post_attention_layernorm.weight": (hidden,),
        }
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def vit_hf(
    layers: int = 2, dim: int = 32, inter: int = 64, patch: int = 4, tokens: int = 17, classes: int = 5
) -> Shapes:
    """transformers' ViTForImageClassification: ``vit.embeddings.patch_embeddings.projection``,
    ``cls_token``, ``position_embeddings``, ``vit.encoder.layer.N.attention.attention.{query,key,value}``."""
    e = "vit.embeddings."
    shapes: Shapes = {
        e + "cls_token": (1, 1, dim),
        e + "position_embeddings": (1, tokens, dim),
        e + "patch_embeddings.projection.weight": (dim, 3, patch, patch),
        e + "patch_embeddings.projection.bias": (dim,),
    }
    for i in range(layers):
        b = f"vit.encoder.layer.{i}."
        for n in ("attention.attention.query", "attention.attention.key", "attention.attention.value",
                  "attention.output.dense"):  # fmt: skip
            shapes |= {b + f"{n}.weight": (dim, dim), b + f"{n}.bias": (dim,)}
        shapes |= {
            b + "intermediate.dense.weight": (inter, dim), b + "intermediate.dense.bias": (inter,),
            b + "output.dense.weight": (dim, inter), b + "output.dense.bias": (dim,),
            b + "layernorm_before.weight": (dim,), b + "layernorm_before.bias": (dim,),
            b + "layernorm_after.weight": (dim,), b + "layernorm_after.bias": (dim,),
        }  # fmt: skip
    return shapes | {"vit.layernorm.weight": (dim,), "vit.layernorm.bias": (dim,),
                     "classifier.weight": (classes, dim), "classifier.bias": (classes,)}  # fmt: skip


def vit_torchvision(
    layers: int = 2, dim: int = 32, mlp: int = 64, patch: int = 4, tokens: int = 17, classes: int = 5,
    legacy_mlp: bool = False,
) -> Shapes:  # fmt: skip
    """torchvision's vit_b_16 layout: ``conv_proj``, ``class_token``, ``encoder.pos_embedding``,
    ``encoder.layers.encoder_layer_N.self_attention.in_proj_weight`` [3 × dim, dim], ``mlp.0``/``mlp.3``
    (``mlp.linear_1``/``linear_2`` in files saved before torchvision 0.13), ``heads.head``."""
    shapes: Shapes = {
        "class_token": (1, 1, dim),
        "conv_proj.weight": (dim, 3, patch, patch),
        "conv_proj.bias": (dim,),
        "encoder.pos_embedding": (1, tokens, dim),
    }
    up, down = ("linear_1", "linear_2") if legacy_mlp else ("0", "3")
    for i in range(layers):
        b = f"encoder.layers.encoder_layer_{i}."
        shapes |= {
            b + "ln_1.weight": (dim,), b + "ln_1.bias": (dim,),
            b + "self_attention.in_proj_weight": (3 * dim, dim),
            b + "self_attention.in_proj_bias": (3 * dim,),
            b + "self_attention.out_proj.weight": (dim, dim), b + "self_attention.out_proj.bias": (dim,),
            b + "ln_2.weight": (dim,), b + "ln_2.bias": (dim,),
            b + f"mlp.{up}.weight": (mlp, dim), b + f"mlp.{up}.bias": (mlp,),
            b + f"mlp.{down}.weight": (dim, mlp), b + f"mlp.{down}.bias": (dim,),
        }  # fmt: skip
    return shapes | {"encoder.ln.weight": (dim,), "encoder.ln.bias": (dim,),
                     "heads.head.weight": (classes, dim), "heads.head.bias": (classes,)}  # fmt: skip


def bloom(layers: int = 2, hidden: int = 32, vocab: int = 50) -> Shapes:
    """BloomForCausalLM, whose names Falcon's follow: ``query_key_value`` [3 × hidden, hidden] with a
    bias, and a LayerNorm ``word_embeddings_layernorm`` after the embedding, which Falcon has not."""
    shapes: Shapes = {
        "transformer.word_embeddings.weight": (vocab, hidden),
        "transformer.word_embeddings_layernorm.weight": (hidden,),
        "transformer.word_embeddings_layernorm.bias": (hidden,),
    }
    for i in range(layers):
        b = f"transformer.h.{i}."
        shapes |= {
            b + "input_layernorm.weight": (hidden,), b + "input_layernorm.bias": (hidden,),
            b + "self_attention.query_key_value.weight": (3 * hidden, hidden),
            b + "self_attention.query_key_value.bias": (3 * hidden,),
            b + "self_attention.dense.weight": (hidden, hidden), b + "self_attention.dense.bias": (hidden,),
            b + "post_attention_layernorm.weight": (hidden,), b + "post_attention_layernorm.bias": (hidden,),
            b + "mlp.dense_h_to_4h.weight": (4 * hidden, hidden), b + "mlp.dense_h_to_4h.bias": (4 * hidden,),
            b + "mlp.dense_4h_to_h.weight": (hidden, 4 * hidden), b + "mlp.dense_4h_to_h.bias": (hidden,),
        }  # fmt: skip
    return shapes | {"transformer.ln_f.weight": (hidden,), "transformer.ln_f.bias": (hidden,)}
