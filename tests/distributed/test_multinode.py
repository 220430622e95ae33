"""A Ray cluster of a head and two worker nodes on 127.0.0.1 that loses a worker node mid-stage.

``ray.cluster_utils.Cluster`` starts three nodes (1 CPU each; the head alone has the custom
resource ``head``, so a placeholder can hold its CPU while Train must go to a worker node). The
cluster lives in one child process (``python -m tests.distributed.test_multinode``) that runs
both parts in turn, a fresh worker node replacing the first part's lost one: it never meets the
session's Ray runtime, and a node it kills cannot take this process with it.

- Region filtering over 240 pbc11 images spread over the three nodes; once crops appear, one
  worker node is removed. Ray retries the lost tasks elsewhere; the stage's manifest, regions and
  crops equal a run of the same stage in one process (no input lost, none twice).
- MAE pretraining with one Train worker on a worker node (``train.max_failures=1``); once the
  Train controller has registered its first checkpoint, that node is removed. Train restarts the worker group on a node left (the
  other worker node or the head, whichever has the free CPU) from the last checkpoint and finishes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, SHARED_DATA

N_IMAGES = 240
REGIONS = ["crop_size=32", "contact_sheet_images=0", "batch_size=8"]
PARTS = ("regions", "pretrain")


def _child(root: Path) -> dict:
    """Run both parts of this module in one child process (one cluster); their JSON reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    # A throwaway loopback cluster: token authentication off, as for the job test's head.
    env.update(RAY_AUTH_MODE="disabled", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    out = subprocess.run([sys.executable, "-m", "tests.distributed.test_multinode", str(root)], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1000)
    reports = [root / f"{part}.json" for part in PARTS]
    assert out.returncode == 0 and all(r.is_file() for r in reports), out.stdout[-3000:] + out.stderr[-5000:]
    return {part: json.loads(r.read_text()) for part, r in zip(PARTS, reports)}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """The child's reports: the region stage losing a node, then pretraining losing another."""
    got = _child(tmp_path_factory.mktemp("multinode"))
    for part in PARTS:  # seen with -s
        print(part, json.dumps({k: v for k, v in got[part].items() if k not in ("cluster", "single", "history")}))
    return got


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(1100)
def test_region_stage_survives_a_lost_node(reports):
    got = reports["regions"]
    assert got["killed_after_crops"] > 0 and got["crops_at_end"] > got["killed_after_crops"], got
    assert got["nodes_alive"] == 2 and len(got["nodes_that_worked"]) >= 2, got
    assert got["inputs"] == N_IMAGES and got["cluster"] == got["single"], got["diff"]
    assert got["crops"] == got["regions"] > N_IMAGES // 2  # one crop file per region row, no strays


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(1100)
def test_pretraining_resumes_on_the_remaining_node(reports):
    got = reports["pretrain"]
    assert got["final_node"] and got["killed_node"] not in (got["final_node"], got["head_node"]), got
    history = got["history"]
    assert [r["epoch"] for r in history] == list(range(1, got["epochs"] + 1)), history
    # The epochs after the failure were trained by an attempt that started from a checkpoint.
    restarted = [r for r in history if r["attempt_start_epoch"] > 0]
    assert restarted and restarted[0]["epoch"] == restarted[0]["attempt_start_epoch"] + 1, history
    assert restarted[0]["attempt_start_epoch"] >= got["killed_after_epoch"], history
    assert got["completed"] and got["encoder_bytes"] > 0


# --- the child process -------------------------------------------------------------------------


_CLUSTERS: list = []


def _cluster():
    """Head (1 CPU, resource ``head``) and two live worker nodes (1 CPU each); this process connected.

    The second call (the pretraining part) reuses the first part's cluster and adds a fresh worker
    node in place of the one it killed: one cluster start-up for both parts.
    """
    import ray
    from ray.cluster_utils import Cluster

    if _CLUSTERS:
        cluster = _CLUSTERS[0]
        cluster.add_node(num_cpus=1, resources={"worker_2": 1})
        cluster.wait_for_nodes()
        return cluster, list(cluster.worker_nodes)
    for attempt in (1, 2):
        cluster = Cluster(initialize_head=False)
        try:
            cluster.add_node(num_cpus=1, resources={"head": 1}, include_dashboard=False, dashboard_port=_free_port())
            workers = [cluster.add_node(num_cpus=1, resources={f"worker_{i}": 1}) for i in range(2)]
            cluster.wait_for_nodes()
            break
        except Exception:  # noqa: BLE001 - Ray gives a raylet 30 s to register; a loaded machine may miss it
            cluster.shutdown()
            if attempt == 2:
                raise
    ray.init(address=cluster.address, log_to_driver=False)
    _CLUSTERS.append(cluster)
    return cluster, workers


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(expect: int, wait_s: float = 60.0) -> int:
    """Nodes the GCS reports alive, after waiting (bounded) until at most ``expect`` are.

    The GCS notices a SIGKILLed raylet only after its health checks fail, which on a loaded
    machine can come after a short stage has finished.
    """
    import ray

    deadline = time.time() + wait_s
    while True:
        alive = sum(1 for n in ray.nodes() if n["Alive"])
        if alive <= expect or time.time() >= deadline:
            return alive
        time.sleep(1.0)


def _table_rows(path: str, columns: list[str]) -> list[tuple]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    return sorted(zip(*(table[c].to_pylist() for c in columns)))


def _observe_nodes(log: Path):
    """Wrap the region map so each batch appends the node that ran it to ``log`` (observation only)."""
    import activessf.distributed.regions as stage

    inner = stage.process_batch

    def process_batch(batch, **kw):
        import ray

        with open(log, "a") as fh:
            fh.write(ray.get_runtime_context().get_node_id() + "\n")
        return inner(batch, **kw)

    stage.process_batch = process_batch


def _regions_child(root: Path) -> dict:
    import shutil

    from activessf.config import build_config
    from activessf.stages.regions import run_regions
    from activessf.regions.config import RegionsConfig

    pool = root / "pool"
    pool.mkdir()
    for p in sorted((SHARED_DATA / "pbc11" / "unlabeled").glob("*.jpg"))[:N_IMAGES]:
        shutil.copy(p, pool / p.name)
    cfg = build_config(RegionsConfig, None, REGIONS)
    run_regions(str(pool), str(root / "single"), cfg, executor="local")

    cluster, workers = _cluster()
    _observe_nodes(root / "nodes.log")
    out, done = root / "cluster", {}
    thread = threading.Thread(target=lambda: done.update(summary=run_regions(str(pool), str(out), cfg)), daemon=True)
    thread.start()
    crops = lambda: sum(1 for _ in (out / "crops").rglob("*.png")) if (out / "crops").is_dir() else 0  # noqa: E731
    while crops() < 20 and thread.is_alive():
        time.sleep(0.05)
    killed_after = crops()
    cluster.remove_node(workers[1], allow_graceful=False)  # SIGKILL: a node lost, not drained
    thread.join()
    cols_m, cols_r = ["image_id", "status", "reason", "n_regions"], ["region_id", "image_id", "x", "y", "w", "h", "crop_path"]
    single = [_table_rows(str(root / "single" / f), c) for f, c in (("manifest.parquet", cols_m), ("regions.parquet", cols_r))]
    multi = [_table_rows(str(out / f), c) for f, c in (("manifest.parquet", cols_m), ("regions.parquet", cols_r))]
    crop_files = sorted(p.relative_to(out).as_posix() for p in (out / "crops").rglob("*.png"))
    same_bytes = all((out / rel).read_bytes() == (root / "single" / rel).read_bytes() for rel in crop_files)
    return {"inputs": len(multi[0]), "regions": len(multi[1]), "crops": len(crop_files), "killed_after_crops": killed_after,
            "crops_at_end": len(crop_files), "nodes_alive": _alive_nodes(expect=2),
            "nodes_that_worked": sorted(set((root / "nodes.log").read_text().split())),
            "cluster": [multi, same_bytes], "single": [single, True],
            "diff": [len(set(multi[1]) ^ set(single[1])), len(set(multi[0]) ^ set(single[0]))]}


def _train_node() -> str | None:
    """Node of the live Ray Train worker actor (None until it runs)."""
    from ray._private.state import actors

    for a in actors().values():
        if a.get("State") == "ALIVE" and "RayTrainWorker" in a.get("ActorClassName", ""):
            return a["Address"]["NodeID"]
    return None


def _registered(storage: Path) -> list[str]:
    """Checkpoints the Train controller has registered (its snapshot), not folders still uploading:
    a worker lost between its upload and the controller's record restarts from the one before."""
    import re

    snaps = [p.read_text() for p in storage.rglob("checkpoint_manager_snapshot.json")]
    return sorted(set(re.findall(r"epoch_\d{4}", "".join(snaps))))


def _pretrain_child(root: Path) -> dict:
    import ray

    def phase(text: str) -> None:  # where a slow or stuck run was, for the test's message
        with open(root / "phases.log", "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    from activessf.stages.pretrain import run_pretrain
    from tests.models.tiny import tiny_config

    images = sorted((SHARED_DATA / "pbc11" / "unlabeled").glob("*.jpg"))[:96]
    listing = root / "images.txt"
    listing.write_text("\n".join(map(str, images)))
    epochs = 5
    cfg = tiny_config(f"optim.epochs={epochs}", "optim.warmup_epochs=0", "train.num_workers=1",
                      "train.cpus_per_worker=1", "train.max_failures=1", "train.checkpoint_every=1",
                      "train.keep_checkpoints=null", "train.num_reconstructions=0", "train.run_name=multinode",
                      f"train.storage_path={root / 'ray'}")
    cluster, workers = _cluster()
    # The head's CPU is held until the Train worker runs, so it starts on a worker node (losing the
    # head would end the cluster); then freed, so the retried worker group and the data tasks both
    # find a CPU on the two nodes left.
    hold = ray.remote(num_cpus=1, resources={"head": 1})(lambda: time.sleep(3600)).remote()
    head = cluster.head_node.node_id
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(paths=run_pretrain(str(listing), str(root / "out"), cfg)),
                              daemon=True)
    thread.start()
    ckpts = lambda: _registered(root / "ray")  # noqa: E731
    phase("cluster up, pretraining started")
    while _train_node() is None and thread.is_alive():
        time.sleep(0.1)
    phase(f"train worker on {_train_node()}")
    ray.cancel(hold, force=True)
    while not ckpts() and thread.is_alive():
        time.sleep(0.05)
    killed_after_epoch, node = len(ckpts()), _train_node()
    victim = next(w for w in workers if w.node_id == node)
    cluster.remove_node(victim, allow_graceful=False)
    phase(f"killed {node} after {ckpts()}")
    final_node = None
    while thread.is_alive():  # the restarted worker group: where does it run?
        final_node = _train_node() or final_node
        time.sleep(0.1)
    phase(f"pretraining returned; restarted worker on {final_node}")
    paths = done["paths"]
    history = [json.loads(line) for line in Path(paths["metrics"]).read_text().splitlines()]
    return {"epochs": epochs, "history": history, "completed": paths["completed"], "killed_node": node,
            "killed_after_epoch": killed_after_epoch, "head_node": head, "final_node": final_node,
            "encoder_bytes": Path(paths["encoder"]).stat().st_size}


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    for part, run_part in zip(PARTS, (_regions_child, _pretrain_child)):
        (folder / f"{part}.json").write_text(json.dumps(run_part(folder), default=str))
    import ray

    ray.shutdown()
    for c in _CLUSTERS:
        c.shutdown()  # every node's processes (GCS, raylets, workers) stopped
