"""The fine-tuning stage: every fold of the labeled crops (and the final fit) on Ray Train.

A fold (and the final fit) whose outputs record the current recipe's fingerprint
(``activessf.finetune.freshness``) is not rerun; any other is trained, or resumed from its Ray
checkpoints. Outputs: see ``activessf.finetune.outputs``.
"""

from __future__ import annotations

import os
from typing import Any

from activessf import console
from activessf.config import save_config, to_dict
from activessf.distributed.epochs import watch_epochs
from activessf.distributed.finetune import fit_folds
from activessf.distributed.runtime import ensure_ray
from activessf.distributed.train import storage_root
from activessf.evaluation.folds import folds_digest, num_folds, scored_apart
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.freshness import finetune_fingerprint
from activessf.finetune.inputs import FINAL, FoldInputs, final_inputs, fold_inputs
from activessf.finetune.model import check_init
from activessf.finetune.outputs import final_done, fold_done, load_fold, write_final, write_fold, write_run
from activessf.io import fs as afs
from activessf.io.items import source_stamp
from activessf.stages.folds import labeled_items, run_folds


def _train_pending(pending: list[FoldInputs], cfg: FinetuneConfig, storage: str, output: str) -> list:
    """Train the pending folds (and final fit) with an epoch bar; write each; the stopped folds."""
    stopped, epochs = [], len(pending) * cfg.optim.epochs
    with watch_epochs(output, console.label("finetune"), epochs) as callbacks:
        for inputs, run in fit_folds(pending, cfg, storage, callbacks):
            if not run.finished:
                console.say(f"finetune: fold {inputs.fold} stopped after epoch {run.epoch}; rerun to resume")
                stopped.append(inputs.fold)
            elif inputs.fold == FINAL:
                write_final(output, run, inputs.classes, cfg, fingerprint=inputs.fingerprint)
                console.detail(f"finetune: final fit on all {len(inputs.train_y)} labeled crops done "
                               f"({cfg.method_name()})", err=False)
            else:
                write_fold(output, inputs, run, cfg.method_name())
                console.detail(f"finetune: fold {inputs.fold} done ({cfg.method_name()})", err=False)
    return stopped


def run_finetune(labeled: str, output: str, cfg: FinetuneConfig, folds_path: str | None = None) -> dict[str, Any]:
    """Fine-tune on every fold of ``labeled`` and write per-fold and run outputs to ``output``.

    Args:
        labeled: ImageFolder of labeled crops (``<CLASS>/<image>``), region folder or manifest.
        output: Run folder (local).
        cfg: Stage config.
        folds_path: Shared folds file (the folds stage's); made on first use (default
            ``<output>/folds.parquet``).

    Returns:
        ``completed``; when True the paths (``metrics``, ``confusion``, ``folds``) and the run
        ``report``; when False (``train.stop_after_epochs``) ``stopped_fold`` and ``folds``.
    """
    ensure_ray()
    output = afs.abspath(output)  # an s3:// URI stays one
    save_config(cfg, output, "finetune_config.yaml")
    items = labeled_items(labeled)
    folds_path = folds_path or os.path.join(output, "folds.parquet")
    folds = run_folds(labeled, folds_path, cfg.train.n_folds, cfg.train.folds_seed, items)
    classes = sorted(set(folds["label"].to_pylist()))
    wanted = cfg.train.only_folds if cfg.train.only_folds is not None else range(num_folds(folds))
    fp = finetune_fingerprint(cfg, folds_digest(folds), source_stamp(labeled, items))
    tags = {"fingerprint": fp, "scored_apart": scored_apart(folds, warn="finetune")}
    pending = [fold_inputs(items, folds, f, classes, **tags) for f in wanted if not fold_done(output, f, fp)]
    if pending:
        check_init(cfg.model, len(classes))
    if cfg.train.final_fit and not final_done(output, fp):
        # Trained alongside the folds: it needs no fold's result, only the same recipe.
        pending.append(final_inputs(items, folds, classes, **tags))
    stopped = _train_pending(pending, cfg, storage_root(cfg.train.storage_path, output), output)
    if stopped:
        return {"completed": False, "stopped_fold": min(stopped, key=str), "folds": str(folds_path)}
    results = [load_fold(output, fold) for fold in wanted]
    extra = {"folds_digest": folds_digest(folds), "folds_path": str(folds_path), "config": to_dict(cfg),
             "fingerprint": fp, "scored_apart": tags["scored_apart"]}
    if final_done(output, fp):
        extra["final_model"] = os.path.join(output, FINAL, "model.safetensors")
    paths = write_run(output, results, classes, cfg.method_name(), extra)
    return paths | {"folds": str(folds_path), "completed": True}
