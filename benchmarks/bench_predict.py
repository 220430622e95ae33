"""``activessf predict`` throughput and memory against a bare model loop, side by side in one run.

Rows (each in its own child process, so peak RSS is that row's alone; the bare loop runs before
and after the predict rows and is averaged, so load drift on a shared machine hits both sides):

* ``bare_<runtime>``: one process reads, decodes and resizes the crops, then runs the bundle's
  model in batches (``--threads`` intra-op threads): the floor of what a classifier loop costs;
* ``model_only_<runtime>``: the model alone on crops already in memory (ONNX vs torch on CPU);
* ``predict_ray_<N>``: ``run_predict`` on Ray Data, crops mode (no region filtering, so it is the
  same work as the bare loop): N inputs, crops/s from the first part written to the last;
* ``predict_local_<N>``: the in-process executor, peak RSS at 1k vs 4k inputs (memory flat in N).

The bundle is a randomly initialised classifier (``--model``, ``--size``; speed does not depend
on the weights) written through the same ``write_bundle`` as ``activessf export``.

    .venv/bin/python benchmarks/bench_predict.py --model resnet18 --size 64 --sizes 1000,4000
    .venv/bin/python benchmarks/bench_predict.py --gpu --model resnet50 --size 224 --sizes 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "pbc11"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--sizes", default="1000,4000", help="input counts of the predict rows")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--gpu", action="store_true", help="torch on CUDA for the bare and predict rows")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "bench_predict.json"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--bundle", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_bundle(folder: str, model: str, size: int) -> None:
    import timm

    from activessf.config import to_dict
    from activessf.inference.bundle import BUNDLE_FORMAT, ONNX_INPUT, ONNX_OUTPUT, ProbabilityModel, build_member, package_version
    from activessf.inference.export import write_bundle
    from activessf.regions.config import RegionsConfig

    classes = sorted(p.name for p in (DATA / "labeled").iterdir() if p.is_dir())
    desc = {"builder": "timm", "name": model, "img_size": size, "patch_size": None, "encoder_kwargs": {}}
    net = ProbabilityModel([build_member(desc, len(classes))]).eval()
    cfg = timm.data.resolve_data_config({}, model=net.members[0])
    na = {"mean": None, "std": None}
    meta = {"format": BUNDLE_FORMAT, "activessf_version": package_version(), "created": "benchmark",
            "arm": f"{model} (random init, benchmark)", "run": "none", "members": 1, "kind": "benchmark",
            "model": desc, "classes": classes,
            "input": {"size": size, "mean": list(cfg["mean"]), "std": list(cfg["std"]), "layout": "NCHW"},
            "onnx": {"input": ONNX_INPUT, "output": ONNX_OUTPUT, "batch_axis": "dynamic"},
            "regions": to_dict(RegionsConfig()), "labeled_regions": "central",
            "cv": {"accuracy": na, "macro_pr_auc": na, "macro_f1": na, "n_folds": 0}, "config_digest": "none"}
    write_bundle(net, meta, folder)


def images(n: int) -> list[str]:
    pool = sorted(str(p) for p in (DATA / "unlabeled").glob("*.jpg"))
    pool += sorted(str(p) for p in (DATA / "labeled").rglob("*.jpg"))
    if n > len(pool):
        raise SystemExit(f"only {len(pool)} images under {DATA}")
    return pool[:n]


def child_bare(a, n: int, runtime: str) -> dict:
    from activessf.inference.classifier import CellClassifier
    from activessf.pretrain.images import load_image

    import numpy as np

    clf = CellClassifier(a.bundle, runtime, a.threads, a.gpu, a.batch_size)
    paths = images(n)
    clf.probabilities(np.stack([load_image(p, a.size) for p in paths[:64]]))  # warm-up
    t = time.perf_counter()
    for i in range(0, n, 256):
        clf.probabilities(np.stack([load_image(p, a.size) for p in paths[i:i + 256]]))
    return {"crops_per_s": n / (time.perf_counter() - t)}


def child_model_only(a, n: int, runtime: str) -> dict:
    import numpy as np

    from activessf.inference.classifier import CellClassifier

    clf = CellClassifier(a.bundle, runtime, a.threads, a.gpu, a.batch_size)
    crops = np.random.default_rng(0).integers(0, 255, (n, a.size, a.size, 3), dtype=np.uint8)
    clf.probabilities(crops[:64])
    t = time.perf_counter()
    clf.probabilities(crops)
    return {"crops_per_s": n / (time.perf_counter() - t)}


def child_predict(a, n: int, executor: str) -> dict:
    from activessf.stages.predict import run_predict
    from activessf.inference.config import PredictConfig

    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "in.csv")
        Path(manifest).write_text("source_path\n" + "\n".join(images(n)) + "\n")
        cfg = PredictConfig(mode="crops", threads=a.threads if executor == "local" else 1, batch_size=a.batch_size,
                            contact_sheet_cells=0, use_gpu="true" if a.gpu else "false")
        if executor == "ray":
            from activessf.distributed.runtime import ensure_ray

            ensure_ray()  # start-up is not what this row measures
        t = time.perf_counter()
        s = run_predict(manifest, a.bundle, os.path.join(tmp, "out"), cfg, executor=executor)
        secs = time.perf_counter() - t
    return {"crops_per_s": s["cells"] / secs, "seconds": secs, "cells": s["cells"]}


def run_child(a, kind: str, n: int, arg: str) -> dict:
    cmd = [sys.executable, __file__, "--child", f"{kind}:{n}:{arg}", "--bundle", a.bundle, "--size", str(a.size),
           "--threads", str(a.threads), "--batch-size", str(a.batch_size)] + (["--gpu"] if a.gpu else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it restarts at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_main(a) -> None:
    kind, n, arg = a.child.split(":")
    fn = {"bare": child_bare, "model_only": child_model_only, "predict": child_predict}[kind]
    row = fn(a, int(n), arg)
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row))


def main(argv=None) -> None:
    a = parse_args(argv)
    if a.child:
        return child_main(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    rt = "torch" if a.gpu else "onnx"
    with tempfile.TemporaryDirectory() as tmp:
        a.bundle = os.path.join(tmp, "bundle")
        make_bundle(a.bundle, a.model, a.size)
        rows = {}
        big = max(sizes)
        bare1 = run_child(a, "bare", big, rt)
        for n in sizes:
            rows[f"predict_ray_{n}"] = run_child(a, "predict", n, "ray")
        bare2 = run_child(a, "bare", big, rt)
        rows[f"bare_{rt}"] = {"crops_per_s": (bare1["crops_per_s"] + bare2["crops_per_s"]) / 2,
                              "runs": [bare1["crops_per_s"], bare2["crops_per_s"]], "peak_rss_mb": bare1["peak_rss_mb"]}
        for n in sizes:
            rows[f"predict_local_{n}"] = run_child(a, "predict", n, "local")
        for runtime in (["onnx", "torch"] if not a.gpu else ["torch"]):
            rows[f"model_only_{runtime}"] = run_child(a, "model_only", 2048, runtime)
    report(a, rows, sizes, rt)


def report(a, rows: dict, sizes: list[int], rt: str) -> None:
    bare = rows[f"bare_{rt}"]["crops_per_s"]
    print(f"{'row':<22}{'crops/s':>10}{'vs bare':>9}{'peak RSS MB':>13}")
    for name, r in rows.items():
        print(f"{name:<22}{r['crops_per_s']:>10.1f}{r['crops_per_s'] / bare:>9.2f}{r['peak_rss_mb']:>13.0f}")
    out = {"model": a.model, "size": a.size, "threads": a.threads, "gpu": a.gpu, "machine": platform.platform(),
           "cpus": os.cpu_count(), "rows": rows}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
