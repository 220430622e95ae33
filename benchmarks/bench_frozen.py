"""Frozen-feature quality per feature source: 5-fold logistic-regression and kNN (k = 20) macro
PR-AUC on pbc11's labeled crops (the protocol hematology foundation models are compared by).

Reads what ``benchmarks/bench_selection.py`` wrote (``labeled_crops.parquet`` and
``src_<source>/feat_labeled``). For ``labeled`` the backbone saw the very crops it is probed on,
so two numbers are given: *in-sample* (the backbone trained on every labeled crop, as the
selection uses it; optimistic) and *out-of-fold* (for each fold, a backbone trained on the other
four folds embeds the crops; the probe trains on those four and scores the held-out fold).

    nice -n 5 .venv/bin/python benchmarks/bench_frozen.py --out benchmarks/out/sel16 \\
        --sources random labeled [--oof-executor local]

A source is a ``src_<name>`` folder, so ``pool_ssl_mae`` probes what
``bench_selection.py --sources pool_ssl --weights .../encoder.safetensors --tag _mae`` wrote.
Results are merged into an existing ``bench_frozen.json`` (the listed sources are measured again).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.evaluation.folds import fold_indices, make_folds, num_folds  # noqa: E402
from activessf.evaluation.frozen import _full_proba, frozen_eval, make_probe, read_features  # noqa: E402
from activessf.evaluation.metrics import fold_metrics, run_report  # noqa: E402

PROBES = (("logreg", {}), ("knn", {"k": 20}))


RARE = ("MY", "BA", "MMY", "PMY")


def summary(report: dict) -> dict:
    """Mean and std over folds of macro PR-AUC and accuracy, the four rarest classes' PR-AUC and
    their mean (``rare_pr_auc``: per fold, then mean and std)."""
    s = report["summary"]
    out = {m: [round(s[m]["mean"], 4), round(s[m]["std"], 4)] for m in ("macro_pr_auc", "accuracy")}
    per = s["per_class_pr_auc"]
    out |= {f"pr_auc_{c}": [round(per[c]["mean"], 4), round(per[c]["std"], 4)] for c in RARE if c in per}
    rare = [np.mean([f["per_class_pr_auc"][c] for c in RARE]) for f in report["folds"]]
    return out | {"rare_pr_auc": [round(float(np.mean(rare)), 4), round(float(np.std(rare)), 4)]}


def fixed_source(folder: Path, folds: pa.Table) -> dict:
    """Probes on one feature table (the same features for every fold)."""
    ids, feats = read_features(str(folder / "feat_labeled"))
    return {kind: summary(frozen_eval(feats, ids, folds, kind, **kw)) for kind, kw in PROBES}


def oof_features(out: Path, folds: pa.Table, fold: int, executor: str) -> tuple[list[str], np.ndarray]:
    """Features of every labeled crop from a backbone trained without ``fold``'s crops."""
    from activessf.config import build_config
    from activessf.stages.feature_backbone import train_feature_backbone, with_backbone
    from activessf.stages.features import run_features
    from activessf.features.config import FeaturesConfig

    cfg_used = json.loads((out / "bench_selection.json").read_text())["args"]
    items = _items(out)
    train, _ = fold_indices(folds, fold)
    keep = set(folds["id"].take(pa.array(train)).to_pylist())
    work = out / "oof" / f"fold{fold}"
    work.mkdir(parents=True, exist_ok=True)
    sub = items.filter(pa.array([i in keep for i in items["id"].to_pylist()]))
    pq.write_table(pa.table({"source_path": sub["path"], "label": sub["label"]}), work / "train_crops.parquet")
    cfg = build_config(FeaturesConfig, None, [
        "source=labeled", f"backbone={cfg_used['backbone']}", f"img_size={cfg_used['img_size']}",
        f"labeled.img_size={cfg_used['img_size']}", f"labeled.epochs={cfg_used['labeled_epochs']}", "batch_size=64"])
    weights = train_feature_backbone(str(work / "train_crops.parquet"), str(work / "backbone"), cfg, executor)
    run_features(str(out / "labeled_crops.parquet"), str(work / "feat"), with_backbone(cfg, weights), executor="local")
    return read_features(str(work / "feat"))


def encoder_features(out: Path, name: str, weights: str) -> None:
    """``src_<name>/feat_labeled``: the labeled crops embedded by a pretraining's exported encoder
    (``source: pool_ssl``, at the encoder's own side), in this process (no Ray start-up)."""
    from activessf.config import build_config
    from activessf.features.config import FeaturesConfig
    from activessf.stages.features import run_features

    cfg = build_config(FeaturesConfig, None, ["source=pool_ssl", f"weights={weights}", "batch_size=64"])
    run_features(str(out / "labeled_crops.parquet"), str(out / f"src_{name}" / "feat_labeled"), cfg, executor="local")


def _items(out: Path) -> pa.Table:
    """The labeled crops as the stages see them (``id``, ``path``, ``label``; not in file order)."""
    from activessf.io.items import crop_items

    return crop_items(str(out / "labeled_crops.parquet"))


def out_of_fold(out: Path, folds: pa.Table, executor: str, n_folds: int | None = None) -> dict:
    """Probes where each fold's crops are embedded by a backbone that never saw them (the first
    ``n_folds`` folds only when given: each fold trains a backbone)."""
    labels = folds["label"].to_pylist()
    classes = sorted(set(labels))
    y = np.asarray([classes.index(lab) for lab in labels])
    per = {kind: [] for kind, _ in PROBES}
    for fold in range(n_folds or num_folds(folds)):
        ids, feats = oof_features(out, folds, fold, executor)
        row = {i: r for r, i in enumerate(ids)}
        x = feats[[row[i] for i in folds["id"].to_pylist()]].astype(np.float64)
        train, test = fold_indices(folds, fold)
        for kind, kw in PROBES:
            probe = make_probe(kind, **kw).fit(x[train], y[train])
            per[kind].append(fold_metrics(y[test], _full_proba(probe, x[test], len(classes)), classes) | {"fold": fold})
    return {kind: summary(run_report(res, classes, f"frozen-{kind}-oof")) for kind, res in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "selection"))
    ap.add_argument("--sources", nargs="*", default=["random", "labeled"])
    ap.add_argument("--oof-executor", choices=["ray", "local"], default="local")
    ap.add_argument("--no-oof", action="store_true")
    ap.add_argument("--encoders", nargs="*", default=[], metavar="NAME=ENCODER",
                    help="also probe these pretrainings' encoder.safetensors (features into src_NAME)")
    ap.add_argument("--skip-fixed", action="store_true", help="only the out-of-fold numbers")
    ap.add_argument("--oof-folds", type=int, default=None, help="out-of-fold on the first N folds only")
    args = ap.parse_args()
    out = Path(args.out)
    items = _items(out)
    ids = items["id"].to_pylist()
    folds = make_folds(ids, items["label"].to_pylist(), n_folds=5, seed=0)
    results, t0 = {}, time.perf_counter()
    path = out / "bench_frozen.json"
    if path.exists():  # every run adds its sources to what earlier runs measured
        results = json.loads(path.read_text())["results"]
    for spec in args.encoders:
        name, weights = spec.split("=", 1)
        encoder_features(out, name, weights)
        args.sources.append(name)
    for source in [] if args.skip_fixed else args.sources:
        name = f"{source} (in-sample)" if source == "labeled" else source
        results[name] = fixed_source(out / f"src_{source}", folds)
        print(name, results[name], flush=True)
    if "labeled" in args.sources and not args.no_oof:
        results["labeled (out-of-fold)"] = out_of_fold(out, folds, args.oof_executor, args.oof_folds)
        print("labeled (out-of-fold)", results["labeled (out-of-fold)"], flush=True)
    print(f"\n{'source':<24}{'logreg PR-AUC':>18}{'kNN-20 PR-AUC':>18}{'logreg acc':>14}{'kNN acc':>12}"
          f"{'logreg rare PR-AUC':>20}")
    for name, r in results.items():
        lg, kn = r["logreg"], r["knn"]
        rare = f"{lg['rare_pr_auc'][0]:>20.3f}" if "rare_pr_auc" in lg else f"{'-':>20}"
        print(f"{name:<24}{lg['macro_pr_auc'][0]:>11.3f} ± {lg['macro_pr_auc'][1]:.3f}"
              f"{kn['macro_pr_auc'][0]:>11.3f} ± {kn['macro_pr_auc'][1]:.3f}{lg['accuracy'][0]:>14.3f}{kn['accuracy'][0]:>12.3f}"
              + rare)
    path.write_text(json.dumps({"n_crops": len(ids), "results": results, "seconds": round(time.perf_counter() - t0)}, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
