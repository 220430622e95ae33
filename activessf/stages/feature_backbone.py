"""``features.source: labeled``: train the feature backbone on the labeled crops with Ray Train.

The training is fine-tuning's *final fit* (``activessf.distributed.finetune.fit_fold``): one
``TorchTrainer`` run on every labeled crop, no held-out fold, with the recipe of
``features.labeled`` (``activessf.features.labeled.backbone_finetune_config``). The weights land
in ``<output>/final/model.safetensors``; the feature stage then loads them (head dropped) to
embed the labeled and the pool crops. A rerun with the same crops and recipe is skipped.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import pyarrow as pa

from activessf import console
from activessf.config import to_dict
from activessf.features.config import FeaturesConfig
from activessf.features.labeled import WEIGHTS, backbone_finetune_config, train_local
from activessf.finetune.inputs import final_inputs
from activessf.finetune.outputs import write_final
from activessf.io import fs as afs
from activessf.io.items import source_stamp
from activessf.io.markers import begin_stage, fingerprint, read_marker, write_marker
from activessf.stages.folds import labeled_items


def _labeled_rows(labeled: str) -> tuple[pa.Table, pa.Table, list[str]]:
    """Labeled crops (``id``/``path``/``label``), the id/label table the final fit reads, classes."""
    items = labeled_items(labeled)
    rows = pa.table({"id": items["id"], "label": items["label"]})
    return items, rows, sorted(set(items["label"].to_pylist()))


def train_feature_backbone(
    labeled: str, output: str, cfg: FeaturesConfig,
    executor: Literal["ray", "local"] = "ray", force: bool = False,
) -> str:
    """Train (or reuse) the ``labeled`` feature backbone; returns its weights file.

    Args:
        labeled: Labeled crops: ImageFolder, region stage folder (``--labeled``) or manifest.
        output: Output folder (local).
        cfg: Features config (``backbone``, ``labeled``).
        executor: ``ray`` (a Ray Train ``TorchTrainer``) or ``local`` (this process).
        force: Retrain even when complete.

    Returns:
        Path of ``final/model.safetensors``.
    """
    output = afs.abspath(output)  # an s3:// URI stays one
    items, rows, classes = _labeled_rows(labeled)
    ft = backbone_finetune_config(cfg, storage_path=os.path.join(output, "ray_runs"))
    fp = fingerprint("feature_backbone", cfg.backbone, to_dict(cfg.labeled), items["id"].to_pylist(),
                     items["label"].to_pylist(), source_stamp(labeled, items))
    weights = os.path.join(output, WEIGHTS)
    if not begin_stage("feature_backbone", output, fp, ft, force):
        return weights
    if executor == "ray":
        from activessf.distributed.epochs import watch_epochs
        from activessf.distributed.finetune import fit_fold
        from activessf.distributed.runtime import ensure_ray

        ensure_ray()
        # A retrain must not resume an older run's checkpoint: the run name carries the fingerprint.
        ft = dataclasses.replace(ft, train=dataclasses.replace(ft.train, run_name=f"feature_backbone_{fp[:12]}"))
        with watch_epochs(output, console.label("feature_backbone"), ft.optim.epochs) as callbacks:
            run = fit_fold(final_inputs(items, rows, classes), ft, ft.train.storage_path, callbacks)
    else:
        y = [classes.index(lab) for lab in items["label"].to_pylist()]
        run = train_local(items["path"].to_pylist(), y, len(classes), ft)
    write_final(output, run, classes, ft)
    loss = run.history[-1]["loss"] if run.history else float("nan")
    write_marker(output, "feature_backbone", fp, {"crops": items.num_rows, "classes": len(classes),
                                                  "epochs": ft.optim.epochs, "final_loss": round(loss, 4)})
    console.detail(f"feature backbone: {cfg.backbone} trained on {items.num_rows} labeled crops of {len(classes)} "
                   f"classes ({ft.optim.epochs} epochs, {cfg.labeled.img_size} px, final loss {loss:.3f}) -> {weights}")
    return weights


def with_backbone(cfg: FeaturesConfig, weights: str) -> FeaturesConfig:
    """``cfg`` pointing at the trained backbone (validated again: the file must now exist)."""
    return dataclasses.replace(cfg, weights=weights)


def backbone_summary(output: str) -> dict:
    """What the training recorded (crops, classes, epochs, final loss) for reports."""
    return dict((read_marker(output) or {}).get("summary") or {})
