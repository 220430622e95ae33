"""Active Sample Selection on pbc11, per feature source, measured against the pool's truth.

Runs the real stages (region filtering, central labeled crops, the ``labeled`` feature backbone on
Ray Train, features, selection) and then, in this benchmark only, reads ``unlabeled_truth.csv``
to score the selection, a seeded random subset of the same size and the whole pool: relevance
(central cell of a labeled class), the four rarest labeled classes' share, the effective number
of classes, and the Jaccard overlap of the selected sets over K-means seeds (``paper`` rule; the
``balanced`` rule has no K-means), for each selection rule.

    nice -n 5 .venv/bin/python benchmarks/bench_selection.py --data ../shared/data \\
        --sources random labeled --backbone resnet18 --img-size 64 [--rules balanced paper] [--set alpha=0.5]

Prints a table and writes ``<out>/bench_selection.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.config import build_config  # noqa: E402
from activessf.features.config import FeaturesConfig  # noqa: E402
from activessf.io.markers import fingerprint  # noqa: E402
from activessf.selection.config import SelectionConfig  # noqa: E402
from activessf.selection.stage import run_select  # noqa: E402
from benchmarks.selection_metrics import RARE, mean_jaccard, mix_metrics, pool_truth, random_subset  # noqa: E402


def subset_folder(src: Path, dst: Path, limit: int | None, labeled: bool) -> Path:
    """Symlink a seeded subset (per class when labeled) so the stages see a plain folder."""
    if limit is None:
        return src
    rng = np.random.default_rng(0)
    groups = [p for p in sorted(src.iterdir()) if p.is_dir()] if labeled else [src]
    total = sum(len(list(g.glob("*.jpg"))) for g in groups)
    for g in groups:
        files = sorted(g.glob("*.jpg"))
        n = max(1, round(limit * len(files) / total))
        out = dst / g.name if labeled else dst
        out.mkdir(parents=True, exist_ok=True)
        for f in rng.choice(files, size=min(n, len(files)), replace=False):
            if not (out / f.name).exists():
                (out / f.name).symlink_to(f)
    return dst


def prepare_regions(args, out: Path) -> tuple[Path, Path]:
    """Region stages of the labeled images and the pool, and the central labeled crops manifest."""
    from activessf.stages.regions import run_regions
    from activessf.pipeline.labeled import write_central_crops
    from activessf.regions.config import RegionsConfig

    data = Path(args.data) / "pbc11"
    rcfg = build_config(RegionsConfig, None, ["contact_sheet_images=4"])
    for name, src, labeled, limit in (("regions_labeled", data / "labeled", True, args.limit_labeled),
                                      ("regions_pool", data / "unlabeled", False, args.limit_pool)):
        if not (out / name / "_SUCCESS.json").exists():  # reuse a finished stage whatever made it
            src = subset_folder(src, out / "subsets" / name, limit, labeled)
            run_regions(str(src), str(out / name), rcfg, labeled=labeled)
    manifest = out / "labeled_crops.parquet"
    if not manifest.exists():
        write_central_crops(str(out / "regions_labeled"), str(manifest))
    return manifest, out / "regions_pool"


def source_features(source: str, args, out: Path, labeled: Path, pool: Path) -> tuple[Path, float]:
    """Labeled and pool features of one source; returns the folder and the seconds it took."""
    from activessf.stages.feature_backbone import train_feature_backbone, with_backbone
    from activessf.stages.features import run_features

    sets = [f"source={source}", f"backbone={args.backbone}", f"img_size={args.img_size}",
            f"labeled.img_size={args.img_size}", f"labeled.epochs={args.labeled_epochs}", "batch_size=64"]
    if source in ("weights", "pool_ssl"):
        sets.append(f"weights={args.weights}")
    cfg = build_config(FeaturesConfig, None, sets)
    folder, t0 = out / f"src_{source}{args.tag}", time.perf_counter()
    if source == "labeled":
        cfg = with_backbone(cfg, train_feature_backbone(str(labeled), str(folder / "backbone"), cfg, args.executor))
    run_features(str(labeled), str(folder / "feat_labeled"), cfg, executor=args.executor)
    run_features(str(pool), str(folder / "feat_pool"), cfg, executor=args.executor)
    return folder, time.perf_counter() - t0


def selected_ids(folder: Path, seed: int, overrides: list[str], rule: str) -> tuple[set, list[str], dict]:
    """Run the selection ``rule`` with K-means seed ``seed``: (selected ids, every pool id, report)."""
    scfg = build_config(SelectionConfig, None, [f"rule={rule}"] + overrides + [f"seed={seed}"])
    # The paper rule keeps its historical folder names (select_seed<N>).
    sel_dir = folder / (f"select_seed{seed}" if rule == "paper" and not overrides else
                        f"select_{rule}_{fingerprint(overrides)[:6]}_seed{seed}")
    run_select(str(folder / "feat_labeled"), str(folder / "feat_pool"), str(sel_dir), scfg)
    table = pq.read_table(sel_dir / "selection.parquet", columns=["id", "selected"]).to_pydict()
    report = json.loads((sel_dir / "report.json").read_text())
    return {i for i, s in zip(table["id"], table["selected"]) if s}, sorted(table["id"]), report


def evaluate_source(source: str, args, out: Path, labeled: Path, pool: Path, info: dict, classes: list[str]) -> list[dict]:
    """Per rule: selection (seed 0), its same-size random subset, Jaccard over seeds, timing."""
    folder, feat_s = source_features(source, args, out, labeled, pool)
    results = []
    for rule in args.rules:
        # The balanced rule has no K-means: one run stands for every seed.
        runs = [selected_ids(folder, s, args.overrides, rule) for s in range(args.seeds if rule == "paper" else 1)]
        chosen, every, report = runs[0]
        rand = random_subset(every, len(chosen), seed=0)
        results.append({"source": source + args.tag, "rule": rule, "features_s": round(feat_s, 1),
                        "warning": report.get("warning"), "selection": mix_metrics(sorted(chosen), info, classes),
                        "random_subset": mix_metrics(rand, info, classes), "pool": mix_metrics(every, info, classes),
                        "n_selected_per_seed": [len(r[0]) for r in runs],
                        "jaccard_over_seeds": mean_jaccard([r[0] for r in runs])})
    return results


def print_table(results: list[dict]) -> None:
    cols = ("n", "relevance", "central", "rare_share", "effective_classes")
    print(f"\n{'source':<9}{'rule':<10}{'set':<15}" + "".join(f"{c:>19}" for c in cols) + f"{'jaccard(seeds)':>18}")
    for r in results:
        for name in ("selection", "random_subset", "pool"):
            m = r[name]
            vals = [f"{m['n']:>19}"] + [f"{m[c]:>19.3f}" for c in cols[1:]]
            jac = f"{r['jaccard_over_seeds']:>18.3f}" if name == "selection" else " " * 18
            print(f"{r['source']:<9}{r['rule']:<10}{name:<15}" + "".join(vals) + jac)
        ratio = r["selection"]["rare_share"] / max(1e-9, r["pool"]["rare_share"])
        print(f"{'':<9}rare share vs pool: {ratio:.2f}x (goal >= 1.3); relevance "
              f"{r['selection']['relevance'] - r['pool']['relevance']:+.3f} vs pool (goal >= 0); "
              f"jaccard {r['jaccard_over_seeds']:.3f} (goal >= 0.8); features {r['features_s']} s")
        if r["warning"]:
            print(f"{'':<9}{r['warning']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "selection"))
    ap.add_argument("--sources", nargs="+", default=["random", "labeled"],
                    choices=["random", "labeled", "weights", "pool_ssl"])
    ap.add_argument("--weights", default=None, help="weights file for the weights / pool_ssl sources")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--labeled-epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=5, help="K-means seeds for the Jaccard overlap")
    ap.add_argument("--executor", choices=["ray", "local"], default="ray")
    ap.add_argument("--limit-labeled", type=int, default=None)
    ap.add_argument("--limit-pool", type=int, default=None)
    ap.add_argument("--tag", default="", help="suffix of the source folders and the JSON (e.g. _mae)")
    ap.add_argument("--rules", nargs="+", default=["balanced", "paper"], choices=["balanced", "paper"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="selection.* overrides")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labeled, pool = prepare_regions(args, out)
    info = pool_truth(pool, Path(args.data) / "pbc11" / "unlabeled_truth.csv")
    classes = sorted(p.name for p in (Path(args.data) / "pbc11" / "labeled").iterdir() if p.is_dir())
    results = [r for s in args.sources for r in evaluate_source(s, args, out, labeled, pool, info, classes)]
    print_table(results)
    body = {"args": vars(args), "rare_classes": list(RARE), "labeled_classes": classes, "results": results}
    path = out / f"bench_selection{args.tag}.json"
    path.write_text(json.dumps(body, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
