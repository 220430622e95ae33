"""Fine-tuning over folds on Ray Train V2: one ``TorchTrainer`` run per fold, and the stage entry.

Each fold trains on the other folds' images and predicts its own (the folds file is shared by
every method, so comparisons are paired). Workers run the plain engine
(``activessf.finetune.engine``) on their slice of each epoch, the model wrapped by
``ray.train.torch.prepare_model`` (DDP; gloo on CPU). Checkpoints and resumption follow
``activessf.distributed.pretrain``: rank 0 saves ``state.pt`` every ``train.checkpoint_every``
epochs and at the end, where it also stores the test predictions; rerunning with the same
``storage_path``, recipe and run name (``<run_name>_fold<k>_<fingerprint>``) resumes from the
latest checkpoint. A fold whose ``fold_<k>/metrics.json`` records the current recipe's
fingerprint (``activessf.finetune.freshness``) is not rerun; any other is retrained. Folds run
concurrently
as resources allow: each fold's ``TorchTrainer.fit`` runs in a zero-CPU Ray task (the V2 way to
run several trainers from one driver), at most ``train.max_concurrent_folds`` at a time (default:
as many as the cluster's current CPUs / GPUs hold).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train.torch import TorchTrainer

from activessf import console
from activessf.config import from_dict, save_config, to_dict
from activessf.distributed.epochs import watch_epochs
from activessf.distributed.runtime import ensure_ray
from activessf.engine.state import (
    load_state,
    restore_training_state,
    save_state,
    seed_everything,
    training_state,
)
from activessf.evaluation.folds import (
    ensure_folds,
    fold_indices,
    folds_digest,
    num_folds,
    scored_apart,
)
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.data import (  # noqa: E501
    Augment,
    class_weights,
    epoch_order,
    eval_batches,
    load_labeled,
    num_train_batches,
    train_batches,
)
from activessf.finetune.engine import build_loss, build_mixup, evaluate, train_epoch
from activessf.finetune.freshness import finetune_fingerprint, ray_run_name
from activessf.finetune.model import build_classifier, build_ft_training, check_init
from activessf.finetune.outputs import FINAL, final_done, fold_done, load_fold, write_final, write_fold, write_run
from activessf.io.items import crop_items, source_stamp

PRED_FILE = "predictions.pt"


def _restore(model, parts: dict, cfg: FinetuneConfig) -> tuple[int, list[dict]]:
    """Latest Ray checkpoint of this fold's run (resume / recovery), else epoch 0."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return 0, []
    with ckpt.as_directory() as folder:
        state = load_state(folder)
    if state["config"]["model"] != to_dict(cfg)["model"]:
        raise ValueError(f"checkpoint {ckpt.path} has another model section; use a new train.run_name")
    # RNG streams are reseeded per epoch and rank in the loop, so none is restored here.
    epoch = restore_training_state(state, model, parts["optimizer"], parts["scheduler"], parts["scaler"], restore_rng=False)
    return epoch, list(state["history"])


def _global_loss(rec: dict, world: int, device: torch.device) -> None:
    """Image-weighted loss and image count over all ranks."""
    if world == 1 or not dist.is_initialized():
        return
    sums = torch.tensor([rec["loss"] * rec["images"], float(rec["images"])], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    rec.update(loss=float(sums[0]) / max(1.0, float(sums[1])), images=int(sums[1]))


def _report(rec: dict, state: dict | None, proba: dict[str, np.ndarray] | None, epoch: int) -> None:
    """``ray.train.report`` with a checkpoint folder when ``state`` is given (rank 0 writes files)."""
    with tempfile.TemporaryDirectory(prefix="ssf-ft-") as tmp:
        if state is not None:
            save_state(state, tmp)
        if proba is not None:
            torch.save({k: torch.from_numpy(v) for k, v in proba.items()}, os.path.join(tmp, PRED_FILE))
        # Only rank 0 holds files; the other ranks report metrics alone.
        wanted = rec.pop("_checkpoint") and state is not None
        ckpt = ray.train.Checkpoint.from_directory(tmp) if wanted else None
        ray.train.report(rec, checkpoint=ckpt, checkpoint_dir_name=f"epoch_{epoch:04d}" if ckpt else None)


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
    parts = build_ft_training(model, cfg, num_train_batches(len(images), bs, world), device)
    start, history = _restore(model, parts, cfg)
    ddp = ray.train.torch.prepare_model(model)
    mixup, augment = build_mixup(cfg, k), Augment(cfg.aug, size)
    weights = class_weights(labels, k).to(device) if cfg.optim.class_balance == "loss_weights" else None
    loss_fn = build_loss(cfg, mixup, weights)
    stop = cfg.train.stop_after_epochs
    for epoch in range(start + 1, cfg.optim.epochs + 1):
        # Augmentation and drop-path draws depend only on (seed, epoch, rank): a resumed run
        # repeats exactly what an uninterrupted one would have done.
        torch.manual_seed(cfg.train.seed * 1_000_003 + epoch * 1009 + rank)
        order = epoch_order(labels, cfg.optim.class_balance == "sampling", cfg.train.seed * 1_000_003 + epoch)
        rec = train_epoch(ddp, train_batches(images, labels, order, bs, augment, rank, world), parts, loss_fn,
                          device, mixup, cfg.optim.clip_grad)
        _global_loss(rec, world, device)
        rec.update(epoch=epoch, fold=loop_cfg["fold"], workers=world, attempt_start_epoch=start)
        history.append(dict(rec))
        final, stopping = epoch == cfg.optim.epochs, stop is not None and epoch - start >= stop
        rec["_checkpoint"] = final or stopping or epoch % cfg.train.checkpoint_every == 0
        state = proba = None
        if rank == 0 and rec["_checkpoint"]:
            state = training_state(model, parts["optimizer"], parts["scheduler"], parts["scaler"], epoch, to_dict(cfg), history)
        if rank == 0 and final:
            proba = _predict(model, loop_cfg["test_paths"], cfg, augment, device, parts["amp_dtype"], k)
        _report(rec, state, proba, epoch)
        if stopping:
            break


def _predict(model, paths: list[str], cfg: FinetuneConfig, augment: Augment, device, amp_dtype, k: int) -> dict:
    """Test probabilities ``proba`` ``[M, K]`` of the ``kept`` ``[M]`` test rows that decode."""
    if not paths:  # the final fit trains on every row and has no test set
        return {"proba": np.zeros((0, k)), "kept": np.zeros(0, np.int64)}
    test, kept = load_labeled(paths, cfg.model.img_size)
    p = evaluate(model, eval_batches(test, cfg.train.eval_batch_size, augment), device, amp_dtype)
    return {"proba": p.reshape(len(kept), k), "kept": kept}

def _fold_inputs(items: pa.Table, folds: pa.Table, fold: int, classes: list[str]) -> dict[str, Any]:
    path_of = dict(zip(items["id"].to_pylist(), items["path"].to_pylist()))
    ids, labels = folds["id"].to_pylist(), folds["label"].to_pylist()
    train, test = fold_indices(folds, fold)
    pick = lambda rows: ([path_of[ids[r]] for r in rows], [classes.index(labels[r]) for r in rows])  # noqa: E731
    (trp, trl), (tep, tel) = pick(train), pick(test)
    return {"fold": fold, "classes": classes, "train_paths": trp, "train_y": trl, "test_paths": tep, "test_y": tel,
            "test_ids": [ids[r] for r in test]}


def _final_inputs(items: pa.Table, folds: pa.Table, classes: list[str]) -> dict[str, Any]:
    """Inputs of the final fit: every labeled row trains, none is held out."""
    path_of = dict(zip(items["id"].to_pylist(), items["path"].to_pylist()))
    ids, labels = folds["id"].to_pylist(), folds["label"].to_pylist()
    return {"fold": FINAL, "classes": classes, "train_paths": [path_of[i] for i in ids],
            "train_y": [classes.index(lab) for lab in labels], "test_paths": [], "test_y": [], "test_ids": []}


def fit_fold(inputs: dict[str, Any], cfg: FinetuneConfig, storage_path: str, callbacks: list | None = None) -> dict[str, Any]:
    """Train (or resume) one fold's ``TorchTrainer`` run.

    Args:
        inputs: From ``_fold_inputs``: paths and class indices of the fold's train/test rows.
        cfg: Stage config.
        storage_path: Checkpoint root (local absolute path or URI).
        callbacks: Ray Train ``UserCallback``s (``watch_epochs``'s progress).

    Returns:
        ``proba`` float ``[M, K]`` for the ``kept`` ``[M]`` test rows that decoded (None when
        the run stopped early, with ``epoch`` done), ``history`` (per-epoch records),
        ``checkpoint`` (where the last checkpoint lives) and, for the final fit, ``model`` (its
        state dict).
    """
    t = cfg.train
    loop = {k: v for k, v in inputs.items() if k != "test_ids"} | {"cfg": to_dict(cfg)}
    trainer = TorchTrainer(
        fold_train_loop,
        train_loop_config=loop,
        scaling_config=ray.train.ScalingConfig(num_workers=t.num_workers, use_gpu=t.use_gpu,
                                               resources_per_worker={"CPU": t.cpus_per_worker}),
        run_config=ray.train.RunConfig(
            name=ray_run_name(t.run_name, inputs["fold"], inputs.get("fingerprint")), storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=t.keep_checkpoints),
            callbacks=callbacks or [],
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"fold {inputs['fold']} finished without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        state = load_state(folder)
        if not os.path.exists(os.path.join(folder, PRED_FILE)):
            # Stopped early (train.stop_after_epochs): checkpointed, not evaluated yet.
            return {"proba": None, "epoch": int(state["epoch"]), "history": list(state["history"])}
        pred = torch.load(os.path.join(folder, PRED_FILE), weights_only=True)
    out = {"proba": pred["proba"].numpy(), "kept": pred["kept"].numpy(), "history": list(state["history"]),
           "checkpoint": result.checkpoint.path}
    return out | ({"model": state["model"]} if inputs["fold"] == FINAL else {})


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


def _fit_folds(pending: list[dict], cfg: FinetuneConfig, storage: str, callbacks: list | None = None,
               ) -> Iterator[tuple[dict, dict]]:
    """``(inputs, fit_fold result)`` per fold, in completion order."""
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


def _labeled_items(labeled: str) -> pa.Table:
    items = crop_items(labeled, labeled=True)
    items = items.filter(pa.compute.is_valid(items["label"]))
    if items.num_rows == 0:
        raise FileNotFoundError(f"{labeled}: no labeled images (expected <CLASS>/<image> folders)")
    return items


def _train_pending(pending: list[dict], cfg: FinetuneConfig, storage: str, output: str, classes: list[str],
                   fp: str) -> list:
    """Train the pending folds (and final fit) with an epoch bar; write each; the stopped folds."""
    stopped, epochs = [], len(pending) * cfg.optim.epochs
    with watch_epochs(output, console.label("finetune"), epochs) as callbacks:
        for inputs, run in _fit_folds(pending, cfg, storage, callbacks):
            if run["proba"] is None:
                console.say(f"finetune: fold {inputs['fold']} stopped after epoch {run['epoch']}; rerun to resume")
                stopped.append(inputs["fold"])
            elif inputs["fold"] == FINAL:
                write_final(output, run, classes, cfg, fingerprint=fp)
                console.detail(f"finetune: final fit on all {len(inputs['train_y'])} labeled crops done "
                               f"({cfg.method_name()})", err=False)
            else:
                write_fold(output, inputs, run, cfg.method_name())
                console.detail(f"finetune: fold {inputs['fold']} done ({cfg.method_name()})", err=False)
    return stopped


def run_finetune(labeled: str, output: str, cfg: FinetuneConfig, folds_path: str | None = None) -> dict[str, Any]:
    """Fine-tune on every fold of ``labeled`` and write per-fold and run outputs to ``output``.

    Args:
        labeled: ImageFolder of labeled crops (``<CLASS>/<image>``), region folder or manifest.
        output: Run folder (local).
        cfg: Stage config.
        folds_path: Shared folds file; created on first use (default ``<output>/folds.parquet``).

    Returns:
        ``completed``; when True the paths (``metrics``, ``confusion``, ``folds``) and the run
        ``report``; when False (``train.stop_after_epochs``) ``stopped_fold`` and ``folds``.
    """
    ensure_ray()
    output = os.path.abspath(output)
    save_config(cfg, output, "finetune_config.yaml")
    items = _labeled_items(labeled)
    folds_path = folds_path or os.path.join(output, "folds.parquet")
    folds = ensure_folds(folds_path, items["id"].to_pylist(), items["label"].to_pylist(), cfg.train.n_folds, cfg.train.folds_seed)
    classes = sorted(set(folds["label"].to_pylist()))
    storage = cfg.train.storage_path or os.path.join(output, "ray_runs")
    storage = storage if "://" in storage else os.path.abspath(storage)
    wanted = cfg.train.only_folds if cfg.train.only_folds is not None else range(num_folds(folds))
    fp = finetune_fingerprint(cfg, folds_digest(folds), source_stamp(labeled, items))
    tags = {"fingerprint": fp, "scored_apart": scored_apart(folds, warn="finetune")}
    pending = [_fold_inputs(items, folds, f, classes) | tags for f in wanted if not fold_done(output, f, fp)]
    if pending:
        check_init(cfg.model, len(classes))
    if cfg.train.final_fit and not final_done(output, fp):
        # Trained alongside the folds: it needs no fold's result, only the same recipe.
        pending.append(_final_inputs(items, folds, classes) | tags)
    stopped = _train_pending(pending, cfg, storage, output, classes, fp)
    if stopped:
        return {"completed": False, "stopped_fold": min(stopped, key=str), "folds": str(folds_path)}
    results = [load_fold(output, fold) for fold in wanted]
    extra = {"folds_digest": folds_digest(folds), "folds_path": str(folds_path), "config": to_dict(cfg),
             "fingerprint": fp, "scored_apart": tags["scored_apart"]}
    if final_done(output, fp):
        extra["final_model"] = os.path.join(output, FINAL, "model.safetensors")
    paths = write_run(output, results, classes, cfg.method_name(), extra)
    return paths | {"folds": str(folds_path), "completed": True}
