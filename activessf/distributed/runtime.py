"""Connecting to Ray: an existing cluster when there is one, a local runtime otherwise."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading

import ray

from activessf import console

# Ray Train V2's PlacementGroupCleaner asks the State API (served by the dashboard) every few
# seconds whether the controller lives; a local runtime has no dashboard, and each failed query
# logs a warning that buries a run's own output. The cleaner's other duty (removing a dead
# controller's placement group) is moot there: the runtime ends with the driver.
_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
_STATE_API_NOISE = "State API may be temporarily unavailable"


class _DropStateApiNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _STATE_API_NOISE not in record.getMessage()


def quiet_local_workers() -> None:
    """``worker_process_setup_hook`` of the local runtime: drop the State API noise above.

    It also names the runtime's own GCS in ``RAY_ADDRESS``: without it the cleaner finds "the"
    cluster through /tmp/ray/ray_current_cluster, which any later Ray runtime on the machine
    rewrites; once that one ends, every run's cleaner dies with a GCS-timeout traceback.
    """
    logging.getLogger(_CLEANER_LOGGER).addFilter(_DropStateApiNoise())
    os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)


# Ray Train settings of a one-machine runtime, set before ``ray.init`` so its processes inherit
# them (``setdefault``: the user's environment wins). One machine is never drained or preempted,
# so Train's preemption watcher (an actor process per run) is dropped. The controller polls its
# workers every 2 s by default and several start-up and shut-down steps each wait for a poll;
# measured on 2 CPUs, a trivial 2-worker TorchTrainer.fit took 35 s at 2 s and 33 s at 0.5 s on
# idle cores, 58 s and 40 s on cores another run was using.
LOCAL_TRAIN_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}

# Each Train run is 2-3 worker processes (the fold's zero-CPU task, the controller, a worker of
# fractional CPU), so four folds trained at once are a dozen processes on a 2-core machine, and
# with the pool's idle workers the demo's fine-tuning peaks at ~20. The raylet warns "N PYTHON
# worker processes have been started ... Nx the maximum expected startup concurrency" (pushed to
# the driver, which prints it to stdout past every logger) when the processes it counts reach 4x
# its start-up concurrency, min(cores, num_cpus): it counts all but a reserve of 2 x
# ``max_io_workers`` (the spill/restore workers, 4 by default), so it warns from 16 processes on
# 2 cores. A local runtime reserves 12 IO workers (Ray's setting; a one-machine run of this size
# never spills to disk, so none of them is started): the warning would take 32 processes.
LOCAL_IO_WORKERS = "12"

# True while a runtime ``ensure_ray`` started (or joined) for this process is up; a runtime
# someone else started (a test session, a notebook) is never shut down by us.
_started_here = False


def init_local(num_cpus: int | None = None, **kwargs) -> None:
    """Start a fresh local Ray runtime with ``LOCAL_TRAIN_ENV`` (tests use it too).

    Args:
        num_cpus: CPUs of the runtime (default: the machine's).
        **kwargs: Further ``ray.init`` arguments (e.g. ``log_to_driver``).
    """
    for key, value in LOCAL_TRAIN_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_max_io_workers", LOCAL_IO_WORKERS)
    # address="local": a fresh runtime, never a cluster some other process started on this
    # machine (Ray's auto-detection follows /tmp/ray/ray_current_cluster, which can be stale).
    with _keep_sigterm_handler():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 runtime_env={"worker_process_setup_hook": "activessf.distributed.runtime.quiet_local_workers"},
                 **kwargs)


class _keep_sigterm_handler:
    """Undo ``ray.init``'s SIGTERM handler (``sys.exit(15)``): the caller's own handler (the CLI
    turns SIGTERM into a clean interrupt, exit code 130) stays in charge."""

    def __enter__(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        self.previous = signal.getsignal(signal.SIGTERM) if main else None

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def shutdown_local() -> None:
    """Stop the runtime ``ensure_ray`` started (no-op otherwise); safe to call twice.

    A joined cluster is only disconnected from (``ray.shutdown`` in a driver of a cluster
    leaves the cluster running).
    """
    global _started_here
    if _started_here and ray.is_initialized():
        ray.shutdown()
    _started_here = False


def ensure_ray(num_cpus: int | None = None) -> None:
    """Join the cluster named by ``RAY_ADDRESS`` (as under ``ray job submit``) or start a local runtime.

    Args:
        num_cpus: CPUs for a *local* runtime only; ignored when joining a cluster.
    """
    global _started_here
    if ray.is_initialized():
        return
    # Ray's own records (set-up banners, Ray Data's progress logs) go to the run's log file;
    # worker and controller output stays in Ray's session logs unless --verbose.
    console.route_logs()
    with _keep_sigterm_handler():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=console.verbose())
        else:
            init_local(num_cpus, log_to_driver=console.verbose())
    console.reroute_logs()
    if not _started_here:
        # Ray registers an atexit shutdown too; ours runs first (atexit is last-in, first-out)
        # and the CLI calls shutdown_local itself before its last line.
        atexit.register(shutdown_local)
    _started_here = True


def data_context_quiet(progress: bool = False) -> None:
    """No Ray Data progress bars or execution banners: the stage draws its own ``console.Bar``.

    Args:
        progress: Ray Data's own bars as well (``--verbose`` turns them on too).
    """
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress or console.verbose()
    ctx.print_on_execution_start = False
    console.reroute_logs()  # ray.data configures its logger on import


def model_actors(use_gpu: str, concurrency: int | None) -> tuple[bool, int]:
    """Whether a model actor pool runs on GPUs, and how many actors it has.

    Args:
        use_gpu: ``true``, ``false`` or ``auto`` (GPUs when the cluster has at least one).
        concurrency: Actors asked for (None: one per GPU on GPUs, else one CPU actor).

    Returns:
        ``(on_gpu, actors)``.
    """
    gpus = ray.cluster_resources().get("GPU", 0.0)
    on_gpu = use_gpu == "true" or (use_gpu == "auto" and gpus >= 1)
    return on_gpu, concurrency or (max(1, int(gpus)) if on_gpu else 1)
