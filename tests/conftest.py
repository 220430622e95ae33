"""Shared fixtures: the real data beside the project, and one Ray session for the few Ray tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The trained-model fixtures (fine-tune with final fit, exported bundle), built once a session.
pytest_plugins = ["tests.trained", "tests.s3"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ACTIVESSF_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real pbc11 and bccd images. Its absence is an error, not a skip."""
    if not (SHARED_DATA / "pbc11").is_dir():
        raise FileNotFoundError(f"real test data not found at {SHARED_DATA} (set ACTIVESSF_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session(s3_server):
    """One local Ray runtime for the whole session (2 CPUs, no dashboard).

    Started after the session's S3 server (``tests/s3.py``), so its workers inherit the variables
    that point every S3 client at 127.0.0.1 with fake credentials: a Ray test can read and write
    ``s3://`` in this process, and none can ever reach a real bucket.
    """
    import ray

    from activessf.distributed.runtime import init_local

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    # The product's local runtime (never another cluster on this machine, Train's fast polling).
    init_local(num_cpus=2, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(items):
    """Mark every test that starts Ray (directly or through a trained-model fixture) ``ray``.

    ``make test-fast`` (``-m "not ray"``) is then the pure suite, a couple of minutes on 2 CPUs.
    """
    for item in items:
        if {"ray_session", "local_head", "finished_run", "bundle"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)
