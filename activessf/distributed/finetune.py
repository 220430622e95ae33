"""Fine-tuning on Ray Train V2: one ``TorchTrainer`` run per fold (or final fit), folds concurrently.

Each fold trains on the other folds' images and predicts its own. Workers run the plain engine
(``activessf.finetune.engine``) on their slice of each epoch, the model wrapped by
``ray.train.torch.prepare_model`` (DDP; gloo on CPU). Trainer setup, resume and reports are the
shared launcher's (``activessf.distributed.train``): rank 0 checkpoints ``state.pt`` every
``train.checkpoint_every`` epochs and at the end, where it also stores the test predictions;
rerunning with the same ``storage_path``, recipe and run name (``<run_name>_fold<k>_<fingerprint>``)
resumes. Folds run concurrently as resources allow: each fold's ``TorchTrainer.fit`` runs in a
zero-CPU Ray task (the V2 way to run several trainers from one driver), at most
``train.max_concurrent_folds`` at a time (default: as many as the cluster's current CPUs / GPUs
hold). The stage entry point is ``activessf.stages.finetune``.
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch

from activessf.config import from_dict, to_dict
from activessf.distributed.train import epoch_plan, latest_state, launch, maybe_crash, report_epoch, resume, sum_over_ranks
from activessf.engine.state import save_state, seed_everything
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.data import Augment, class_weights, epoch_order, eval_batches, load_labeled, num_train_batches, train_batches  # noqa: E501
from activessf.finetune.engine import build_loss, build_mixup, evaluate, train_epoch
from activessf.finetune.freshness import ray_run_name
from activessf.finetune.inputs import FINAL, FoldInputs, FoldRun
from activessf.finetune.model import build_classifier, finetune_training

PRED_FILE = "predictions.pt"


def fold_train_loop(loop_cfg: dict) -> None:
    """Ray Train worker: train one fold, then (rank 0) predict its test images."""
    cfg = from_dict(FinetuneConfig, loop_cfg["cfg"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    seed_everything(cfg.train.seed + rank)
    device = ray.train.torch.get_device()
    k, size, bs = len(loop_cfg["classes"]), cfg.model.img_size, cfg.optim.batch_size
    images, kept = load_labeled(loop_cfg["train_paths"], size)
    labels = np.asarray(loop_cfg["train_y"], np.int64)[kept]
    model = build_classifier(cfg.model, k, cfg.train.seed).to(device)
    training = finetune_training(model, cfg, num_train_batches(len(images), bs, world), device)
    start, history = resume(model, training, to_dict(cfg)) or (0, [])
    ddp = ray.train.torch.prepare_model(model)
    mixup, augment = build_mixup(cfg, k), Augment(cfg.aug, size)
    weights = class_weights(labels, k).to(device) if cfg.optim.class_balance == "loss_weights" else None
    loss_fn = build_loss(cfg, mixup, weights)
    for epoch in range(start + 1, cfg.optim.epochs + 1):
        # Augmentation and drop-path draws depend only on (seed, epoch, rank): a resumed run
        # repeats exactly what an uninterrupted one would have done.
        torch.manual_seed(cfg.train.seed * 1_000_003 + epoch * 1009 + rank)
        order = epoch_order(labels, cfg.optim.class_balance == "sampling", cfg.train.seed * 1_000_003 + epoch)
        rec = train_epoch(ddp, train_batches(images, labels, order, bs, augment, rank, world), training, loss_fn,
                          device, mixup, cfg.optim.clip_grad)
        sum_over_ranks(rec, device)
        rec.update(epoch=epoch, fold=loop_cfg["fold"], workers=world, attempt_start_epoch=start)
        history.append(dict(rec))
        plan = epoch_plan(epoch, start, cfg.optim.epochs, cfg.train)
        write = None
        if rank == 0 and plan.save:
            # Only rank 0 holds files; the other ranks report metrics alone.
            state = training.snapshot(model, epoch, to_dict(cfg), history)
            proba = _predict(model, loop_cfg["test_paths"], cfg, augment, device, training.amp_dtype, k) if plan.final else None
            write = _checkpoint_writer(state, proba)
        report_epoch(rec, epoch, write)
        maybe_crash(loop_cfg, epoch)
        if plan.stopping:
            break


def _checkpoint_writer(state: dict, proba: dict[str, np.ndarray] | None):
    def write(folder: str) -> None:
        save_state(state, folder)
        if proba is not None:
            torch.save({k: torch.from_numpy(v) for k, v in proba.items()}, os.path.join(folder, PRED_FILE))

    return write


def _predict(model, paths: list[str], cfg: FinetuneConfig, augment: Augment, device, amp_dtype, k: int) -> dict:
    """Test probabilities ``proba`` ``[M, K]`` of the ``kept`` ``[M]`` test rows that decode."""
    if not paths:  # the final fit trains on every row and has no test set
        return {"proba": np.zeros((0, k)), "kept": np.zeros(0, np.int64)}
    test, kept = load_labeled(paths, cfg.model.img_size)
    p = evaluate(model, eval_batches(test, cfg.train.eval_batch_size, augment), device, amp_dtype)
    return {"proba": p.reshape(len(kept), k), "kept": kept}


def fit_fold(inputs: FoldInputs, cfg: FinetuneConfig, storage_path: str, callbacks: list | None = None) -> FoldRun:
    """Train (or resume) one fold's ``TorchTrainer`` run.

    Args:
        inputs: The fold's train/test rows.
        cfg: Stage config.
        storage_path: Checkpoint root (local absolute path or URI).
        callbacks: Ray Train ``UserCallback``s (``watch_epochs``'s progress).

    Returns:
        The run: ``proba``/``kept`` of the test rows (None when it stopped early), ``history``,
        ``checkpoint`` and, for the final fit, ``model`` (its state dict).
    """
    name = ray_run_name(cfg.train.run_name, inputs.fold, inputs.fingerprint)
    result = launch(fold_train_loop, inputs.loop_config() | {"cfg": to_dict(cfg)}, cfg.train, name, storage_path,
                    callbacks=callbacks)
    state, pred = latest_state(result, PRED_FILE)
    run = FoldRun(history=list(state["history"]), epoch=int(state["epoch"]), checkpoint=result.checkpoint.path)
    if pred is None:  # stopped early (train.stop_after_epochs): checkpointed, not evaluated yet
        return run
    run.proba, run.kept = pred["proba"].numpy(), pred["kept"].numpy()
    if inputs.fold == FINAL:
        run.model = state["model"]
    return run


def fold_concurrency(cfg: FinetuneConfig, pending: int) -> int:
    """Folds to train at once: ``train.max_concurrent_folds``, else what the cluster holds now."""
    if cfg.train.max_concurrent_folds is not None:
        return max(1, min(cfg.train.max_concurrent_folds, pending))
    total = ray.cluster_resources()
    t = cfg.train
    fits = int(total.get("CPU", 0) // (t.cpus_per_worker * t.num_workers))
    if t.use_gpu:
        fits = min(fits, int(total.get("GPU", 0) // t.num_workers))
    return max(1, min(fits, pending))


def fit_folds(pending: list[FoldInputs], cfg: FinetuneConfig, storage: str, callbacks: list | None = None,
              ) -> Iterator[tuple[FoldInputs, FoldRun]]:
    """``(inputs, run)`` per pending fold, in completion order, as many at once as fit."""
    limit = fold_concurrency(cfg, len(pending)) if pending else 1
    if limit == 1:
        for inputs in pending:
            yield inputs, fit_fold(inputs, cfg, storage, callbacks)
        return
    # The task only waits on its trainer; the trainer's workers hold the CPUs / GPUs. No
    # runtime_env here: Train V2 is Ray 2.60's default, and a task-level runtime_env would start a
    # separate pool of worker processes (each importing torch) instead of reusing idle ones.
    remote = ray.remote(num_cpus=0)(fit_fold)
    waiting, running = list(pending), {}
    while waiting or running:
        while waiting and len(running) < limit:
            inputs = waiting.pop(0)
            running[remote.remote(inputs, cfg, storage, callbacks)] = inputs
        done, _ = ray.wait(list(running), num_returns=1)
        yield running.pop(done[0]), ray.get(done[0])
