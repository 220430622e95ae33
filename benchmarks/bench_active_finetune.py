"""The active-learning loop's last round confirmed with a fine-tune: labeled + queried crops -> CNN -> test split.

``bench_active_learning.py`` scores each round with a cheap learner (logistic regression on frozen
features). Here the queries its loop made by the last round on test split 0 (``--splits N``: on
splits 0..N-1, paired per split) are answered by the same oracle and a small CNN is fine-tuned on
the labeled crops plus the answered queries, for the default strategy, random (its first seed) and
no queries at all; macro PR-AUC on the same held-back test split (never queried).

Model: timm ``resnet10t`` at 64 px starting from the ``labeled`` feature backbone of
``bench_selection.py`` (the frozen features the loop used): its stem..layer3 stay frozen (their
activations computed once; ``--flips 1`` adds both flips of every crop as augmentation) and its
last block (layer4) plus a new 11-class head are trained for ``--epochs`` epochs (AdamW,
one-cycle), ``--seeds`` seeds. Only the last block, so that it fits minutes of a loaded 2-core machine; the loop's
learner (logistic regression on the pooled features) is this with layer4 frozen.

    nice -n 5 .venv/bin/python benchmarks/bench_active_finetune.py --sel benchmarks/out/sel16
    nice -n 10 .venv/bin/python benchmarks/bench_active_finetune.py \\
        --loop benchmarks/out/bench_active_learning_evidence16.json     # a --run / capped loop

The backbone, features and labeled start (capped or not) are the loop's (its JSON's ``args``).
Prints a table and writes ``bench_active_finetune*.json`` next to the loop's JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.evaluation.metrics import fold_metrics  # noqa: E402
from benchmarks.active_sources import sources  # noqa: E402
from benchmarks.bench_active_learning import NOT_A_CELL, load  # noqa: E402
from benchmarks.selection_metrics import RARE  # noqa: E402

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def read_crops(paths: list[str], size: int) -> torch.Tensor:
    """``[N, 3, size, size]`` normalised float crops (RGB)."""
    out = np.zeros((len(paths), size, size, 3), np.float32)
    for i, p in enumerate(paths):
        img = cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out[i] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) / 255.0
    return torch.from_numpy(((out - MEAN) / STD).astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def trunk_and_top(weights: str, k: int, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """resnet10t from ``weights`` split into its frozen trunk (stem..layer3) and the trained top
    (layer4, pooling and a new ``k``-class head)."""
    import timm
    from safetensors.torch import load_file

    torch.manual_seed(seed)
    m = timm.create_model("resnet10t", pretrained=False, num_classes=k)
    missing, _ = m.load_state_dict(load_file(weights), strict=False)
    assert set(missing) <= {"fc.weight", "fc.bias"}, missing
    trunk = torch.nn.Sequential(m.conv1, m.bn1, m.act1, m.maxpool, m.layer1, m.layer2, m.layer3).eval()
    return trunk, torch.nn.Sequential(m.layer4, m.global_pool, m.fc)


def trunk_outputs(trunk: torch.nn.Module, x: torch.Tensor, flips: bool = True) -> torch.Tensor:
    """``[N, C, h, w]`` activations of the frozen trunk; with ``flips``, those of both flips of
    every crop appended (``[3N, ...]``: the top's augmentation, computed once)."""
    views = (x, x.flip(3), x.flip(2)) if flips else (x,)
    with torch.no_grad():
        return torch.cat([torch.cat([trunk(b) for b in v.split(256)]) for v in views])


def finetune(train_a: torch.Tensor, train_y: torch.Tensor, test_a: torch.Tensor, top: torch.nn.Module,
             epochs: int, lr: float, seed: int) -> np.ndarray:
    """Train ``top`` on trunk activations ``[V * N, ...]`` (labels ``[N]``, V views); ``[T, K]`` test probabilities."""
    gen = torch.Generator().manual_seed(seed)
    y = train_y.repeat(len(train_a) // len(train_y))
    opt = torch.optim.AdamW(top.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * ((len(train_a) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for _ in range(epochs):
        top.train()
        for idx in torch.randperm(len(train_a), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(top(train_a[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    top.eval()
    with torch.no_grad():
        return torch.cat([top(b).softmax(1) for b in test_a.split(512)]).numpy()


def split_inputs(src, truth: Path, la: dict, split: int, size: int = 64) -> dict:
    """Split ``split``'s loop data (``load``), the labeled start's crops and labels, the test crops."""
    import pyarrow.parquet as pq

    d = load(src, truth, la["test_share"], la["seed"] + split, la.get("cap_per_class"), la["seed"])
    lab = pq.read_table(src.feat_labeled / "features.parquet", columns=["id", "path", "label"]).to_pydict()
    lab_row = {i: (p, c) for i, p, c in zip(lab["id"], lab["path"], lab["label"])}
    pool = pq.read_table(src.regions_pool / "regions.parquet", columns=["region_id", "crop_path"]).to_pydict()
    d["crop"] = {r: str(src.regions_pool / c) for r, c in zip(pool["region_id"], pool["crop_path"])}
    d["row"] = {r: i for i, r in enumerate(d["pool_ids"])}
    d["base_x"] = read_crops([lab_row[i][0] for i in d["lab_ids"]], size)
    d["base_y"] = [d["classes"].index(lab_row[i][1]) for i in d["lab_ids"]]
    d["test_x"] = read_crops([d["crop"][d["pool_ids"][i]] for i in d["test"]], size)
    d["test_y"] = [d["classes"].index(d["answer"][i]) for i in d["test"]]
    return d


def run_arms(d: dict, arms: dict[str, list[str]], weights: str, args) -> dict:
    """Fine-tune the top on the labeled start plus each arm's answered queries; test metrics per arm."""
    classes, row = d["classes"], d["row"]
    trunk, _ = trunk_and_top(weights, len(classes), 0)
    base_a, test_a = trunk_outputs(trunk, d["base_x"], bool(args.flips)), trunk_outputs(trunk, d["test_x"], flips=False)
    results = {}
    for name, ids in arms.items():
        answered = [r for r in ids if d["answer"][row[r]] != NOT_A_CELL]
        a = base_a
        if answered:
            extra = trunk_outputs(trunk, read_crops([d["crop"][r] for r in answered], 64), bool(args.flips))
            # Rows: [labeled, answered] per view (as is, h-flip, v-flip), the order of the labels.
            views = 3 if args.flips else 1
            a = torch.cat([torch.cat([v, e]) for v, e in zip(base_a.chunk(views), extra.chunk(views))])
        y = torch.tensor(d["base_y"] + [classes.index(d["answer"][row[r]]) for r in answered])
        runs = []
        for seed in range(args.seeds):
            top = trunk_and_top(weights, len(classes), seed)[1]
            m = fold_metrics(d["test_y"], finetune(a, y, test_a, top, args.epochs, args.lr, seed), classes)
            runs.append({"macro_pr_auc": m["macro_pr_auc"], "rare": {c: m["per_class_pr_auc"][c] for c in RARE}})
            print(f"  {name} seed {seed}: macro PR-AUC {m['macro_pr_auc']:.4f}", flush=True)
        results[name] = {"answered": len(answered), "runs": runs,
                         "macro_pr_auc": float(np.mean([r["macro_pr_auc"] for r in runs])),
                         "macro_pr_auc_std": float(np.std([r["macro_pr_auc"] for r in runs])),
                         "rare": {c: float(np.mean([r["rare"][c] for r in runs])) for c in RARE}}
    return results


def report(per_split: list[dict]) -> tuple[dict, list[float]]:
    """Mean over splits per arm (printed as a table) and the paired default - random gaps in points."""
    mean = {name: {"answered": float(np.mean([r[name]["answered"] for r in per_split])),
                   "macro_pr_auc": float(np.mean([r[name]["macro_pr_auc"] for r in per_split])),
                   "macro_pr_auc_std": float(np.mean([r[name]["macro_pr_auc_std"] for r in per_split])),
                   "rare": {c: float(np.mean([r[name]["rare"][c] for r in per_split])) for c in RARE}}
            for name in per_split[0]}
    print("| training set | answered queries | macro PR-AUC (mean; seed std) | " + " | ".join(RARE) + " |")
    print("|" + " --- |" * (3 + len(RARE)))
    for name, r in mean.items():
        print(f"| labeled + {name} | {r['answered']:.0f} | {r['macro_pr_auc']:.4f} ± {r['macro_pr_auc_std']:.4f} | "
              + " | ".join(f"{r['rare'][c]:.3f}" for c in RARE) + " |")
    gaps = [100 * (r["default"]["macro_pr_auc"] - r["random (seed 0)"]["macro_pr_auc"]) for r in per_split]
    return mean, gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sel", default="benchmarks/out/sel16")
    ap.add_argument("--loop", help="bench_active_learning.py JSON (default <sel>/bench_active_learning.json); its "
                    "args name the features, backbone and labeled start")
    ap.add_argument("--out", help="JSON path (default: the loop JSON's name with bench_active_finetune)")
    ap.add_argument("--truth", default=str(ROOT.parent / "shared" / "data" / "pbc11" / "unlabeled_truth.csv"))
    ap.add_argument("--splits", type=int, default=1, help="test splits 0..N-1 (a loop JSON with queried_per_split)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--flips", type=int, default=0, help="1: train on both flips of every crop too (3x the cost)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loop_path = Path(args.loop) if args.loop else Path(args.sel) / "bench_active_learning.json"
    loop = json.loads(loop_path.read_text())
    la = loop["args"]
    src = sources(la["sel"], la.get("run"))  # the loop's own inputs, and its labeled start
    queried = loop.get("queried_per_split", [loop["queried_split0"]])
    started, per_split = time.time(), []
    for k in range(args.splits):
        d = split_inputs(src, Path(args.truth), la, k)
        print(f"split {k}: {len(d['base_y'])} labeled, {len(d['test_y'])} test crops", flush=True)
        arms = {"no queries": [], "default": queried[k]["default"][0], "random (seed 0)": queried[k]["random"][0]}
        per_split.append(run_arms(d, arms, str(src.backbone), args))
        print(f"  ({time.time() - started:.0f} s)", flush=True)
    results, gaps = report(per_split)
    sd = np.std(gaps, ddof=1) if len(gaps) > 1 else 0.0
    print(f"fine-tuned: default - random {np.mean(gaps):+.2f} ± {sd:.2f} points macro PR-AUC over {len(gaps)} "
          f"split(s) (per split {', '.join(f'{g:+.2f}' for g in gaps)}); {time.time() - started:.0f} s")
    out = {"args": vars(args), "results": results, "per_split": per_split, "paired_gaps_points": gaps,
           "default_minus_random_points": float(np.mean(gaps)), "seconds": time.time() - started}
    path = Path(args.out) if args.out else (
        loop_path.with_name(loop_path.name.replace("bench_active_learning", "bench_active_finetune"))
        if "bench_active_learning" in loop_path.name else loop_path.with_name(loop_path.stem + "_finetune.json"))
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
