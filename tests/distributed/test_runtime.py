"""The local Ray runtime: Train settings and what its worker processes are told."""

import os

import ray

from activessf.distributed.runtime import LOCAL_TRAIN_ENV


@ray.remote
def _worker_view() -> tuple[str | None, str, str | None]:
    return os.environ.get("RAY_ADDRESS"), ray.get_runtime_context().gcs_address, \
        os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")


def test_local_workers_name_their_own_cluster_and_train_settings(ray_session):
    address, gcs, interval = ray.get(_worker_view.remote())
    # Not whatever /tmp/ray/ray_current_cluster says (another, possibly dead, runtime).
    assert address == gcs
    assert interval == LOCAL_TRAIN_ENV["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"]
