"""A tiny config shared by the pretraining tests (vit_tiny cut to 2 blocks, 32 px, patch 8; a
one-block decoder for each masked-image method, whichever ``model.method`` a test picks)."""

from __future__ import annotations

from activessf.config import build_config
from activessf.pretrain.config import PretrainConfig

TINY = [
    "model.encoder=vit_tiny_patch16_224",
    "model.img_size=32",
    "model.patch_size=8",
    "model.encoder_kwargs={depth: 2}",
    *(f"model.{m}.decoder={{dim: 32, depth: 1, heads: 2}}" for m in ("mae", "convmae", "mixmim")),
    "optim.batch_size=4",
    "optim.epochs=2",
    "optim.warmup_epochs=1",
    "train.log_every=0",
]


def tiny_config(*overrides: str) -> PretrainConfig:
    """The tiny config plus ``key=value`` overrides."""
    return build_config(PretrainConfig, None, [*TINY, *overrides])
