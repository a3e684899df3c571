"""Rule sets that tell a model family from its state_dict's key names and shapes, one per family.

Each rule looks for its family's anchor key in block 0 (``layers.0.self_attn.q_proj.weight``),
then reads the dimensions from named tensors' shapes, every claim with the keys it rests on. A rule
never guesses: what the shapes do not determine is said to be undetermined. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .formatting import format_shape
from .model import Node, TensorInfo

#: How many blocks a stack may hold before counting stops (a bound on probing, far above real models).
MAX_BLOCKS = 100_000


@dataclass(frozen=True)
class Dimension:
    """One size of the model: its value where the shapes (or the config) determine it, and why."""

    name: str  # "layers", "hidden", "intermediate", "heads", "kv_heads", "vocab", "head_dim" …
    value: int | None  # None: not determined
    evidence: tuple[str, ...]  # "model.layers.0.self_attn.q_proj.weight [4096, 4096]" …
    note: str = ""  # what is and is not determined, or where the value came from
    config_keys: tuple[str, ...] = ()  # the HF config.json names of the same size
    per_kv_head: int | None = None  # kv_heads: query heads per KV head, where the q/k shapes give it


@dataclass(frozen=True)
class Fact:
    """A statement about the model (norm kind, positions, tied embeddings) and its evidence."""

    topic: str  # "norm", "positions", "tied_embeddings", "attention", "variant"
    text: str
    evidence: tuple[str, ...] = ()


@dataclass
class Detection:
    """What one family's rule found: the family, its evidence, sizes and facts, and where its parts are."""

    #: a stable id: "llama", "opt", "phi", "phi3", "falcon", "bloom", "gpt2", "gpt-neox", "bert", "t5",
    #: "resnet", "vit", "unet", "vae", "cnn"
    family: str
    label: str
    evidence: list[str] = field(default_factory=list)
    dimensions: list[Dimension] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    block_prefixes: tuple[str, ...] = ()  # full key prefixes of the repeated blocks
    embedding_keys: tuple[str, ...] = ()
    head_keys: tuple[str, ...] = ()


#: The block-0 key endings the rules anchor on (``layers.0.self_attn.q_proj.weight``), each
#: registered by ``anchor_name``: the card's one pass over the tensors notes the first key ending
#: in each, so no rule scans the keys. Each holds ``BLOCK_0``, which the pass looks for first, or
#: names its block with its number (``NAMED_BLOCK_0``), which the pass looks for by the whole name.
ANCHORS: list[str] = []
BLOCK_0 = ".0."  # the first of a module list: layers.0.
NAMED_BLOCK_0 = "_0."  # a block named with its number, as torchvision's ViT names them: encoder_layer_0.


def anchor_name(name: str) -> str:
    """Register ``name`` (a name inside block 0) as a key ending the card's pass looks for."""
    if BLOCK_0 not in name and NAMED_BLOCK_0 not in name:
        raise ValueError(f"an anchor names a tensor of block 0: {name}")
    ANCHORS.append(name)
    return name


def anchored(key: str, name: str) -> bool:
    """``key`` ends in the whole name ``name`` (``layers.0…`` at the start or after a dot)."""
    return key.endswith(name) and (len(key) == len(name) or key[-len(name) - 1] == ".")


class ModelKeys:
    """The model part's tensor rows by full key, with ``base`` the prefix every rule's names extend
    (the part's key and any wrapper prefix), ``anchors`` the first key ending in each ``ANCHORS``
    name (noted by the card's one pass over the rows), ``added`` the modules an adapter adapts
    that the file does not hold (with the shape they adapt), and ``lines`` the keys in display
    order, each between newlines, where no key holds one (else None)."""

    def __init__(
        self,
        nodes: Mapping[str, Node],
        base: str,
        config: Mapping[str, object],
        anchors: Mapping[str, str],
        added: Mapping[str, TensorInfo] | None = None,
        lines: str | None = None,
    ) -> None:
        self.nodes = nodes
        self.base = base
        self.config = config
        self.anchors = anchors
        self.added: Mapping[str, TensorInfo] = added or {}
        self.lines = lines

    def lookup(self, key: str) -> TensorInfo | None:
        """A full key's tensor, or None."""
        node = self.nodes.get(key)
        return node.tensor if node is not None else self.added.get(key)

    def shape(self, name: str) -> tuple[int, ...] | None:
        info = self.lookup(self.base + name)
        return info.shape if info is not None else None

    def has(self, name: str) -> bool:
        key = self.base + name
        return key in self.nodes or key in self.added

    def cite(self, name: str) -> str:
        """``key [shape]`` of a tensor, as evidence."""
        info = self.lookup(self.base + name)
        if info is None:
            raise KeyError(name)
        return f"{self.base}{name} {format_shape(info.shape)}"

    def anchor(self, name: str) -> str | None:
        """The prefix (after ``base``) of the first key ending in the anchor ``name``, or None."""
        key = self.anchors.get(name)
        if key is None or not key.startswith(self.base):
            return None
        return key[len(self.base) : len(key) - len(name)]

    def count(self, prefix: str, suffix: str) -> int:
        """Blocks ``prefix{i}.suffix`` for i = 0, 1, … until one is missing. Blocks are stored in
        order, so each is looked for in ``lines`` a little past the one before (a walk through the
        text, not 10^4 lookups of keys spread over memory); one found out of order, or not in the
        text (an adapted module), is looked up by key, and the rest are too."""
        nodes, added, start, lines = self.nodes, self.added, self.base + prefix, self.lines
        at = n = 0
        while n < MAX_BLOCKS:
            key = f"{start}{n}.{suffix}"
            if lines is not None:
                found = lines.find(f"\n{key}\n", at)
                if found >= 0:
                    at, n = found + 1, n + 1
                    continue
                lines = None
            if key not in nodes and key not in added:
                return n
            n += 1
        return n

    def kernels(self) -> list[str]:
        """Keys of the 4-D ``…weight`` tensors (convolution kernels), in order."""
        return [
            k
            for k, n in self.nodes.items()
            if n.tensor is not None and len(n.tensor.shape) == 4 and k.endswith("weight")
        ]

    def same_storage(self, a: str, b: str) -> bool:
        """Two tensors that view one storage at one offset (tied weights saved once)."""
        x, y = self.lookup(self.base + a), self.lookup(self.base + b)
        return (
            x is not None
            and y is not None
            and bool(x.storage_key)
            and (x.storage_key, x.storage_offset, x.shape) == (y.storage_key, y.storage_offset, y.shape)
        )

    def config_int(self, *names: str) -> tuple[str, int] | None:
        for name in names:
            value = self.config.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return name, value
        return None


# -- shared readings -------------------------------------------------------------------------------


def _blocks(keys: ModelKeys, prefix: str, suffix: str, what: str = "blocks") -> Dimension:
    n = keys.count(prefix, suffix)
    first, last = f"{keys.base}{prefix}0", f"{keys.base}{prefix}{n - 1}"
    return Dimension(
        "layers", n, (f"{n} {what}: {first} … {last}" if n > 1 else f"1 {what}: {first}",),
        config_keys=("num_hidden_layers", "n_layer", "num_layers"),
    )  # fmt: skip


def _norm(keys: ModelKeys, weight: str) -> Fact | None:
    """LayerNorm stores a bias beside its weight; RMSNorm (and T5's LayerNorm) stores none."""
    if not keys.has(weight):
        return None
    bias = weight.removesuffix("weight") + "bias"
    if keys.has(bias):
        return Fact("norm", "LayerNorm (weight and bias)", (keys.cite(weight), keys.cite(bias)))
    return Fact("norm", "RMSNorm-style (a weight, no bias)", (keys.cite(weight),))


def _tied(keys: ModelKeys, embedding: str, head: str) -> Fact | None:
    """Whether the output head shares the input embedding, from the static read only."""
    if not keys.has(embedding):
        return None
    if not keys.has(head):
        return Fact(
            "tied_embeddings",
            "no output head stored: tied to the input embedding, or the file holds no head",
            (keys.cite(embedding),),
        )
    if keys.same_storage(embedding, head):
        return Fact("tied_embeddings", "tied: the head and the embedding are one storage",
                    (keys.cite(embedding), keys.cite(head)))  # fmt: skip
    if keys.shape(embedding) == keys.shape(head):
        return Fact(
            "tied_embeddings",
            "separate storages of equal shape: whether their bytes are equal needs reading the data",
            (keys.cite(embedding), keys.cite(head)),
        )
    return Fact("tied_embeddings", "not tied (shapes differ)", (keys.cite(embedding), keys.cite(head)))


def _size(name: str, value: int, cite: str, config_keys: tuple[str, ...] = (), note: str = "") -> Dimension:
    return Dimension(name, value, (cite,), note, config_keys)


_HIDDEN = ("hidden_size", "n_embd", "d_model")
_INTERMEDIATE = ("intermediate_size", "n_inner", "d_ff")
_VOCAB = ("vocab_size",)
_HEADS = ("num_attention_heads", "n_head", "num_heads")
_KV_HEADS = ("num_key_value_heads",)


def _heads(keys: ModelKeys, q: str, k: str | None, head_dim_key: str | None) -> list[Dimension]:
    """Query and KV heads from q/k projections (see ``_head_counts``)."""
    k_out = (keys.shape(k) or (0,))[0] if k is not None else None
    cites = (keys.cite(q),) + ((keys.cite(k),) if k is not None else ())
    return _head_counts(keys, (keys.shape(q) or (0,))[0], k_out, cites, head_dim_key)


def _head_counts(
    keys: ModelKeys, q_out: int, k_width: int | None, cites: tuple[str, ...], head_dim_key: str | None,
    kv_config: tuple[str, ...] = _KV_HEADS,
) -> list[Dimension]:  # fmt: skip
    """Query and KV heads from the queries' and keys' widths (heads × head_dim, kv_heads × head_dim):
    determined by a per-head tensor (a q_norm's [head_dim]) or the config's head_dim / head count;
    otherwise only their ratio is."""
    k_out = k_width if k_width is not None else q_out
    head_dim: int | None = None
    source = ""
    if head_dim_key is not None and keys.has(head_dim_key):
        head_dim = (keys.shape(head_dim_key) or (0,))[0]
        cites += (keys.cite(head_dim_key),)
        source = "the per-head norm's shape"
    elif (found := keys.config_int("head_dim")) is not None:
        head_dim, source = found[1], "config.json head_dim"
    elif (found := keys.config_int(*_HEADS)) is not None and q_out % found[1] == 0:
        head_dim, source = q_out // found[1], f"config.json {found[0]} {found[1]}"
    if head_dim and q_out % head_dim == 0 and k_out % head_dim == 0:
        note = f"head_dim {head_dim} from {source}"
        return [
            Dimension("head_dim", head_dim, cites, note, ("head_dim",)),
            Dimension("heads", q_out // head_dim, cites, note, _HEADS),
            Dimension("kv_heads", k_out // head_dim, cites, note, kv_config, per_kv_head=q_out // k_out),
        ]
    note = f"query projections give heads × head_dim = {q_out:,}; the count is not determined by shapes alone"
    dims = [Dimension("heads", None, cites, note, _HEADS)]
    if k_width is not None and k_out and q_out % k_out == 0:
        ratio = q_out // k_out
        what = (
            "as many KV heads as query heads (multi-head attention)"
            if ratio == 1
            else f"grouped-query attention: {ratio} query heads per KV head"
        )
        note = f"{what}; the count is not determined"
        dims.append(Dimension("kv_heads", None, cites, note, kv_config, per_kv_head=ratio))
    return dims


def _fused_qkv(
    keys: ModelKeys, qkv: str, out_proj: str, head_dim_key: str | None = None,
    kv_config: tuple[str, ...] = _KV_HEADS,
) -> tuple[list[Dimension], Fact | None]:  # fmt: skip
    """A fused q/k/v projection [q + 2 × kv, hidden], read with the output projection, whose input is
    the queries' width (heads × head_dim): the rest is keys and values, and the heads are read as
    ``_head_counts`` reads them. Without the output projection only the sum is known."""
    rows = (keys.shape(qkv) or (0,))[0]
    q_out = (keys.shape(out_proj) or (0, 0))[1] if keys.has(out_proj) else 0
    if not q_out or rows <= q_out or (rows - q_out) % 2:
        note = f"fused q/k/v of {rows:,} rows: the head count is not determined by shapes alone"
        return [Dimension("heads", None, (keys.cite(qkv),), note, _HEADS)], None
    kv = (rows - q_out) // 2
    cites = (keys.cite(qkv), keys.cite(out_proj))
    text = (
        f"fused q/k/v of {rows:,} rows: {q_out:,} for the queries (heads × head_dim, the output "
        f"projection's input) + 2 × {kv:,} for keys and values (kv_heads × head_dim)"
    )
    return _head_counts(keys, q_out, kv, cites, head_dim_key, kv_config), Fact("attention", text, cites)


def _rotary(keys: ModelKeys, inv_freq: str) -> Fact:
    if keys.has(inv_freq):
        n = (keys.shape(inv_freq) or (0,))[0]
        return Fact(
            "positions", f"rotary (inv_freq of {n} → {2 * n} rotary dimensions)", (keys.cite(inv_freq),)
        )
    return Fact("positions", "no positional-embedding tensor (rotary or relative positions store none)")


def _learned_positions(keys: ModelKeys, name: str) -> tuple[Fact, Dimension] | None:
    shape = keys.shape(name)
    if shape is None or len(shape) != 2:
        return None
    cite = keys.cite(name)
    return (
        Fact("positions", f"learned absolute, {shape[0]:,} positions", (cite,)),
        _size("max_positions", shape[0], cite, ("max_position_embeddings", "n_positions")),
    )


def _parent(base: str, inner: str) -> str:
    """The part of ``base`` above ``inner`` (``model.`` → ``''``): where an HF head sits."""
    return base[: -len(inner)] if inner and base.endswith(inner) else base


def _outer(prefix: str) -> str:
    """``prefix`` without its last part (``bert.`` → ``''``): where an HF ``…For…`` model keeps its head."""
    return prefix[: prefix.rstrip(".").rfind(".") + 1] if prefix else ""


# -- the families ------------------------------------------------------------------------------


_LLAMA = anchor_name("layers.0.self_attn.q_proj.weight")


#: Mixture-of-experts layouts of a decoder block: (router, experts' prefix, an expert's first projection).
_MOE = (
    ("block_sparse_moe.gate.weight", "block_sparse_moe.experts.", "w1.weight"),  # Mixtral
    ("mlp.gate.weight", "mlp.experts.", "gate_proj.weight"),  # Qwen2-MoE, DeepSeek, OLMoE
)


def _experts(keys: ModelKeys, block: str) -> tuple[Dimension, Dimension, Fact] | None:
    """A mixture of experts in block 0: the experts counted by key, their intermediate size, and
    the router (one row per expert)."""
    for router, experts, first in _MOE:
        n = keys.count(block + experts, first)
        if not n or not keys.has(block + router):
            continue
        ranged = f"{n} experts: {keys.base}{block}{experts}0 … .{n - 1}"
        cites = (keys.cite(block + router), ranged)
        up = f"{block}{experts}0.{first}"
        return (
            Dimension("experts", n, cites, "experts per layer", ("num_local_experts", "num_experts")),
            _size("intermediate", (keys.shape(up) or (0,))[0], keys.cite(up),
                  ("moe_intermediate_size", *_INTERMEDIATE)),
            Fact("variant", f"mixture of experts: {n} experts per layer, a router picks among them", cites),
        )  # fmt: skip
    return None


def llama(keys: ModelKeys) -> Detection | None:
    """Decoder-only with q/k/v/o projections and a gated MLP (LLaMA, Mistral, Qwen, Gemma …)."""
    p = keys.anchor(_LLAMA)
    if p is None:
        return None
    block = f"{p}layers.0."
    gate = next(
        (f"{block}mlp.{n}.weight" for n in ("gate_proj", "up_proj") if keys.has(f"{block}mlp.{n}.weight")),
        None,
    )
    # k_proj, or v_proj (of the same size) where an adapter adapts only q and v; OPT's fc1 MLP is not LLaMA's
    k = next(
        (
            f"{block}self_attn.{n}.weight"
            for n in ("k_proj", "v_proj")
            if keys.has(f"{block}self_attn.{n}.weight")
        ),
        None,
    )
    if k is None or keys.has(f"{block}fc1.weight"):
        return None
    q = f"{block}self_attn.q_proj.weight"
    q_shape = keys.shape(q) or (0, 0)
    d = Detection("llama", "decoder-only transformer (LLaMA/Mistral/Qwen-style)")
    layers = _blocks(keys, f"{p}layers.", "self_attn.q_proj.weight")
    d.evidence = [layers.evidence[0], keys.cite(q), keys.cite(k)]
    d.dimensions = [layers, _size("hidden", q_shape[1], keys.cite(q), _HIDDEN)]
    if gate is not None:
        d.evidence.append(keys.cite(gate))
        d.dimensions.append(
            _size("intermediate", (keys.shape(gate) or (0,))[0], keys.cite(gate), _INTERMEDIATE)
        )
    else:
        moe = _experts(keys, block)
        if moe is not None:
            d.evidence.append(moe[0].evidence[0])
            d.dimensions += moe[:2]
            d.facts.append(moe[2])
    d.dimensions += _heads(keys, q, k, f"{block}self_attn.q_norm.weight")
    embed, head = f"{p}embed_tokens.weight", f"{_parent(p, 'model.')}lm_head.weight"
    if keys.has(embed):
        d.dimensions.append(_size("vocab", (keys.shape(embed) or (0,))[0], keys.cite(embed), _VOCAB))
        d.embedding_keys = (keys.base + embed,)
    elif keys.has(head):
        d.dimensions.append(_size("vocab", (keys.shape(head) or (0,))[0], keys.cite(head), _VOCAB))
    if keys.has(head):
        d.head_keys = (keys.base + head,)
    if keys.has(f"{block}self_attn.q_proj.bias"):
        d.facts.append(Fact("attention", "q/k/v projections with bias (as Qwen2 has)",
                            (keys.cite(f"{block}self_attn.q_proj.bias"),)))  # fmt: skip
    for fact in (
        _norm(keys, f"{block}input_layernorm.weight"),
        _rotary(keys, f"{block}self_attn.rotary_emb.inv_freq"),
        _tied(keys, embed, head),
    ):
        if fact is not None:
            d.facts.append(fact)
    d.block_prefixes = (keys.base + f"{p}layers.",)
    return d


def opt(keys: ModelKeys) -> Detection | None:
    """OPT: LLaMA's ``layers.N.self_attn.q_proj`` names under ``decoder.``, with biases, an
    ``fc1``/``fc2`` MLP and learned positions ``embed_positions`` offset by 2 rows."""
    p = keys.anchor(_LLAMA)
    if p is None:
        return None
    block = f"{p}layers.0."
    q, fc1 = f"{block}self_attn.q_proj.weight", f"{block}fc1.weight"
    if not keys.has(fc1):
        return None
    q_shape = keys.shape(q) or (0, 0)
    d = Detection("opt", "decoder-only transformer (OPT-style)")
    layers = _blocks(keys, f"{p}layers.", "self_attn.q_proj.weight")
    d.evidence = [layers.evidence[0], keys.cite(q), keys.cite(fc1)]
    d.dimensions = [
        layers,
        _size("hidden", q_shape[1], keys.cite(q), _HIDDEN),
        _size("intermediate", (keys.shape(fc1) or (0,))[0], keys.cite(fc1), ("ffn_dim", *_INTERMEDIATE)),
    ]
    k = f"{block}self_attn.k_proj.weight"
    d.dimensions += _heads(keys, q, k if keys.has(k) else None, None)
    embed, head = f"{p}embed_tokens.weight", f"{_parent(p, 'model.decoder.')}lm_head.weight"
    if keys.has(embed):
        d.dimensions.append(_size("vocab", (keys.shape(embed) or (0,))[0], keys.cite(embed), _VOCAB))
        d.embedding_keys = (keys.base + embed,)
    positions = f"{p}embed_positions.weight"
    shape = keys.shape(positions)
    if shape is not None and len(shape) == 2 and shape[0] > 2:
        cite = keys.cite(positions)
        text = f"learned absolute, {shape[0] - 2:,} positions ({shape[0]:,} rows: OPT's offset of 2)"
        d.facts.append(Fact("positions", text, (cite,)))
        d.dimensions.append(_size("max_positions", shape[0] - 2, cite, ("max_position_embeddings",)))
        d.embedding_keys += (keys.base + positions,)
    if keys.has(head):
        d.head_keys = (keys.base + head,)
    for fact in (_norm(keys, f"{block}self_attn_layer_norm.weight"), _tied(keys, embed, head)):
        if fact is not None:
            d.facts.append(fact)
    d.block_prefixes = (keys.base + f"{p}layers.",)
    return d


def phi(keys: ModelKeys) -> Detection | None:
    """Phi-1/1.5/2: LLaMA's ``layers.N.self_attn.{q,k,v}_proj`` names with biases, an output projection
    ``dense``, an ``mlp.fc1``/``fc2`` MLP and one LayerNorm a block (attention and MLP in parallel)."""
    p = keys.anchor(_LLAMA)
    if p is None:
        return None
    block = f"{p}layers.0."
    q, dense, fc1 = (f"{block}{n}.weight" for n in ("self_attn.q_proj", "self_attn.dense", "mlp.fc1"))
    if not (keys.has(dense) and keys.has(fc1)):
        return None
    d = Detection("phi", "decoder-only transformer (Phi-1/1.5/2-style)")
    layers = _blocks(keys, f"{p}layers.", "self_attn.q_proj.weight")
    d.evidence = [layers.evidence[0], keys.cite(q), keys.cite(dense), keys.cite(fc1)]
    d.dimensions = [
        layers,
        _size("hidden", (keys.shape(q) or (0, 0))[1], keys.cite(q), _HIDDEN),
        _size("intermediate", (keys.shape(fc1) or (0,))[0], keys.cite(fc1), _INTERMEDIATE),
    ]
    k = f"{block}self_attn.k_proj.weight"
    d.dimensions += _heads(keys, q, k if keys.has(k) else None, f"{block}self_attn.q_layernorm.weight")
    _layers_decoder_ends(keys, d, p, block)
    return d


def _layers_decoder_ends(keys: ModelKeys, d: Detection, p: str, block: str) -> None:
    """What a decoder of ``{p}layers.N`` blocks states after its sizes: block 0's norm and rotary
    facts, its vocabulary, embedding and head (``_decoder_ends``), and its stack of blocks."""
    for fact in (
        _norm(keys, f"{block}input_layernorm.weight"),
        _rotary(keys, f"{block}self_attn.rotary_emb.inv_freq"),
    ):
        if fact is not None:
            d.facts.append(fact)
    _decoder_ends(keys, d, f"{p}embed_tokens.weight", f"{_parent(p, 'model.')}lm_head.weight")
    d.block_prefixes = (keys.base + f"{p}layers.",)


def _decoder_ends(keys: ModelKeys, d: Detection, embed: str, head: str) -> None:
    """A decoder's vocabulary (from the embedding, else the head), its embedding and head keys (a
    head's bias with it), and whether they are tied."""
    vocab = embed if keys.has(embed) else head
    if keys.has(vocab):
        d.dimensions.append(_size("vocab", (keys.shape(vocab) or (0,))[0], keys.cite(vocab), _VOCAB))
    if keys.has(embed):
        d.embedding_keys = (keys.base + embed,)
    bias = head.removesuffix("weight") + "bias"
    d.head_keys = tuple(keys.base + k for k in (head, bias) if keys.has(k))
    tied = _tied(keys, embed, head)
    if tied is not None:
        d.facts.append(tied)


_PHI3 = anchor_name("layers.0.self_attn.qkv_proj.weight")


def phi3(keys: ModelKeys) -> Detection | None:
    """Phi-3: ``layers.N.self_attn.qkv_proj`` fused [(heads + 2 × kv_heads) × head_dim, hidden], ``o_proj``,
    ``mlp.gate_up_proj`` fused [2 × intermediate, hidden], ``down_proj``, RMSNorms."""
    p = keys.anchor(_PHI3)
    if p is None:
        return None
    block = f"{p}layers.0."
    qkv, gate_up = f"{block}self_attn.qkv_proj.weight", f"{block}mlp.gate_up_proj.weight"
    d = Detection("phi3", "decoder-only transformer (Phi-3-style)")
    layers = _blocks(keys, f"{p}layers.", "self_attn.qkv_proj.weight")
    d.evidence = [layers.evidence[0], keys.cite(qkv)]
    d.dimensions = [layers, _size("hidden", (keys.shape(qkv) or (0, 0))[1], keys.cite(qkv), _HIDDEN)]
    rows = (keys.shape(gate_up) or (0,))[0]
    if keys.has(gate_up) and rows % 2 == 0:
        d.evidence.append(keys.cite(gate_up))
        note = f"gate_up_proj holds the gate and up projections: {rows:,} rows / 2"
        d.dimensions.append(_size("intermediate", rows // 2, keys.cite(gate_up), _INTERMEDIATE, note))
    heads, fused = _fused_qkv(keys, qkv, f"{block}self_attn.o_proj.weight")
    d.dimensions += heads
    if fused is not None:
        d.facts.append(fused)
    _layers_decoder_ends(keys, d, p, block)
    return d


_FALCON = anchor_name("h.0.self_attention.query_key_value.weight")


def falcon(keys: ModelKeys) -> Detection | None:
    """Falcon: ``h.N.self_attention.query_key_value`` fused [(heads + 2 × kv_heads) × head_dim, hidden]
    with its output projection ``dense``, ``mlp.dense_h_to_4h``, ``word_embeddings``; the grouped layout
    of 40B/180B norms each block's attention and MLP apart (``ln_attn``/``ln_mlp``). BLOOM, whose
    names Falcon's follow, also norms its embedding (``word_embeddings_layernorm``)."""
    p = keys.anchor(_FALCON)
    if p is None:
        return None
    block = f"{p}h.0."
    qkv, fc = f"{block}self_attention.query_key_value.weight", f"{block}mlp.dense_h_to_4h.weight"
    embed_norm = f"{p}word_embeddings_layernorm.weight"
    bloom = keys.has(embed_norm)
    d = (
        Detection("bloom", "decoder-only transformer (BLOOM-style)")
        if bloom
        else Detection("falcon", "decoder-only transformer (Falcon-style)")
    )
    layers = _blocks(keys, f"{p}h.", "self_attention.query_key_value.weight")
    d.evidence = [layers.evidence[0], keys.cite(qkv)] + ([keys.cite(embed_norm)] if bloom else [])
    d.dimensions = [layers, _size("hidden", (keys.shape(qkv) or (0, 0))[1], keys.cite(qkv), _HIDDEN)]
    if keys.has(fc):
        d.dimensions.append(
            _size(
                "intermediate",
                (keys.shape(fc) or (0,))[0],
                keys.cite(fc),
                ("ffn_hidden_size", *_INTERMEDIATE),
            )
        )
    heads, fused = _fused_qkv(
        keys, qkv, f"{block}self_attention.dense.weight", kv_config=("num_kv_heads", "n_head_kv")
    )
    d.dimensions += heads
    if fused is not None:
        d.facts.append(fused)
    attn, mlp = f"{block}ln_attn.weight", f"{block}ln_mlp.weight"
    if keys.has(attn) and keys.has(mlp):
        text = "new decoder architecture: ln_attn and ln_mlp in each block (Falcon-40B/180B)"
        d.facts.append(Fact("variant", text, (keys.cite(attn), keys.cite(mlp))))
    norm = _norm(keys, attn if keys.has(attn) else f"{block}input_layernorm.weight")
    if norm is not None:
        d.facts.append(norm)
    embed, head = f"{p}word_embeddings.weight", f"{_parent(p, 'transformer.')}lm_head.weight"
    _decoder_ends(keys, d, embed, head)
    d.block_prefixes = (keys.base + f"{p}h.",)
    return d


_GPT2 = anchor_name("h.0.attn.c_attn.weight")


def gpt2(keys: ModelKeys) -> Detection | None:
    """GPT-2: ``h.N`` blocks with a fused Conv1D ``c_attn`` [hidden, 3 × hidden], ``wte``/``wpe``."""
    p = keys.anchor(_GPT2)
    if p is None:
        return None
    qkv, fc = f"{p}h.0.attn.c_attn.weight", f"{p}h.0.mlp.c_fc.weight"
    shape = keys.shape(qkv) or (0, 0)
    d = Detection("gpt2", "decoder-only transformer (GPT-2-style)")
    layers = _blocks(keys, f"{p}h.", "attn.c_attn.weight")
    d.evidence = [layers.evidence[0], keys.cite(qkv)]
    d.dimensions = [layers, _size("hidden", shape[0], keys.cite(qkv), _HIDDEN)]
    if keys.has(fc):
        d.evidence.append(keys.cite(fc))
        d.dimensions.append(
            _size("intermediate", (keys.shape(fc) or (0, 0))[1], keys.cite(fc), _INTERMEDIATE)
        )
    note = f"fused q/k/v of 3 × {shape[0]:,}: the head count is not determined by shapes alone"
    d.dimensions.append(Dimension("heads", None, (keys.cite(qkv),), note, _HEADS))
    wte, head = f"{p}wte.weight", f"{_parent(p, 'transformer.')}lm_head.weight"
    if keys.has(wte):
        d.dimensions.append(_size("vocab", (keys.shape(wte) or (0,))[0], keys.cite(wte), _VOCAB))
        d.embedding_keys = (keys.base + wte,)
    positions = _learned_positions(keys, f"{p}wpe.weight")
    if positions is not None:
        d.facts.append(positions[0])
        d.dimensions.append(positions[1])
        d.embedding_keys += (keys.base + f"{p}wpe.weight",)
    if keys.has(head):
        d.head_keys = (keys.base + head,)
    for fact in (_norm(keys, f"{p}h.0.ln_1.weight"), _tied(keys, wte, head)):
        if fact is not None:
            d.facts.append(fact)
    d.block_prefixes = (keys.base + f"{p}h.",)
    return d


_NEOX = anchor_name("layers.0.attention.query_key_value.weight")


def gpt_neox(keys: ModelKeys) -> Detection | None:
    """GPT-NeoX (Pythia): ``layers.N.attention.query_key_value`` [3 × hidden, hidden], ``embed_in``."""
    p = keys.anchor(_NEOX)
    if p is None:
        return None
    block = f"{p}layers.0."
    qkv, fc = f"{block}attention.query_key_value.weight", f"{block}mlp.dense_h_to_4h.weight"
    shape = keys.shape(qkv) or (0, 0)
    d = Detection("gpt-neox", "decoder-only transformer (GPT-NeoX-style)")
    layers = _blocks(keys, f"{p}layers.", "attention.query_key_value.weight")
    d.evidence = [layers.evidence[0], keys.cite(qkv)]
    d.dimensions = [layers, _size("hidden", shape[1], keys.cite(qkv), _HIDDEN)]
    if keys.has(fc):
        d.dimensions.append(_size("intermediate", (keys.shape(fc) or (0,))[0], keys.cite(fc), _INTERMEDIATE))
    note = f"fused q/k/v of 3 × {shape[1]:,}: the head count is not determined by shapes alone"
    d.dimensions.append(Dimension("heads", None, (keys.cite(qkv),), note, _HEADS))
    embed, head = f"{p}embed_in.weight", f"{_parent(p, 'gpt_neox.')}embed_out.weight"
    if keys.has(embed):
        d.dimensions.append(_size("vocab", (keys.shape(embed) or (0,))[0], keys.cite(embed), _VOCAB))
        d.embedding_keys = (keys.base + embed,)
    if keys.has(head):
        d.head_keys = (keys.base + head,)
    for fact in (
        _norm(keys, f"{block}input_layernorm.weight"),
        _rotary(keys, f"{block}attention.rotary_emb.inv_freq"),
        _tied(keys, embed, head),
    ):
        if fact is not None:
            d.facts.append(fact)
    d.block_prefixes = (keys.base + f"{p}layers.",)
    return d


_BERT = anchor_name("encoder.layer.0.attention.self.query.weight")


def bert(keys: ModelKeys) -> Detection | None:
    """BERT-style encoder: ``encoder.layer.N.attention.self.query`` and ``embeddings.word_embeddings``."""
    p = keys.anchor(_BERT)
    if p is None:
        return None
    words = f"{p}embeddings.word_embeddings.weight"
    if not keys.has(words):
        return None
    block = f"{p}encoder.layer.0."
    q, inter = f"{block}attention.self.query.weight", f"{block}intermediate.dense.weight"
    d = Detection("bert", "encoder-only transformer (BERT-style)")
    layers = _blocks(keys, f"{p}encoder.layer.", "attention.self.query.weight")
    d.evidence = [layers.evidence[0], keys.cite(q), keys.cite(words)]
    d.dimensions = [layers, _size("hidden", (keys.shape(q) or (0, 0))[1], keys.cite(q), _HIDDEN)]
    if keys.has(inter):
        d.dimensions.append(
            _size("intermediate", (keys.shape(inter) or (0,))[0], keys.cite(inter), _INTERMEDIATE)
        )
    d.dimensions += _heads(keys, q, f"{block}attention.self.key.weight", None)
    d.dimensions.append(_size("vocab", (keys.shape(words) or (0,))[0], keys.cite(words), _VOCAB))
    d.embedding_keys = tuple(
        keys.base + f"{p}embeddings.{n}.weight"
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")
        if keys.has(f"{p}embeddings.{n}.weight")
    )
    positions = _learned_positions(keys, f"{p}embeddings.position_embeddings.weight")
    if positions is not None:
        d.facts.append(positions[0])
        d.dimensions.append(positions[1])
    types = keys.shape(f"{p}embeddings.token_type_embeddings.weight")
    if types is not None:
        cite = keys.cite(f"{p}embeddings.token_type_embeddings.weight")
        d.dimensions.append(_size("token_types", types[0], cite, ("type_vocab_size",)))
    outer = _outer(p)
    heads = [
        h for h in (f"{outer}cls.predictions.decoder.weight", f"{outer}classifier.weight") if keys.has(h)
    ]
    d.head_keys = tuple(keys.base + h for h in heads)
    norm = _norm(keys, f"{p}embeddings.LayerNorm.weight")
    if norm is not None:
        d.facts.append(norm)
    if heads and heads[0].endswith("decoder.weight"):
        tied = _tied(keys, words, heads[0])
        if tied is not None:
            d.facts.append(tied)
    d.block_prefixes = (keys.base + f"{p}encoder.layer.",)
    return d


_T5 = anchor_name("encoder.block.0.layer.0.SelfAttention.q.weight")


def t5(keys: ModelKeys) -> Detection | None:
    """T5-style: ``encoder.block.N.layer.0.SelfAttention.q`` (and a decoder's), a ``shared`` embedding."""
    p = keys.anchor(_T5)
    if p is None:
        return None
    attn = f"{p}encoder.block.0.layer.0.SelfAttention."
    q = attn + "q.weight"
    decoder = keys.has(f"{p}decoder.block.0.layer.0.SelfAttention.q.weight")
    label = "encoder-decoder transformer (T5-style)" if decoder else "encoder-only transformer (T5 encoder)"
    d = Detection("t5", label)
    layers = _blocks(keys, f"{p}encoder.block.", "layer.0.SelfAttention.q.weight", "encoder blocks")
    d.evidence = [layers.evidence[0], keys.cite(q)]
    q_shape = keys.shape(q) or (0, 0)
    d.dimensions = [layers, _size("hidden", q_shape[1], keys.cite(q), _HIDDEN)]
    if decoder:
        dec = _blocks(keys, f"{p}decoder.block.", "layer.0.SelfAttention.q.weight", "decoder blocks")
        d.evidence.append(dec.evidence[0])
        d.dimensions.append(
            Dimension("decoder_layers", dec.value, dec.evidence, config_keys=("num_decoder_layers",))
        )
    ff = next(
        (f"{p}encoder.block.0.layer.1.DenseReluDense.{n}.weight" for n in ("wi", "wi_0")
         if keys.has(f"{p}encoder.block.0.layer.1.DenseReluDense.{n}.weight")),
        None,
    )  # fmt: skip
    if ff is not None:
        d.dimensions.append(_size("intermediate", (keys.shape(ff) or (0,))[0], keys.cite(ff), _INTERMEDIATE))
        if ff.endswith("wi_0.weight"):
            d.facts.append(
                Fact("variant", "gated feed-forward (wi_0/wi_1, as T5 v1.1 has)", (keys.cite(ff),))
            )
    bias = attn + "relative_attention_bias.weight"
    if keys.has(bias):
        buckets, heads = (keys.shape(bias) or (0, 0))[:2]
        cites = (keys.cite(bias), keys.cite(q))
        note = f"relative_attention_bias has one column per head; inner size {q_shape[0]:,} / {heads} heads"
        d.dimensions.append(Dimension("heads", heads, cites, "one relative-bias column per head", _HEADS))
        if heads and q_shape[0] % heads == 0:
            d.dimensions.append(Dimension("head_dim", q_shape[0] // heads, cites, note, ("d_kv",)))
        d.facts.append(Fact("positions", f"relative position bias, {buckets} buckets", (keys.cite(bias),)))
    shared = f"{p}shared.weight"
    if keys.has(shared):
        d.dimensions.append(_size("vocab", (keys.shape(shared) or (0,))[0], keys.cite(shared), _VOCAB))
        d.embedding_keys = (keys.base + shared,)
    head = f"{p}lm_head.weight"
    if keys.has(head):
        d.head_keys = (keys.base + head,)
    for fact in (
        _norm(keys, f"{p}encoder.block.0.layer.0.layer_norm.weight"),
        _tied(keys, shared, head) if decoder else None,
    ):
        if fact is not None:
            d.facts.append(fact)
    d.block_prefixes = (keys.base + f"{p}encoder.block.", keys.base + f"{p}decoder.block.")
    return d


_RESNET = anchor_name("layer1.0.conv1.weight")

#: torchvision's depths: (bottleneck blocks?, blocks per stage) → name.
_RESNET_DEPTHS: dict[tuple[bool, tuple[int, ...]], str] = {
    (False, (2, 2, 2, 2)): "ResNet-18", (False, (3, 4, 6, 3)): "ResNet-34", (True, (3, 4, 6, 3)): "ResNet-50",
    (True, (3, 4, 23, 3)): "ResNet-101", (True, (3, 8, 36, 3)): "ResNet-152",
}  # fmt: skip


def resnet(keys: ModelKeys) -> Detection | None:
    """torchvision ResNet: a ``conv1``/``bn1`` stem, stages ``layer1`` … ``layer4`` of blocks, ``fc``."""
    p = keys.anchor(_RESNET)
    if p is None:
        return None
    stem = f"{p}conv1.weight"
    if not keys.has(stem):
        return None
    stages = tuple(n for s in range(1, 9) if (n := keys.count(f"{p}layer{s}.", "conv1.weight")))
    bottleneck = keys.has(f"{p}layer1.0.conv3.weight")
    kind = "bottleneck" if bottleneck else "basic"
    d = Detection("resnet", "convolutional vision network (ResNet-style)")
    block_cite = (
        f"blocks per stage {list(stages)} ({kind} blocks{': layer1.0.conv3 present' if bottleneck else ''})"
    )
    d.evidence = [keys.cite(stem), keys.cite(f"{p}layer1.0.conv1.weight"), block_cite]
    stem_shape = keys.shape(stem) or (0, 0)
    d.dimensions = [
        Dimension("layers", sum(stages), (block_cite,), "residual blocks"),
        _size("stem_width", stem_shape[0], keys.cite(stem)),
        _size("input_channels", stem_shape[1], keys.cite(stem), ("num_channels",)),
    ]
    name = _RESNET_DEPTHS.get((bottleneck, stages))
    if name is not None:
        d.facts.append(Fact("variant", f"{name} layout", (block_cite,)))
    fc = f"{p}fc.weight"
    if keys.has(fc):
        d.dimensions.append(_size("classes", (keys.shape(fc) or (0,))[0], keys.cite(fc), ("num_labels",)))
        d.head_keys = (keys.base + fc, keys.base + f"{p}fc.bias")
    if keys.has(f"{p}bn1.running_mean"):
        d.facts.append(
            Fact("norm", "BatchNorm (running mean and variance)", (keys.cite(f"{p}bn1.running_mean"),))
        )
    d.block_prefixes = tuple(keys.base + f"{p}layer{s}." for s in range(1, len(stages) + 1))
    return d


@dataclass(frozen=True)
class _VitNaming:
    """Where one naming of the vision transformer keeps its parts, after the anchor's prefix; block
    0's attention (``blocks`` + ``0.`` + ``q``) is the anchor."""

    blocks: str  # the blocks' prefix, each block's number after it
    q: str  # the query projection, or the fused q/k/v where ``k`` is None
    k: str | None
    out: str  # the attention's output projection (its input is heads × head_dim)
    mlp: tuple[str, ...]  # the MLP's first linear layer, by the names its versions gave it
    norm: str
    patch: str
    cls: str
    positions: str
    head: str
    head_above: bool = False  # the head sits beside the model's prefix (an HF …ForImageClassification)

    @property
    def anchor(self) -> str:
        return f"{self.blocks}0.{self.q}"


_VIT_NAMINGS = (
    _VitNaming(  # timm
        "blocks.", "attn.qkv.weight", None, "attn.proj.weight", ("mlp.fc1.weight",), "norm1.weight",
        "patch_embed.proj.weight", "cls_token", "pos_embed", "head.weight",
    ),
    _VitNaming(  # transformers
        "encoder.layer.", "attention.attention.query.weight", "attention.attention.key.weight",
        "attention.output.dense.weight", ("intermediate.dense.weight",), "layernorm_before.weight",
        "embeddings.patch_embeddings.projection.weight", "embeddings.cls_token",
        "embeddings.position_embeddings", "classifier.weight", head_above=True,
    ),
    _VitNaming(  # torchvision (mlp.linear_1 before torchvision 0.13)
        "encoder.layers.encoder_layer_", "self_attention.in_proj_weight", None,
        "self_attention.out_proj.weight", ("mlp.0.weight", "mlp.linear_1.weight"), "ln_1.weight",
        "conv_proj.weight", "class_token", "encoder.pos_embedding", "heads.head.weight",
    ),
)  # fmt: skip
for _naming in _VIT_NAMINGS:
    anchor_name(_naming.anchor)


def vit(keys: ModelKeys) -> Detection | None:
    """Vision transformer (timm's, transformers' or torchvision's naming): a patch convolution,
    blocks of attention, learned positions and a class token."""
    for naming in _VIT_NAMINGS:
        p = keys.anchor(naming.anchor)
        if p is not None and (found := _vit(keys, p, naming)) is not None:
            return found
    return None


def _vit(keys: ModelKeys, p: str, n: _VitNaming) -> Detection | None:
    """The vision transformer whose block 0 the naming ``n`` found under ``p``, if its patch
    projection is a convolution."""
    patch = f"{p}{n.patch}"
    patch_shape = keys.shape(patch)
    if patch_shape is None or len(patch_shape) != 4:
        return None
    block = f"{p}{n.blocks}0."
    q = block + n.q
    d = Detection("vit", "vision transformer (ViT-style)")
    layers = _blocks(keys, f"{p}{n.blocks}", n.q)
    d.evidence = [layers.evidence[0], keys.cite(patch), keys.cite(q)]
    d.dimensions = [
        layers,
        _size("hidden", patch_shape[0], keys.cite(patch), _HIDDEN),
        _size("patch_size", patch_shape[2], keys.cite(patch), ("patch_size",)),
        _size("input_channels", patch_shape[1], keys.cite(patch), ("num_channels",)),
    ]
    fc1 = next((block + m for m in n.mlp if keys.has(block + m)), None)
    if fc1 is not None:
        d.dimensions.append(
            _size("intermediate", (keys.shape(fc1) or (0,))[0], keys.cite(fc1), ("mlp_dim", *_INTERMEDIATE))
        )
    if n.k is not None:
        d.dimensions += _heads(keys, q, block + n.k, None)
    else:
        heads, fused = _fused_qkv(keys, q, block + n.out)
        d.dimensions += heads
        if fused is not None:
            d.facts.append(fused)
    pos = keys.shape(f"{p}{n.positions}")
    if pos is not None and len(pos) == 3:
        cite = keys.cite(f"{p}{n.positions}")
        cls = " (patches and a class token)" if keys.has(f"{p}{n.cls}") else ""
        d.facts.append(Fact("positions", f"learned absolute, {pos[1]:,} tokens{cls}", (cite,)))
        d.dimensions.append(_size("image_tokens", pos[1], cite, note=cls.strip(" ()")))
    head = f"{_outer(p) if n.head_above else p}{n.head}"
    if keys.has(head):
        d.dimensions.append(_size("classes", (keys.shape(head) or (0,))[0], keys.cite(head), ("num_labels",)))
        bias = head.removesuffix("weight") + "bias"
        d.head_keys = tuple(keys.base + k for k in (head, bias) if keys.has(k))
    norm = _norm(keys, block + n.norm)
    if norm is not None:
        d.facts.append(norm)
    d.embedding_keys = tuple(
        keys.base + f"{p}{k}" for k in (n.patch, n.positions, n.cls) if keys.has(f"{p}{k}")
    )
    d.block_prefixes = (keys.base + p + n.blocks[: n.blocks.rfind(".") + 1],)
    return d


_DOWN = anchor_name("down_blocks.0.resnets.0.conv1.weight")


_CROSS = anchor_name("attentions.0.transformer_blocks.0.attn2.to_k.weight")


def unet(keys: ModelKeys) -> Detection | None:
    """Diffusion UNet (diffusers naming): ``down_blocks``/``up_blocks`` of resnets, a ``time_embedding``."""
    p = keys.anchor(_DOWN)
    if p is None:
        return None
    time = f"{p}time_embedding.linear_1.weight"
    if not keys.has(time):
        return None
    d = Detection("unet", "diffusion UNet (diffusers-style)")
    downs = keys.count(f"{p}down_blocks.", "resnets.0.conv1.weight")
    d.evidence = [
        f"{downs} down blocks: {keys.base}{p}down_blocks.0 … {keys.base}{p}down_blocks.{downs - 1}",
        keys.cite(time),
    ]
    widths = [(keys.shape(f"{p}down_blocks.{i}.resnets.0.conv1.weight") or (0,))[0] for i in range(downs)]
    d.dimensions = [Dimension("layers", downs, (d.evidence[0],), "down blocks", ("down_block_types",))]
    conv_in = f"{p}conv_in.weight"
    if keys.has(conv_in):
        d.dimensions.append(
            _size("input_channels", (keys.shape(conv_in) or (0, 0))[1], keys.cite(conv_in), ("in_channels",))
        )
    d.facts.append(
        Fact("variant", f"block widths {widths}", (f"{keys.base}{p}down_blocks.N.resnets.0.conv1.weight",))
    )
    d.dimensions.append(_size("time_embedding", (keys.shape(time) or (0,))[0], keys.cite(time)))
    first_cross = keys.anchors.get(_CROSS, "")
    cross = first_cross[len(keys.base) :] if first_cross.startswith(keys.base + p) else None
    if cross is not None:
        d.dimensions.append(
            _size(
                "cross_attention",
                (keys.shape(cross) or (0, 0))[1],
                keys.cite(cross),
                ("cross_attention_dim",),
            )
        )
    d.block_prefixes = tuple(keys.base + f"{p}{n}" for n in ("down_blocks.", "mid_block.", "up_blocks."))
    return d


def vae(keys: ModelKeys) -> Detection | None:
    """Diffusion VAE (diffusers AutoencoderKL): ``encoder``/``decoder`` of down/up blocks, ``quant_conv``."""
    found = keys.anchor(_DOWN)
    if found is None or not found.endswith("encoder."):
        return None
    p = found[: -len("encoder.")]
    post = f"{p}post_quant_conv.weight"
    if not keys.has(f"{p}decoder.conv_in.weight"):
        return None
    d = Detection("vae", "diffusion VAE (diffusers AutoencoderKL-style)")
    downs = keys.count(f"{p}encoder.down_blocks.", "resnets.0.conv1.weight")
    d.evidence = [
        f"{downs} encoder down blocks: {keys.base}{p}encoder.down_blocks.0 …",
        keys.cite(f"{p}decoder.conv_in.weight"),
    ]
    latent = keys.shape(f"{p}decoder.conv_in.weight") or (0, 0)
    d.dimensions = [
        Dimension("layers", downs, (d.evidence[0],), "encoder down blocks"),
        _size("latent_channels", latent[1], keys.cite(f"{p}decoder.conv_in.weight"), ("latent_channels",)),
    ]
    if keys.has(post):
        d.evidence.append(keys.cite(post))
    conv_in = f"{p}encoder.conv_in.weight"
    if keys.has(conv_in):
        d.dimensions.append(
            _size("input_channels", (keys.shape(conv_in) or (0, 0))[1], keys.cite(conv_in), ("in_channels",))
        )
    d.block_prefixes = (keys.base + f"{p}encoder.", keys.base + f"{p}decoder.")
    return d


def cnn(keys: ModelKeys) -> Detection | None:
    """Any other network of 2-D convolutions: the family is not named, only what its kernels show."""
    kernels = keys.kernels()
    if not kernels:
        return None
    count, first_key = len(kernels), kernels[0]
    first = keys.lookup(first_key)
    assert first is not None
    d = Detection("cnn", "convolutional network (2-D convolutions; architecture not recognised)")
    cite = f"{first_key} {format_shape(first.shape)}"
    d.evidence = [f"{count:,} 4-D convolution kernels [out, in, kh, kw], the first {cite}"]
    d.dimensions = [
        Dimension("conv_layers", count, (d.evidence[0],)),
        Dimension("input_channels", first.shape[1], (cite,)),
    ]
    bn = next((k for k in keys.nodes if k.endswith(".running_mean")), None)
    info = keys.lookup(bn) if bn is not None else None
    if info is not None:
        cite = f"{bn} {format_shape(info.shape)}"
        d.facts.append(Fact("norm", "BatchNorm (running mean and variance)", (cite,)))
    return d


#: Every rule, most specific first: the first that matches names the family.
RULES: tuple[Callable[[ModelKeys], Detection | None], ...] = (
    t5, bert, phi, llama, opt, phi3, falcon, gpt_neox, gpt2, vit, vae, unet, resnet, cnn,
)  # fmt: skip
