"""Self-supervised pretraining on Ray Train V2: the worker loop and the run.

Each worker runs the plain engine (``activessf.engine.pretrain_engine.fit``) on its shard of a
Ray Dataset, with the model wrapped by ``ray.train.torch.prepare_model`` (DDP; gloo on CPU).
Trainer setup, resume and reports are the shared launcher's (``activessf.distributed.train``):
every ``train.checkpoint_every`` epochs, at the end and when stopping early, rank 0's checkpoint
folder holds ``state.pt`` and each rank adds ``rng_rank{r}.pt`` (its RNG, restored on resume).
The stage entry point (outputs, run keys) is ``activessf.stages.pretrain``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch

from activessf.config import from_dict, to_dict
from activessf.distributed.train import epoch_plan, latest_state, launch, maybe_crash, report_epoch, resume, sum_over_ranks
from activessf.engine.pretrain_engine import fit, pretrain_training
from activessf.engine.state import rng_state, save_state, seed_everything, set_rng_state
from activessf.models.encoder import load_init_checkpoint
from activessf.models.registry import build_method
from activessf.pretrain.config import PretrainConfig


def _restore(method, training, cfg: PretrainConfig, rank: int) -> tuple[int, list[dict]]:
    """Latest Ray checkpoint (resume / recovery) with this rank's RNG, else the optional init checkpoint."""

    def rank_rng(folder: Path, state: dict) -> None:
        rng_file = folder / f"rng_rank{rank}.pt"
        set_rng_state(torch.load(rng_file, weights_only=True) if rng_file.exists() else state["rng"])

    resumed = resume(method, training, to_dict(cfg), on_folder=rank_rng)
    if resumed is None and cfg.init_checkpoint:
        load_init_checkpoint(method, cfg.init_checkpoint)
    return resumed or (0, [])


class _EpochHook:
    """After each epoch: global metrics, ``ray.train.report`` (+ checkpoint), test fault hook."""

    def __init__(self, cfg: PretrainConfig, method, training, start: int, loop_cfg: dict) -> None:
        ctx = ray.train.get_context()
        self.cfg, self.method, self.training, self.start, self.loop_cfg = cfg, method, training, start, loop_cfg
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()

    def __call__(self, record: dict, history: list[dict]) -> None:
        record.update(worker_images_per_s=record["images_per_s"], workers=self.world, attempt_start_epoch=self.start,
                      torch_threads=torch.get_num_threads())
        sum_over_ranks(record, self.device, slowest=True)
        if self.device.type == "cuda":
            record["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        epoch = record["epoch"]
        plan = epoch_plan(epoch, self.start, self.cfg.optim.epochs, self.cfg.train)
        report_epoch(record, epoch, self._writer(epoch, history) if plan.save else None)
        maybe_crash(self.loop_cfg, epoch)

    def _writer(self, epoch: int, history: list[dict]):
        def write(folder: str) -> None:
            if self.rank == 0:
                save_state(self.training.snapshot(self.method, epoch, to_dict(self.cfg), history), folder)
            save_state(rng_state(), folder, f"rng_rank{self.rank}.pt")

        return write


def train_loop_per_worker(loop_cfg: dict) -> None:
    """Ray Train worker: build, restore, wrap in DDP, train on this worker's shard."""
    cfg = from_dict(PretrainConfig, loop_cfg["cfg"])
    rank = ray.train.get_context().get_world_rank()
    seed_everything(cfg.train.seed + rank)
    device = ray.train.torch.get_device()
    method = build_method(cfg.model.method, cfg).to(device)
    num_batches = loop_cfg["num_batches"]
    training = pretrain_training(method, cfg, num_batches, device)
    start, history = _restore(method, training, cfg, rank)
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

    hook = _EpochHook(cfg, method, training, start, loop_cfg)
    fit(method, cfg, batches, num_batches, device, model=model, training=training, start_epoch=start,
        history=history, on_epoch_end=hook)


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
    num_batches = batches_per_worker(ds.count() if num_rows is None else num_rows, cfg)
    loop = {"cfg": to_dict(cfg), "num_batches": num_batches}
    result = launch(train_loop_per_worker, loop, cfg.train, cfg.train.run_name, storage_path, {"train": ds}, callbacks)
    state, _ = latest_state(result)
    return {"result": result, "state": state, "history": list(state["history"])}
