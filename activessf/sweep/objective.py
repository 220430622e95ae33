"""The cheap sweep objective, in one process (no Ray): selection -> short pretraining -> probe.

A trial selects pool crops with its selection config, pretrains the encoder on them with the plain
engine for the pipeline's equal-step budget (the optimizer steps of the pretrain section's epochs
over the whole pool, ``activessf.pipeline.budget``: trials differ by their selection, not by
how many steps a larger selection buys), embeds the labeled crops with the
frozen encoder and scores a logistic-regression / kNN probe on every saved fold. Its ranking
of selection settings is what the sweep needs; absolute numbers are below fine-tuning's.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import torch

from activessf.engine.pretrain_engine import fit
from activessf.engine.state import seed_everything
from activessf.evaluation.frozen import frozen_eval
from activessf.finetune.config import FtModelConfig
from activessf.finetune.model import build_classifier
from activessf.io.items import crop_items
from activessf.models.descriptor import HEADER_KEY
from activessf.models.registry import build_method
from activessf.pretrain.config import PretrainConfig
from activessf.pretrain.export import export_encoder
from activessf.pretrain.images import load_images
from activessf.selection.config import SelectionConfig
from activessf.pipeline.budget import trial_budget
from activessf.selection.stage import run_select
from activessf.sweep.config import ProbeConfig


def pretrain_in_process(images: np.ndarray, cfg: PretrainConfig) -> torch.nn.Module:
    """Train the configured method on uint8 ``[N, S, S, 3]`` images with the plain engine (CPU/GPU)."""
    seed_everything(cfg.train.seed)
    device = torch.device("cuda" if cfg.train.use_gpu and torch.cuda.is_available() else "cpu")
    method = build_method(cfg.model.method, cfg).to(device)
    if len(images) == 0:
        return method
    data, bs = torch.from_numpy(images), cfg.optim.batch_size
    gen = torch.Generator().manual_seed(cfg.train.seed)

    def batches(epoch: int) -> Iterator[dict]:
        order = torch.randperm(len(data), generator=gen)
        # Drop a last batch too small for batch statistics (MoCo's BN heads).
        return ({"image": data[order[i : i + bs]]} for i in range(0, len(data), bs) if len(order[i : i + bs]) > 1)

    fit(method, cfg, batches, max(1, len(data) // bs), device)
    return method.cpu().eval()


def encoder_features(method: torch.nn.Module, cfg: PretrainConfig, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Pooled encoder features ``[N, D]`` of uint8 ``[N, S, S, 3]`` images, normalised as in pretraining."""
    with tempfile.TemporaryDirectory(prefix="ssf-sweep-") as tmp:
        desc = cfg.model.encoder_descriptor()  # the export's own description (any method, ConvMAE too)
        path = export_encoder(method, os.path.join(tmp, desc.weights), {HEADER_KEY: desc.to_json()})
        m = FtModelConfig(**desc.finetune_model(path), img_size=cfg.model.img_size)
        model = build_classifier(m, num_classes=0, seed=cfg.train.seed).eval()
    mean = torch.tensor(cfg.aug.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.aug.std).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 255.0
            out.append(model((x - mean) / std).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def cheap_objective(
    features_labeled: str, features_pool: str, labeled: pa.Table, folds: pa.Table, trial_dir: str,
    selection: SelectionConfig, pretrain: PretrainConfig, probe: ProbeConfig,
) -> dict[str, Any]:
    """Score one trial's configs on every fold.

    Args:
        features_labeled: Feature stage folder of the labeled crops (prototypes).
        features_pool: Feature stage folder of the pool crops (candidates).
        labeled: ``id``, ``path``, ``label`` of the labeled crops ``[L]`` (the folded items).
        folds: The sweep's saved folds (every trial gets the same file).
        trial_dir: The trial's own folder (its selection stage writes there).
        selection, pretrain, probe: The trial's configs.

    Returns:
        ``report`` (``frozen_eval`` run report, per fold and mean +- std) and ``n_selected``.
    """
    sel_dir = os.path.join(trial_dir, "selection")
    run_select(features_labeled, features_pool, sel_dir, selection)
    selected = crop_items(sel_dir)["path"].to_pylist()
    if selected:
        pretrain = trial_budget(pretrain, len(selected), features_pool)
    method = pretrain_in_process(load_images(selected, pretrain.model.img_size), pretrain)
    images = load_images(labeled["path"].to_pylist(), pretrain.model.img_size)
    if len(images) != labeled.num_rows:
        raise ValueError(f"{labeled.num_rows - len(images)} labeled crops did not decode")
    feats = encoder_features(method, pretrain, images)
    report = frozen_eval(feats, labeled["id"].to_pylist(), folds, kind=probe.kind, k=probe.k, c=probe.c,
                         seed=pretrain.train.seed)
    return {"report": report, "n_selected": len(selected)}
