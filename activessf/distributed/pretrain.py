"""Self-supervised pretraining on Ray Train V2 (``TorchTrainer``), and the stage entry point.

Each worker runs the plain engine (``activessf.engine.pretrain_engine.fit``) on its shard of a
Ray Dataset, with the model wrapped by ``ray.train.torch.prepare_model`` (DDP; gloo on CPU).

Checkpoints and resumption (Ray 2.60, Train V2):

- every ``train.checkpoint_every`` epochs, at the end, and when stopping early, every rank calls
  ``ray.train.report(metrics, checkpoint)``; rank 0's folder holds ``state.pt`` (model,
  optimiser, scheduler, scaler, completed epochs, config, history, its RNG) and each rank adds
  ``rng_rank{r}.pt``. Ray merges the folders into ``<storage_path>/<run_name>_<fp>/epoch_NNNN``,
  ``fp`` a fingerprint of the recipe and the images (``keyed_run``).
- a worker failure (exception or dead process) restarts the whole worker group up to
  ``train.max_failures`` times; ``ray.train.get_checkpoint()`` then returns the latest reported
  checkpoint and training continues from the next epoch.
- rerunning with the same ``storage_path``, ``run_name``, recipe and images resumes (another
  recipe or selection starts a new run): the V2 controller reloads
  ``checkpoint_manager_snapshot.json`` from the run folder, so ``get_checkpoint()`` again gives
  the latest checkpoint. A finished run rerun this way trains nothing and re-exports.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train.torch import TorchTrainer

from activessf import console
from activessf.config import from_dict, save_config, to_dict
from activessf.distributed.epochs import watch_epochs
from activessf.distributed.pretrain_data import build_image_dataset, take_images
from activessf.distributed.runtime import data_context_quiet, ensure_ray
from activessf.engine.optim import build_training
from activessf.engine.pretrain_engine import fit
from activessf.engine.state import load_state, restore_training_state, rng_state, save_state, seed_everything, set_rng_state, training_state  # noqa: E501
from activessf.io.markers import content_stamp, files_stamp, recipe_fingerprint, stage_stamp
from activessf.models.encoder import load_init_checkpoint
from activessf.models.registry import build_method
from activessf.pretrain.config import PretrainConfig
from activessf.pretrain.export import write_outputs
from activessf.pretrain.images import list_images


def require_train_v2() -> None:
    """Fail early if Ray Train V1 is active (``RAY_TRAIN_V2_ENABLED=0``)."""
    if not TorchTrainer.__module__.startswith("ray.train.v2"):
        raise RuntimeError("pretraining needs Ray Train V2; unset RAY_TRAIN_V2_ENABLED=0")


def _restore(method, parts: dict, cfg: PretrainConfig, rank: int) -> tuple[int, list[dict]]:
    """Latest Ray checkpoint if any (resume / recovery), else the optional init checkpoint."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        if cfg.init_checkpoint:
            load_init_checkpoint(method, cfg.init_checkpoint)
        return 0, []
    with ckpt.as_directory() as folder:
        state = load_state(folder)
        if state["config"]["model"] != to_dict(cfg)["model"]:
            raise ValueError(
                f"checkpoint {ckpt.path} was trained with a different model section; "
                "use a new train.run_name (or storage_path) to start over"
            )
        epoch = restore_training_state(state, method, parts["optimizer"], parts["scheduler"], parts["scaler"], restore_rng=False)
        rng_file = Path(folder) / f"rng_rank{rank}.pt"
        set_rng_state(torch.load(rng_file, weights_only=True) if rng_file.exists() else state["rng"])
    return epoch, list(state["history"])


def _all_reduce(record: dict, world: int, device: torch.device) -> None:
    """Global loss (image-weighted), images (sum) and seconds (slowest worker) across ranks."""
    record["worker_images_per_s"] = record["images_per_s"]
    record["workers"] = world
    if world == 1 or not dist.is_initialized():
        return
    sums = torch.tensor([record["loss"] * record["images"], float(record["images"])], dtype=torch.float64, device=device)
    slowest = torch.tensor([record["seconds"]], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    images, seconds = int(sums[1].item()), float(slowest.item())
    record.update(loss=float(sums[0].item()) / max(1, images), images=images, seconds=seconds)
    record["images_per_s"] = images / seconds if seconds > 0 else 0.0


class _EpochHook:
    """After each epoch: global metrics, ``ray.train.report`` (+ checkpoint), test crash hook."""

    def __init__(self, cfg: PretrainConfig, method, parts: dict, start: int, crash_marker: str) -> None:
        ctx = ray.train.get_context()
        self.cfg, self.method, self.parts, self.start = cfg, method, parts, start
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.crash_marker = crash_marker
        self.device = ray.train.torch.get_device()

    def _checkpoint_now(self, epoch: int) -> bool:
        t = self.cfg.train
        stopping = t.stop_after_epochs is not None and epoch - self.start >= t.stop_after_epochs
        return epoch % t.checkpoint_every == 0 or epoch >= self.cfg.optim.epochs or stopping

    def __call__(self, record: dict, history: list[dict]) -> None:
        _all_reduce(record, self.world, self.device)
        record["attempt_start_epoch"] = self.start
        record["torch_threads"] = torch.get_num_threads()
        if self.device.type == "cuda":
            record["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        epoch = record["epoch"]
        with tempfile.TemporaryDirectory(prefix="ssf-ckpt-") as tmp:
            checkpoint = None
            if self._checkpoint_now(epoch):
                if self.rank == 0:
                    p = self.parts
                    state = training_state(self.method, p["optimizer"], p["scheduler"], p["scaler"], epoch, to_dict(self.cfg), history)
                    save_state(state, tmp)
                save_state(rng_state(), tmp, f"rng_rank{self.rank}.pt")
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            name = f"epoch_{epoch:04d}" if checkpoint is not None else None
            ray.train.report(dict(record), checkpoint=checkpoint, checkpoint_dir_name=name)
        self._maybe_crash(epoch)

    def _maybe_crash(self, epoch: int) -> None:
        # Test hook: the last rank dies like a lost process (no Python cleanup), once per run.
        if self.cfg.train.debug_crash_epoch != epoch or self.rank != self.world - 1:
            return
        if os.path.exists(self.crash_marker):
            return
        Path(self.crash_marker).touch()
        # Reports are collected by the controller asynchronously: wait until this epoch's
        # checkpoint is committed, else a process dying right after report() can lose it.
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
        os._exit(1)


def train_loop_per_worker(loop_cfg: dict) -> None:
    """Ray Train worker: build, restore, wrap in DDP, train on this worker's shard."""
    cfg = from_dict(PretrainConfig, loop_cfg["cfg"])
    rank = ray.train.get_context().get_world_rank()
    seed_everything(cfg.train.seed + rank)
    device = ray.train.torch.get_device()
    method = build_method(cfg.model.method, cfg).to(device)
    num_batches = loop_cfg["num_batches"]
    parts = build_training(method, cfg, num_batches, device)
    start, history = _restore(method, parts, cfg, rank)
    model = ray.train.torch.prepare_model(method)
    shard = ray.train.get_dataset_shard("train")
    buffer = cfg.train.shuffle_buffer or None

    def batches(epoch: int):
        seed = cfg.train.seed * 1_000_003 + epoch * 1009 + rank
        # Prefetching on Ray's iterator thread keeps shuffling and collation off the step's path.
        return shard.iter_torch_batches(
            batch_size=cfg.optim.batch_size, dtypes=torch.uint8, local_shuffle_buffer_size=buffer,
            local_shuffle_seed=seed, prefetch_batches=2,
        )

    hook = _EpochHook(cfg, method, parts, start, loop_cfg["crash_marker"])
    fit(method, cfg, batches, num_batches, device, model=model, parts=parts, start_epoch=start, history=history, on_epoch_end=hook)


def batches_per_worker(num_rows: int, cfg: PretrainConfig) -> int:
    """Micro-batches per worker per epoch (Ray Train splits the dataset into equal shards)."""
    rows = num_rows // cfg.train.num_workers
    if rows < 1:
        raise ValueError(f"{num_rows} images cannot feed {cfg.train.num_workers} workers")
    return math.ceil(rows / cfg.optim.batch_size)


def fit_ray(ds: ray.data.Dataset, cfg: PretrainConfig, storage_path: str, num_rows: int | None = None,
            callbacks: list | None = None) -> dict[str, Any]:
    """Run (or resume) a Ray Train V2 pretraining run on ``ds`` (column ``image``).

    Args:
        ds: Images, uint8 ``[S, S, 3]`` per row.
        cfg: Stage config; ``train.run_name`` + ``storage_path`` identify the run.
        storage_path: Absolute local path or object-storage URI for checkpoints.
        num_rows: Rows in ``ds`` if known (else counted).
        callbacks: Ray Train ``UserCallback``s (``watch_epochs``'s progress).

    Returns:
        ``result`` (Ray ``Result``), ``state`` (latest checkpoint's state) and ``history``.
    """
    require_train_v2()
    t = cfg.train
    num_batches = batches_per_worker(ds.count() if num_rows is None else num_rows, cfg)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "cfg": to_dict(cfg),
            "num_batches": num_batches,
            "crash_marker": os.path.join(storage_path, f".{t.run_name}.debug_crash_done"),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker}
        ),
        run_config=ray.train.RunConfig(
            name=t.run_name,
            storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=t.keep_checkpoints),
            callbacks=callbacks or [],
        ),
        datasets={"train": ds},
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"run {t.run_name} finished without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        state = load_state(folder)
    return {"result": result, "state": state, "history": list(state["history"])}


def keyed_run(cfg: PretrainConfig, data: Any, paths: list[str]) -> PretrainConfig:
    """``cfg`` with its Ray run name keyed by the recipe and the images.

    A rerun with another recipe or another selection (the pipeline reruns pretraining when the
    selection changes) must start over, not resume the old run's last checkpoint and export it
    again; the same recipe and data keep the name, so interrupted runs resume.

    Args:
        cfg: Stage config.
        data: As given to ``run_pretrain``; a stage folder stands for its images by its marker.
        paths: The images (``list_images(data)``); else their sizes and mtimes stand for them.
    """
    stamp = stage_stamp(str(data)) if isinstance(data, (str, os.PathLike)) else None
    init = content_stamp(cfg.init_checkpoint) if cfg.init_checkpoint else None
    fp = recipe_fingerprint("pretrain", to_dict(cfg), stamp or files_stamp(paths), init)
    tree = to_dict(cfg)
    tree["train"]["run_name"] = f"{cfg.train.run_name}_{fp[:10]}"
    return from_dict(PretrainConfig, tree)


def run_pretrain(data: str, output: str, cfg: PretrainConfig) -> dict[str, Any]:
    """Pretrain on the images under ``data``; write weights, logs and figures to ``output``.

    Args:
        data: Folder of images, ``.txt`` list of paths, or (later) the data layer's manifest.
        output: Output folder (local).
        cfg: Stage config; ``train.storage_path`` defaults to ``<output>/ray_runs``.

    Returns:
        Paths: ``encoder`` (safetensors), ``metrics`` (JSONL), ``loss_curve``,
        ``reconstructions`` (PNGs), ``config``, ``checkpoint``, plus ``epochs_done`` and ``completed``.
    """
    ensure_ray()
    data_context_quiet(progress=False)
    output = os.path.abspath(output)
    save_config(cfg, output, "pretrain_config.yaml")
    storage = cfg.train.storage_path or os.path.join(output, "ray_runs")
    storage = storage if "://" in storage else os.path.abspath(storage)
    paths = list_images(data)
    ds = build_image_dataset(paths, cfg.model.img_size, materialize=cfg.train.materialize)
    if cfg.train.materialize:
        kept = ds.count()
        console.detail(f"pretrain: {len(paths)} images = {kept} decoded + {len(paths) - kept} rejected (undecodable)",
                       err=False)
    with watch_epochs(output, console.label("pretrain"), cfg.optim.epochs) as callbacks:
        run = fit_ray(ds, keyed_run(cfg, data, paths), storage, callbacks=callbacks)
    method = build_method(cfg.model.method, cfg)
    method.load_state_dict(run["state"]["model"])
    paths: dict[str, Any] = write_outputs(method, run["history"], cfg, output, take_images(ds, cfg.train.num_reconstructions))
    paths["checkpoint"] = run["result"].checkpoint.path
    paths["epochs_done"] = int(run["state"]["epoch"])
    paths["completed"] = paths["epochs_done"] >= cfg.optim.epochs
    return paths
