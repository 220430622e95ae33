"""Connecting to Ray: an existing cluster when there is one, a local runtime otherwise."""

from __future__ import annotations

import os

import ray


def ensure_ray(num_cpus: int | None = None) -> None:
    """Join the cluster named by ``RAY_ADDRESS`` (as under ``ray job submit``) or start a local runtime.

    Args:
        num_cpus: CPUs for a *local* runtime only; ignored when joining a cluster.
    """
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
    else:
        # address="local": a fresh runtime, never a cluster some other process started on this
        # machine (Ray's auto-detection follows /tmp/ray/ray_current_cluster, which can be stale).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)


def data_context_quiet(progress: bool = True) -> None:
    """Keep Ray Data's progress bars (long work shows progress) but not its verbose logs."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = False
