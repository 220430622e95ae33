"""``features.source: labeled``: a small backbone trained on the labeled crops (no Ray here).

The recipe is a fine-tuning config (``activessf.finetune``) built from ``features.labeled``: the
same model builder, augmentation, optimiser and class-balanced sampling as fine-tuning, trained
once on every labeled crop (the fine-tuning stage's *final fit*). Its pooled penultimate
features then embed both the labeled and the pool crops. ``activessf.stages.feature_backbone``
runs it on Ray Train; :func:`train_local` runs the same epochs in this process (tests, ``--local``).

Output folder: ``final/model.safetensors`` (timm classifier state dict; the feature stage loads it
with the head dropped) and ``final/final.json``, as fine-tuning's final fit writes them.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from activessf.config import build_config
from activessf.features.config import FeaturesConfig
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.inputs import FoldRun

WEIGHTS = os.path.join("final", "model.safetensors")


def backbone_finetune_config(cfg: FeaturesConfig, run_name: str = "feature_backbone",
                             storage_path: str | None = None) -> FinetuneConfig:
    """The fine-tuning config that trains ``cfg.backbone`` as ``cfg.labeled`` says.

    Args:
        cfg: Features config (``backbone`` and ``labeled`` are read).
        run_name: Ray Train run name (a rerun with the same name resumes).
        storage_path: Ray Train storage (None = the fine-tuning default beside the outputs).

    Returns:
        A validated ``FinetuneConfig``: random init, no layer decay (a CNN from scratch), no
        label smoothing, class-balanced sampling by default, one final fit and no test folds.
    """
    lab = cfg.labeled
    sets = [f"model.name={cfg.backbone}", "model.init=none", f"model.img_size={lab.img_size}",
            "model.drop_path_rate=0.0", f"aug.randaug_ops={lab.randaug_ops}", "aug.label_smoothing=0.0",
            f"optim.lr={lab.lr}", "optim.layer_decay=null", f"optim.epochs={lab.epochs}",
            f"optim.warmup_epochs={min(lab.warmup_epochs, lab.epochs)}", f"optim.batch_size={lab.batch_size}",
            f"optim.weight_decay={lab.weight_decay}", f"optim.class_balance={lab.class_balance}",
            f"train.num_workers={lab.num_workers}", f"train.use_gpu={str(lab.use_gpu).lower()}",
            f"train.cpus_per_worker={lab.cpus_per_worker}", f"train.seed={lab.seed}", f"train.run_name={run_name}",
            f"train.checkpoint_every={lab.epochs}", "train.method_name=feature backbone"]
    if storage_path is not None:
        sets.append(f"train.storage_path={storage_path}")
    return build_config(FinetuneConfig, None, sets)


def train_local(paths: Sequence[str], labels: Sequence[int], num_classes: int, cfg: FinetuneConfig) -> FoldRun:
    """Train the classifier in this process with the fine-tuning engine (one worker, CPU/GPU).

    Args:
        paths: ``[N]`` training crop files.
        labels: ``[N]`` class indices in ``[0, num_classes)``.
        num_classes: K.
        cfg: From :func:`backbone_finetune_config`.

    Returns:
        The run (``model`` state dict, ``history``), like a Ray final fit.
    """
    from activessf.engine.state import seed_everything
    from activessf.finetune.data import Augment, class_weights, epoch_order, load_labeled, num_train_batches, train_batches
    from activessf.finetune.engine import build_loss, train_epoch
    from activessf.finetune.model import build_classifier, finetune_training

    seed_everything(cfg.train.seed)
    device = torch.device("cuda" if cfg.train.use_gpu and torch.cuda.is_available() else "cpu")
    images, kept = load_labeled(list(paths), cfg.model.img_size)
    y = np.asarray(labels, np.int64)[kept]
    model = build_classifier(cfg.model, num_classes, cfg.train.seed).to(device)
    training = finetune_training(model, cfg, num_train_batches(len(images), cfg.optim.batch_size), device)
    weights = class_weights(y, num_classes).to(device) if cfg.optim.class_balance == "loss_weights" else None
    loss_fn, augment, history = build_loss(cfg, None, weights), Augment(cfg.aug, cfg.model.img_size), []
    for epoch in range(1, cfg.optim.epochs + 1):
        # Seeded per epoch exactly as the Ray loop seeds rank 0.
        torch.manual_seed(cfg.train.seed * 1_000_003 + epoch * 1009)
        order = epoch_order(y, cfg.optim.class_balance == "sampling", cfg.train.seed * 1_000_003 + epoch)
        rec = train_epoch(model, train_batches(images, y, order, cfg.optim.batch_size, augment), training, loss_fn,
                          device, None, cfg.optim.clip_grad)
        history.append(rec | {"epoch": epoch})
    return FoldRun(history=history, epoch=cfg.optim.epochs, model=model.state_dict())
