"""MAE pretraining throughput: Ray Train V2 loop vs the same engine in a plain PyTorch loop.

Rows, measured side by side in one run on the same images, model and engine
(``activessf.engine.pretrain_engine.fit``):

* ``plain``  - single process, ``--threads`` torch threads, batches sliced from memory;
  run before *and* after the Ray row and averaged, so load drift on a shared machine hits
  both sides alike;
* ``ray_1w`` - ``TorchTrainer`` with one worker of ``--threads`` CPUs, data from a materialised
  Ray Dataset through ``get_dataset_shard().iter_torch_batches``; the like-for-like row
  (ratio = ray_1w / plain, target >= 0.95);
* ``ray_Nw`` - with ``--workers N`` > 1, N DDP (gloo) workers: scaling context only;
* ``method_<name>`` - with ``--methods mae,mocov3,convmae,mixmim``: the plain engine once per
  method on the same images and encoder size (images/s of each pretraining method). ConvMAE's
  stages are ``--convmae-dims`` wide with depths ``1, 1, --depth``; MoCo's MLPs are
  ``--proj-hidden-dim`` wide.

Images/s come from the workers' own epoch timing (Ray start-up, worker-group creation and
dataset planning are excluded); the first ``--warmup-epochs`` epochs of every row are dropped.

With ``--gpu``: ViT-B/16 MAE (MAE defaults, bf16 autocast) at 224 px on one GPU, plain and a
1-GPU Ray worker, reporting images/s and peak GPU memory (``torch.cuda.max_memory_allocated``).

    .venv/bin/python benchmarks/bench_pretrain.py --images 128 --epochs 3
    .venv/bin/python benchmarks/bench_pretrain.py --gpu --images 512 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.config import build_config, to_dict  # noqa: E402
from activessf.engine.pretrain_engine import fit  # noqa: E402
from activessf.engine.state import seed_everything  # noqa: E402
from activessf.models.registry import build_method  # noqa: E402
from activessf.pretrain.config import PretrainConfig  # noqa: E402
from activessf.pretrain.images import list_images, load_images  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pbc11" / "unlabeled"))
    p.add_argument("--images", type=int, default=128, help="images (first N by name)")
    p.add_argument("--encoder", default="vit_tiny_patch16_224")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--patch-size", type=int, default=None, help="override the encoder's patch size")
    p.add_argument("--depth", type=int, default=None, help="encoder depth override (timm kwarg)")
    p.add_argument("--decoder-dim", type=int, default=128)
    p.add_argument("--decoder-depth", type=int, default=2)
    p.add_argument("--decoder-heads", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs per row")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="torch threads per process")
    p.add_argument("--workers", type=int, default=1, help="extra Ray row with this many DDP workers if > 1")
    p.add_argument("--methods", default="", help="comma list: add a plain-engine row per method")
    p.add_argument("--convmae-dims", default="64,128,192", help="ConvMAE stage widths for --methods")
    p.add_argument("--proj-hidden-dim", type=int, default=1024, help="MoCo v3 MLP width for --methods")
    p.add_argument("--gpu", action="store_true", help="ViT-B/16 MAE bf16 on one GPU (overrides model args)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "bench_pretrain.json")
    return p.parse_args(argv)


def method_sets(args: argparse.Namespace, method: str) -> list[str]:
    """Overrides selecting ``method`` at the bench's model size."""
    sets = [f"model.method={method}", f"model.mocov3.proj_hidden_dim={args.proj_hidden_dim}"]
    dims = [int(d) for d in args.convmae_dims.split(",")]
    heads = max(1, dims[2] // 64)
    return sets + [f"model.convmae.dims={dims}", f"model.convmae.depths=[1, 1, {args.depth or 12}]", f"model.convmae.heads={heads}"]


def make_config(args: argparse.Namespace, workers: int, gpu: bool, method: str = "mae") -> PretrainConfig:
    """Bench config: tiny model on CPU, or the MAE ViT-B/16 defaults with ``--gpu``."""
    sets = method_sets(args, method) + [f"optim.batch_size={args.batch_size}", f"optim.epochs={args.epochs}", "optim.warmup_epochs=1"]
    sets += [f"train.num_workers={workers}", f"train.cpus_per_worker={args.threads}", "train.log_every=0"]
    sets += ["train.shuffle_buffer=0", "train.checkpoint_every=1000", "train.keep_checkpoints=1"]
    if gpu:
        sets += ["model.encoder=vit_base_patch16_224", "model.img_size=224", "train.use_gpu=true", "train.precision=bf16"]
    else:
        sets += [f"model.encoder={args.encoder}", f"model.img_size={args.img_size}"]
        decoder = f"{{dim: {args.decoder_dim}, depth: {args.decoder_depth}, heads: {args.decoder_heads}}}"
        sets += [f"model.{m}.decoder={decoder}" for m in ("mae", "convmae", "mixmim")]
        if args.patch_size:
            sets.append(f"model.patch_size={args.patch_size}")
        if args.depth:
            sets.append(f"model.encoder_kwargs={{depth: {args.depth}}}")
    return build_config(PretrainConfig, None, sets)


def timed(history: list[dict], warmup: int) -> dict:
    """Throughput over the epochs after ``warmup`` (total images / total slowest-worker seconds)."""
    kept = history[warmup:] or history[-1:]
    images = sum(r["images"] for r in kept)
    seconds = sum(r["seconds"] for r in kept)
    row = {"epochs_timed": len(kept), "images": images, "seconds": seconds, "images_per_s": images / seconds}
    peaks = [r["peak_gpu_mem_gb"] for r in kept if "peak_gpu_mem_gb" in r]
    if peaks:
        row["peak_gpu_mem_gb"] = max(peaks)
    return row


def run_plain(images: np.ndarray, cfg: PretrainConfig, threads: int, warmup: int) -> dict:
    """The engine in this process; batches are slices of a shuffled in-memory tensor."""
    torch.set_num_threads(threads)
    seed_everything(cfg.train.seed)
    device = torch.device("cuda" if cfg.train.use_gpu else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    method = build_method(cfg.model.method, cfg).to(device)
    data = torch.from_numpy(images)
    bs = cfg.optim.batch_size
    num_batches = (len(data) + bs - 1) // bs

    def batches(epoch: int):
        order = torch.randperm(len(data))
        return ({"image": data[order[i : i + bs]]} for i in range(0, len(data), bs))

    history = fit(method, cfg, batches, num_batches, device)
    row = timed(history, warmup)
    if device.type == "cuda":
        row["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def run_ray(images: np.ndarray, cfg: PretrainConfig, warmup: int) -> dict:
    """A fresh Ray Train V2 run (unique name, throw-away storage); workers time themselves."""
    from activessf.distributed.pretrain import fit_ray
    from activessf.distributed.pretrain_data import dataset_from_array

    ds = dataset_from_array(images)
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as storage:
        cfg.train.run_name = f"bench-{uuid.uuid4().hex[:8]}"
        run = fit_ray(ds, cfg, storage, num_rows=len(images))
    return timed(run["history"], warmup)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import ray

    paths = list_images(args.data)[: args.images]
    size = 224 if args.gpu else args.img_size
    images = load_images(paths, size)
    gpus = 1 if args.gpu else 0
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray.init(num_cpus=max(args.workers, 1) * args.threads + 1, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    cfg1 = make_config(args, 1, args.gpu)
    rows = {"plain_a": run_plain(images, cfg1, args.threads, args.warmup_epochs)}
    rows["ray_1w"] = run_ray(images, make_config(args, 1, args.gpu), args.warmup_epochs)
    rows["plain_b"] = run_plain(images, cfg1, args.threads, args.warmup_epochs)
    if args.workers > 1 and not args.gpu:
        rows[f"ray_{args.workers}w"] = run_ray(images, make_config(args, args.workers, False), args.warmup_epochs)
    for method in filter(None, args.methods.split(",")):
        rows[f"method_{method}"] = run_plain(images, make_config(args, 1, args.gpu, method), args.threads, args.warmup_epochs)
    ray.shutdown()
    plain = (rows["plain_a"]["images_per_s"] + rows["plain_b"]["images_per_s"]) / 2
    report = {
        "device": torch.cuda.get_device_name(0) if args.gpu else f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
        "load_avg_1m": os.getloadavg()[0],
        "images": len(images),
        "threads_per_process": args.threads,
        "config": to_dict(cfg1),
        "rows": rows,
        "plain_images_per_s": plain,
        "ratio_ray_1w_over_plain": rows["ray_1w"]["images_per_s"] / plain,
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


def print_table(report: dict) -> None:
    print(f"device: {report['device']}  images: {report['images']}  threads/process: {report['threads_per_process']}")
    print(f"{'row':<15} {'images/s':>10} {'epochs':>7} {'seconds':>9} {'peak GB':>8}")
    for name, row in report["rows"].items():
        peak = f"{row['peak_gpu_mem_gb']:.2f}" if "peak_gpu_mem_gb" in row else "-"
        print(f"{name:<15} {row['images_per_s']:>10.1f} {row['epochs_timed']:>7} {row['seconds']:>9.2f} {peak:>8}")
    print(f"ray_1w / plain (mean of plain_a, plain_b): {report['ratio_ray_1w_over_plain']:.3f}")


if __name__ == "__main__":
    main()
