"""The model card of every real checkpoint of the corpus: computed without errors, the family named
where the key names show it, "unrecognised" where no rule set fits, and training parts found."""

from __future__ import annotations

import pytest

from inspector.core.model import CheckpointIndex
from inspector.core.model_card import build_model_card, card_lines
from tests.corpus.conftest import FILES, PerFile

pytestmark = pytest.mark.corpus

#: What each file is (manifest.json's "what"): 2-D convolutions (LPIPS' 1×1 linear layers, MTCNN,
#: MobileNetV2) have no rule set of their own; LSTMs, GNNs, 1-D convolutions and embeddings none.
FAMILIES = {
    **{i: "cnn" for i in FILES if i.startswith(("lpips-", "facenet-"))},
    "deepsort-mobilenetv2": "cnn",
}
#: Training parts by file: (role, key, the start of what the card says).
TRAINING = {
    "resemblyzer-pretrained": {
        ("optimizer", "optimizer_state", "Adam/AdamW"),
        ("step", "step", "step = 1564501"),
    },
    "chgnet-0.2.0": {("optimizer", "optimizer", "Adam/AdamW"), ("scheduler", "scheduler", "ExponentialLR")},
    "chgnet-0.3.0": {
        ("optimizer", "optimizer", "Adam/AdamW"),
        ("scheduler", "scheduler", "CosineAnnealingLR"),
    },
    "sevenn-0-11jul2024": {
        ("optimizer", "optimizer_state_dict", "Adam/AdamW"),
        ("scheduler", "scheduler_state_dict", "LinearLR"),
        ("epoch", "epoch", "epoch = 600"),
    },
    "whisperx-segmentation": {
        ("optimizer", "optimizer_states.0", "Adam/AdamW"),
        ("epoch", "epoch", "epoch = 121"),
        ("step", "global_step", "global_step = 682924"),
        ("scheduler", "lr_schedulers", "CosineAnnealingWarmRestarts"),
    },
    "pesto-mir-1k": {("epoch", "epoch", "epoch = 49"), ("step", "global_step", "global_step = 54800")},
}


@pytest.mark.parametrize("file_id", sorted(FILES))
def test_real_checkpoint_gets_a_card(file_id: str, indexes: PerFile[CheckpointIndex]) -> None:
    index = indexes[file_id]
    card = build_model_card(index)
    assert card.family == FAMILIES.get(file_id, "unrecognised")
    assert card_lines(card)[0].startswith("model card: ")
    if card.family != "unrecognised":
        assert card.evidence and all(" [" in e for e in card.evidence)  # keys with their shapes
    assert card.bytes_at["bf16"] == card.params * 2
    found = {(t.role, t.key, t.text) for t in card.training}
    for role, key, text in TRAINING.get(file_id, set()):
        assert any(r == role and k == key and t.startswith(text) for r, k, t in found), (role, key, found)
