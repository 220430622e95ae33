"""The ``full`` sweep objective: Ray Train pretraining, then a ``TorchTrainer`` per fold.

Runs inside a Tune trial (a driver function: the trainers it builds take their own CPUs /
GPUs from the pretrain and finetune sections). Checkpoints live under the trial's folder with
run names derived from the stable trial id, so a restored trial resumes its trainers.
"""

from __future__ import annotations

import os
from typing import Callable

import pyarrow as pa

from activessf.config import from_dict, to_dict
from activessf.distributed.finetune import fit_fold
from activessf.stages.pretrain import run_pretrain
from activessf.evaluation.folds import folds_digest, num_folds, scored_apart
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.freshness import finetune_fingerprint
from activessf.finetune.inputs import fold_inputs
from activessf.finetune.outputs import fold_done, load_fold, write_fold
from activessf.io.items import crop_items
from activessf.io.markers import files_stamp
from activessf.pipeline.budget import trial_budget
from activessf.pretrain.config import PretrainConfig
from activessf.selection.config import SelectionConfig
from activessf.selection.stage import run_select


def _encoder_finetune(ft: FinetuneConfig, pre: PretrainConfig, encoder: str, run_name: str) -> FinetuneConfig:
    """The fine-tuning config of the trial's encoder, as its descriptor says (``encoder.json``)."""
    tree = to_dict(ft)
    tree["model"].update(pre.model.encoder_descriptor().finetune_model(encoder))
    tree["train"].update(run_name=run_name, method_name=run_name)
    return from_dict(FinetuneConfig, tree)


def full_objective(
    shared: dict, labeled: pa.Table, folds: pa.Table, trial_dir: str, trial_id: str,
    sel: SelectionConfig, pre: PretrainConfig, ft: FinetuneConfig,
    report: Callable[[list[float], int], None], metric: str,
) -> None:
    """Select, pretrain (Ray Train), fine-tune each fold (Ray Train); ``report`` after every fold."""
    sel_dir = os.path.join(trial_dir, "selection")
    run_select(shared["features_labeled"], shared["features_pool"], sel_dir, sel)
    n_selected = crop_items(sel_dir).num_rows
    storage = os.path.join(trial_dir, "ray_runs")
    pre_tree = to_dict(pre)
    pre_tree["train"].update(run_name=f"{trial_id}_pretrain", storage_path=pre.train.storage_path or storage)
    pre = from_dict(PretrainConfig, pre_tree)
    if n_selected:
        # The pipeline's budget rule: every trial pretrains for the same optimizer steps.
        pre = trial_budget(pre, n_selected, shared["features_pool"])
    # Nothing selected: the encoder starts untrained, as in the cheap objective (the row shows
    # n_selected = 0), rather than failing the trial and retrying it on every restore.
    encoder = run_pretrain(sel_dir, os.path.join(trial_dir, "pretrain"), pre)["encoder"] if n_selected else "none"
    cfg = _encoder_finetune(ft, pre, encoder, f"{trial_id}_ft")
    ft_dir = os.path.join(trial_dir, "finetune")
    classes = sorted(set(folds["label"].to_pylist()))
    fp = finetune_fingerprint(cfg, folds_digest(folds), files_stamp(labeled["path"].to_pylist()))
    tags = {"fingerprint": fp, "scored_apart": scored_apart(folds)}
    scores = []
    for fold in range(num_folds(folds)):
        if not fold_done(ft_dir, fold, fp):
            inputs = fold_inputs(labeled, folds, fold, classes, **tags)
            write_fold(ft_dir, inputs, fit_fold(inputs, cfg, cfg.train.storage_path or storage), cfg.method_name())
        scores.append(load_fold(ft_dir, fold)[metric])
        report(scores, n_selected)
