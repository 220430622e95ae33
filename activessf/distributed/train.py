"""The one Ray Train V2 launcher that pretraining and fine-tuning share.

Driver side: :func:`launch` builds the ``TorchTrainer`` (scaling, failure and checkpoint
configs from the stage's ``train`` section), runs it and returns its result, whose latest
checkpoint :func:`latest_state` reads. Worker side: :func:`resume` restores the latest reported
checkpoint (recovery after a failure, or a rerun with the same run name and storage path),
:func:`sum_over_ranks` turns a worker's epoch record into the global one, :func:`epoch_plan` says
when to checkpoint, and :func:`report_epoch` reports the record with an optional checkpoint.

Checkpoints and resumption (Ray 2.60, Train V2): a checkpoint folder holds ``state.pt``
(``engine.training.TrainingState.snapshot``) plus whatever the stage adds. Ray merges the
ranks' folders into ``<storage_path>/<run name>/epoch_NNNN``. A worker failure restarts the
worker group up to ``train.max_failures`` times and ``ray.train.get_checkpoint()`` then gives the
latest reported checkpoint; rerunning with the same storage path and run name reloads the
controller's snapshot, so the same holds across processes.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Protocol

import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train.torch import TorchTrainer

from activessf.engine.state import load_state
from activessf.engine.training import TrainingState
from activessf.io import fs as afs

# Test-only fault injection: the last rank of a run exits hard once after this epoch. Read by
# the driver when a run starts, so no product config carries it (tests set it per test).
CRASH_ENV = "ACTIVESSF_TEST_CRASH_EPOCH"


class RunSettings(Protocol):
    """The ``train.*`` fields of a stage that say how its Ray Train run executes."""

    num_workers: int
    use_gpu: bool
    cpus_per_worker: float
    max_failures: int
    keep_checkpoints: int | None
    checkpoint_every: int
    stop_after_epochs: int | None


def require_train_v2() -> None:
    """Fail early if Ray Train V1 is active (``RAY_TRAIN_V2_ENABLED=0``)."""
    if not TorchTrainer.__module__.startswith("ray.train.v2"):
        raise RuntimeError("training needs Ray Train V2; unset RAY_TRAIN_V2_ENABLED=0")


def storage_root(storage_path: str | None, output: str) -> str:
    """Where a stage's Ray runs live: ``train.storage_path`` (absolute or a URI), else ``<output>/ray_runs``."""
    storage = storage_path or afs.join(output, "ray_runs")
    return storage if afs.is_remote(storage) else os.path.abspath(storage)


def launch(loop: Callable[[dict], None], loop_config: dict, run: RunSettings, name: str, storage_path: str,
           datasets: dict | None = None, callbacks: list | None = None) -> ray.train.Result:
    """Run (or resume) one ``TorchTrainer`` run and return its result.

    Args:
        loop: The per-worker function; it receives ``loop_config`` (plus ``fault`` in tests).
        loop_config: Plain, picklable inputs of the loop.
        run: The stage's ``train`` section.
        name: Ray run name; the same name and storage path resume.
        storage_path: Checkpoint root (local absolute path or URI).
        datasets: Ray Datasets the workers shard (``ray.train.get_dataset_shard``).
        callbacks: Ray Train ``UserCallback``s (e.g. ``epochs.watch_epochs``' progress).

    Returns:
        The Ray ``Result``; it always has a checkpoint (a run without one is an error).
    """
    require_train_v2()
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config | _fault_plan(storage_path, name),
        scaling_config=ray.train.ScalingConfig(num_workers=run.num_workers, use_gpu=run.use_gpu,
                                               resources_per_worker={"CPU": run.cpus_per_worker}),
        run_config=ray.train.RunConfig(
            name=name, storage_path=storage_path, callbacks=callbacks or [],
            failure_config=ray.train.FailureConfig(max_failures=run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=run.keep_checkpoints),
        ),
        datasets=datasets,
        dataset_config=_ordered_ingest() if datasets else None,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run {name} finished without a checkpoint")
    return result


def _ordered_ingest() -> ray.train.DataConfig:
    """Ray Data ingest that hands blocks over in dataset order, not in the order map tasks finish:
    with the loop's seeded shuffle, the same seed then gives the same batches (same result)."""
    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    return ray.train.DataConfig(execution_options=options)


def latest_state(result: ray.train.Result, extra: str | None = None) -> tuple[dict[str, Any], Any]:
    """``state.pt`` of the result's latest checkpoint, and ``extra`` loaded from it (or None)."""
    with result.checkpoint.as_directory() as folder:
        state = load_state(folder)
        path = os.path.join(folder, extra) if extra else None
        other = torch.load(path, weights_only=True) if path and os.path.exists(path) else None
    return state, other


def resume(model: torch.nn.Module, training: TrainingState, config: dict,
           on_folder: Callable[[Path, dict], None] | None = None) -> tuple[int, list[dict]] | None:
    """Restore the latest reported checkpoint of this run into ``model`` and ``training``.

    Args:
        model: The bare model.
        training: Its optimiser and schedule.
        config: The stage's resolved config as a dict; a checkpoint of another ``model``
            section is refused (a new run name starts over).
        on_folder: ``hook(folder, state)`` to read what the stage added to the checkpoint.

    Returns:
        ``(completed epochs, history)``, or None when the run has no checkpoint yet.
    """
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as folder:
        state = load_state(folder)
        if state["config"]["model"] != config["model"]:
            raise ValueError(f"checkpoint {ckpt.path} was trained with another model section; "
                             "use a new train.run_name (or storage_path) to start over")
        # RNG streams: the stage decides (``on_folder``); the loops reseed per epoch and rank.
        epoch = training.restore(state, model, restore_rng=False)
        if on_folder is not None:
            on_folder(Path(folder), state)
    return epoch, list(state["history"])


def sum_over_ranks(record: dict, device: torch.device, slowest: bool = False) -> None:
    """Make a worker's epoch record global: image-weighted ``loss``, summed ``images``.

    With ``slowest``, ``seconds`` becomes the slowest worker's and ``images_per_s`` the global rate.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    sums = torch.tensor([record["loss"] * record["images"], float(record["images"])], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    record.update(loss=float(sums[0]) / max(1.0, float(sums[1])), images=int(sums[1]))
    if slowest:
        seconds = torch.tensor([record["seconds"]], dtype=torch.float64, device=device)
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
        record["seconds"] = float(seconds)
        record["images_per_s"] = record["images"] / record["seconds"] if record["seconds"] > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """What happens after an epoch: ``save`` a checkpoint; the run is ``final`` or ``stopping``."""

    save: bool
    final: bool
    stopping: bool


def epoch_plan(epoch: int, start: int, epochs: int, run: RunSettings) -> EpochPlan:
    """Checkpoint every ``train.checkpoint_every`` epochs, at the end and when stopping early.

    Args:
        epoch: Completed epochs (1-based count).
        start: Completed epochs when this attempt started.
        epochs: Epochs of the whole run.
        run: The stage's ``train`` section (``checkpoint_every``, ``stop_after_epochs``).
    """
    final = epoch >= epochs
    stopping = run.stop_after_epochs is not None and epoch - start >= run.stop_after_epochs
    return EpochPlan(final or stopping or epoch % run.checkpoint_every == 0, final, stopping)


def report_epoch(record: dict, epoch: int, write: Callable[[str], None] | None = None) -> None:
    """``ray.train.report`` the record, with a checkpoint folder filled by ``write(folder)`` if given.

    Every rank calls it each epoch; ranks without files pass ``write=None``.
    """
    with tempfile.TemporaryDirectory(prefix="ssf-ckpt-") as tmp:
        ckpt = None
        if write is not None:
            write(tmp)
            ckpt = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(dict(record), checkpoint=ckpt, checkpoint_dir_name=f"epoch_{epoch:04d}" if ckpt else None)


def _fault_plan(storage_path: str, name: str) -> dict:
    epoch = os.environ.get(CRASH_ENV)
    if not epoch:
        return {}
    return {"fault": {"epoch": int(epoch), "marker": os.path.join(storage_path, f".{name}.crash_done")}}


def maybe_crash(loop_config: dict, epoch: int) -> None:
    """Test hook (``ACTIVESSF_TEST_CRASH_EPOCH``): the last rank dies like a lost process, once a run."""
    fault = loop_config.get("fault")
    ctx = ray.train.get_context()
    if not fault or fault["epoch"] != epoch or ctx.get_world_rank() != ctx.get_world_size() - 1:
        return
    if os.path.exists(fault["marker"]):
        return
    Path(fault["marker"]).touch()
    # Reports are collected by the controller asynchronously: wait until this epoch's checkpoint
    # is committed, else a process dying right after report() can lose it.
    ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
    os._exit(1)
