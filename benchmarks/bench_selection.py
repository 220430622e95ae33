"""Active Sample Selection on pbc11: class mix of the selected set vs the pool and vs random.

Runs the real stages (region filtering, features, selection) on pbc11's labeled set and unlabeled
pool, then, in this benchmark only, reads ``unlabeled_truth.csv`` to see which classes the
selection kept. Also times features + selection per 1k regions on this machine's CPU.

    python benchmarks/bench_selection.py [--data ../shared/data] [--limit-labeled N] [--limit-pool N]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.config import build_config  # noqa: E402
from activessf.distributed.features import run_features  # noqa: E402
from activessf.distributed.regions import run_regions  # noqa: E402
from activessf.features.config import FeaturesConfig  # noqa: E402
from activessf.regions.config import RegionsConfig  # noqa: E402
from activessf.selection.config import SelectionConfig  # noqa: E402
from activessf.selection.stage import run_select  # noqa: E402


def subset_folder(src: Path, dst: Path, limit: int | None, labeled: bool) -> Path:
    """Symlink a seeded subset (per class when labeled) so the stages see a plain folder."""
    if limit is None:
        return src
    rng = np.random.default_rng(0)
    groups = [p for p in sorted(src.iterdir()) if p.is_dir()] if labeled else [src]
    for g in groups:
        files = sorted(g.glob("*.jpg"))
        n = max(1, round(limit * len(files) / sum(len(list(x.glob("*.jpg"))) for x in groups)))
        out = dst / g.name if labeled else dst
        out.mkdir(parents=True, exist_ok=True)
        for f in rng.choice(files, size=min(n, len(files)), replace=False):
            (out / f.name).symlink_to(f)
    return dst


def class_mix(names: list[str], truth: dict[str, str]) -> Counter:
    return Counter(truth[n] for n in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "selection"))
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--weights", default=None, help="local weights file; none = seeded random init")
    ap.add_argument("--limit-labeled", type=int, default=None)
    ap.add_argument("--limit-pool", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="selection.* overrides")
    args = ap.parse_args()
    data, out = Path(args.data) / "pbc11", Path(args.out)
    shutil.rmtree(out / "subsets", ignore_errors=True)
    lab_src = subset_folder(data / "labeled", out / "subsets" / "labeled", args.limit_labeled, True)
    pool_src = subset_folder(data / "unlabeled", out / "subsets" / "pool", args.limit_pool, False)
    rcfg = build_config(RegionsConfig, None, ["contact_sheet_images=8"])
    run_regions(str(lab_src), str(out / "regions_labeled"), rcfg, labeled=True)
    run_regions(str(pool_src), str(out / "regions_pool"), rcfg)
    fcfg = build_config(FeaturesConfig, None, [f"backbone={args.backbone}"] + ([f"weights={args.weights}"] if args.weights else []))
    t0 = time.perf_counter()
    run_features(str(out / "regions_labeled"), str(out / "feat_labeled"), fcfg, force=True)
    run_features(str(out / "regions_pool"), str(out / "feat_pool"), fcfg, force=True)
    t1 = time.perf_counter()
    scfg = build_config(SelectionConfig, None, args.overrides)
    report = run_select(str(out / "feat_labeled"), str(out / "feat_pool"), str(out / "select"), scfg, force=True)
    t2 = time.perf_counter()
    n_regions = pq.read_metadata(out / "feat_labeled" / "features.parquet").num_rows + report["n_rows"]
    rows = evaluate(out, Path(args.data) / "pbc11" / "unlabeled_truth.csv", report, scfg.seed)
    timing = {"regions_featurized": n_regions, "features_s": round(t1 - t0, 1), "select_s": round(t2 - t1, 2),
              "features_s_per_1k": round((t1 - t0) / n_regions * 1000, 1),
              "select_s_per_1k": round((t2 - t1) / n_regions * 1000, 2)}
    print_table(rows, report, timing, args)
    result = {"backbone": args.backbone, "weights": args.weights, "selection": scfg.__dict__, "n_selected": report["n_selected"],
              "n_pool_regions": report["n_rows"], "classes": rows, "timing": timing}
    (out / "bench_selection.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out / 'bench_selection.json'}")


def evaluate(out: Path, truth_csv: Path, report: dict, seed: int) -> list[dict]:
    """Per class: share of the pool, of the selected set and of a same-size random subset."""
    with open(truth_csv) as fh:
        truth = {r["file"]: r["label"] for r in csv.DictReader(fh)}
    sel = pq.read_table(out / "select" / "selection.parquet", columns=["id", "selected"]).to_pydict()
    regions = pq.read_table(out / "regions_pool" / "regions.parquet", columns=["region_id", "source_path"]).to_pydict()
    file_of = {rid: Path(sp).name for rid, sp in zip(regions["region_id"], regions["source_path"])}
    pool = [file_of[i] for i in sel["id"]]
    chosen = [file_of[i] for i, s in zip(sel["id"], sel["selected"]) if s]
    rng = np.random.default_rng(seed)
    random_pick = list(rng.choice(pool, size=len(chosen), replace=False)) if chosen else []
    mix_pool, mix_sel, mix_rand = class_mix(pool, truth), class_mix(chosen, truth), class_mix(random_pick, truth)
    rows = []
    for cls in sorted(mix_pool, key=lambda c: mix_pool[c]):
        rows.append({"class": cls, "pool": mix_pool[cls], "pool_share": mix_pool[cls] / max(1, len(pool)),
                     "selected": mix_sel[cls], "selected_share": mix_sel[cls] / max(1, len(chosen)),
                     "random": mix_rand[cls], "random_share": mix_rand[cls] / max(1, len(random_pick))})
    return rows


def print_table(rows: list[dict], report: dict, timing: dict, args) -> None:
    print(f"\nActive Sample Selection on pbc11 (backbone {args.backbone}, weights {args.weights or 'seeded random init'})")
    print(f"pool regions {report['n_rows']}, selected {report['n_selected']}")
    print(f"{'class':<11}{'pool':>7}{'pool%':>8}{'selected':>10}{'sel%':>8}{'random':>8}{'rand%':>8}")
    for r in rows:
        print(f"{r['class']:<11}{r['pool']:>7}{100 * r['pool_share']:>7.1f}%{r['selected']:>10}"
              f"{100 * r['selected_share']:>7.1f}%{r['random']:>8}{100 * r['random_share']:>7.1f}%")
    print(f"features: {timing['features_s_per_1k']} s per 1k regions; selection: {timing['select_s_per_1k']} s per 1k")


if __name__ == "__main__":
    main()
