"""A simulated active-learning loop on pbc11: which query strategy gets the rare classes labeled fastest.

The learner is cheap: a logistic regression on frozen features (``make_probe("logreg")``) of the
``labeled`` feature backbone that ``benchmarks/bench_selection.py`` trains and applies to the
labeled crops and every pool crop (``<sel>/src_labeled/feat_{labeled,pool}``). Its probabilities
and those features are what ``activessf.active.strategies.rank`` sees, as ``activessf query``
sees the final model's probabilities and embedding.

Oracle (this benchmark only; no pipeline stage reads it): ``unlabeled_truth.csv``. A queried pool
crop that is its image's central cell of a labeled class is answered with that class; any other
crop (an off-centre neighbour, a fragment, IG or NEUTROPHIL) is "not a target cell" and adds no
training row. A seeded 30% of the pool images is held back: none of their crops is ever queried,
and their central cells of labeled classes are the fixed test split. Start: every labeled crop.
Each round queries ``--per-round`` crops with each strategy, answers them, refits and scores.
Every cell asked before (answered or not) is passed to ``rank`` as covered, as ``activessf query``
passes its log. The loop runs on ``--splits`` test splits (split seeds ``seed..seed+splits-1``);
each strategy's gain over random (the mean of ``--random-seeds`` seeds on the same split) is
paired per split. The table is the mean over splits. The JSON keeps every split's last-round
queries for ``bench_active_finetune.py``.

    nice -n 5 .venv/bin/python benchmarks/bench_selection.py --data ../shared/data --out benchmarks/out/sel16 \\
        --sources labeled --backbone resnet10t --img-size 64      # features, once
    nice -n 5 .venv/bin/python benchmarks/bench_active_learning.py --sel benchmarks/out/sel16

Scarce-label start (the features must not have seen labels the simulated user lacks): ``--run RUN``
reads an ``activessf run`` folder's ``features_labeled``, ``features_pool``, ``regions_pool`` (read
only) instead, e.g. issue 16's evidence run, whose feature backbone was trained on the 1,091 pbc11
crops capped at 150 per class; ``--cap-per-class N`` keeps a seeded subset (seed ``--seed``, the
same on every split) of at most N of them per class (``benchmarks/active_sources.py``).

    nice -n 10 .venv/bin/python benchmarks/bench_active_learning.py --run outputs/evidence16 [--cap-per-class 30]

Prints the table and writes ``<sel>/bench_active_learning.json`` (``--out``; for ``--run`` or a cap:
``benchmarks/out/bench_active_learning_<run>[_cap<N>].json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.active.config import QueryConfig  # noqa: E402
from activessf.active.strategies import rank  # noqa: E402
from activessf.evaluation.frozen import _full_proba, make_probe, read_features  # noqa: E402
from activessf.evaluation.metrics import fold_metrics  # noqa: E402
from benchmarks.active_sources import Sources, cap_rows, default_out, sources  # noqa: E402
from benchmarks.selection_metrics import RARE, pool_truth  # noqa: E402

NOT_A_CELL = "not a target cell"


def load(src: Sources, truth_csv: Path, test_share: float, seed: int, cap: int | None = None,
         cap_seed: int = 0) -> dict:
    """Labeled features and labels (at most ``cap`` per class), pool features, the oracle's answers, the test split."""
    import pyarrow.parquet as pq

    lab_ids, lab_x = read_features(str(src.feat_labeled))
    lab_label = dict(zip(*(pq.read_table(src.feat_labeled / "features.parquet",
                                         columns=["id", "label"]).to_pydict().values())))
    classes = sorted(set(lab_label.values()))
    keep = cap_rows([lab_label[i] for i in lab_ids], cap, cap_seed)
    lab_ids, lab_x = [lab_ids[i] for i in keep], lab_x[keep]
    pool_ids, pool_x = read_features(str(src.feat_pool))
    info = pool_truth(src.regions_pool, truth_csv)
    regions = pq.read_table(src.regions_pool / "regions.parquet", columns=["region_id", "image_id"]).to_pydict()
    image_of = dict(zip(regions["region_id"], regions["image_id"]))
    images = sorted(set(image_of.values()))
    rng = np.random.default_rng(seed)
    test_images = set(rng.choice(images, size=round(test_share * len(images)), replace=False).tolist())
    answer = [info[r][1] if info[r][0] and info[r][1] in classes else NOT_A_CELL for r in pool_ids]
    in_test = np.array([image_of[r] in test_images for r in pool_ids])
    test = np.flatnonzero(in_test & (np.array(answer) != NOT_A_CELL))
    return {"classes": classes, "pool_ids": pool_ids, "lab_ids": lab_ids, "lab_x": lab_x,
            "lab_y": np.array([classes.index(lab_label[i]) for i in lab_ids]),
            "pool_x": pool_x, "answer": answer, "in_test": in_test, "test": test}


def fit_score(d: dict, extra: list[int], seed: int) -> tuple[object, dict]:
    """Logistic regression on the labeled crops plus the answered pool crops; test-split metrics."""
    k = len(d["classes"])
    keep = [i for i in extra if d["answer"][i] != NOT_A_CELL]
    x = np.vstack([d["lab_x"], d["pool_x"][keep]])
    y = np.concatenate([d["lab_y"], [d["classes"].index(d["answer"][i]) for i in keep]]).astype(int)
    model = make_probe("logreg", seed=seed).fit(x, y)
    test_y = [d["classes"].index(d["answer"][i]) for i in d["test"]]
    m = fold_metrics(test_y, _full_proba(model, d["pool_x"][d["test"]], k), d["classes"])
    return model, {"macro_pr_auc": m["macro_pr_auc"], "rare": {c: m["per_class_pr_auc"][c] for c in RARE},
                   "n_train": len(y), "n_answered": len(keep)}


def simulate(d: dict, strategy: str, rounds: int, per_round: int, seed: int, extra: dict | None = None) -> list[dict]:
    """One loop: round 0 is the labeled set alone, then ``rounds`` rounds of ``per_round`` queries."""
    k = len(d["classes"])
    counts = np.bincount(d["lab_y"], minlength=k)
    queried: list[int] = []
    model, m = fit_score(d, queried, seed)
    out = [m | {"round": 0, "queried": 0, "rare_answered": 0}]
    for r in range(1, rounds + 1):
        available = ~d["in_test"]
        available[queried] = False
        probs = _full_proba(model, d["pool_x"], k)
        # The learner's input is the embedding the strategies see (the model's penultimate features).
        cfg = QueryConfig(**{"strategy": strategy, "seed": seed + r, **(extra or {})})
        asked = np.zeros(len(available), bool)
        asked[queried] = True  # as activessf query reads its log: every cell asked before
        picked = rank(probs, d["pool_x"], d["lab_x"], counts, available, per_round, cfg, covered=asked).index.tolist()
        queried += picked
        for i in picked:
            if d["answer"][i] != NOT_A_CELL:
                counts[d["classes"].index(d["answer"][i])] += 1
        model, m = fit_score(d, queried, seed)
        rare = sum(d["answer"][i] in RARE for i in queried)
        out.append(m | {"round": r, "queried": len(queried), "rare_answered": rare, "ids": list(queried)})
    return out


def mean_runs(runs: list[list[dict]]) -> list[dict]:
    """Per-round mean of several seeds' loops (random's variance)."""
    out = []
    for rows in zip(*runs):
        rare = {c: float(np.mean([r["rare"][c] for r in rows])) for c in RARE}
        out.append({"round": rows[0]["round"], "queried": rows[0]["queried"],
                    "macro_pr_auc": float(np.mean([r["macro_pr_auc"] for r in rows])),
                    "macro_pr_auc_std": float(np.std([r["macro_pr_auc"] for r in rows])), "rare": rare,
                    "n_answered": float(np.mean([r["n_answered"] for r in rows])),
                    "rare_answered": float(np.mean([r["rare_answered"] for r in rows]))})
    return out


def table(results: dict[str, list[dict]]) -> str:
    head = "| strategy | round | queried | answered (cells) | rare answered | macro PR-AUC | " + " | ".join(RARE) + " |"
    lines = [head, "|" + " --- |" * (6 + len(RARE))]
    for name, rows in results.items():
        for r in rows:
            rare = " | ".join(f"{r['rare'][c]:.3f}" for c in RARE)
            lines.append(f"| {name} | {r['round']} | {r['queried']} | {r['n_answered']:.0f} | {r['rare_answered']:.0f} "
                         f"| {r['macro_pr_auc']:.4f} | {rare} |")
    return "\n".join(lines)


def paired_gaps(per_split: list[dict[str, list[list[dict]]]], name: str) -> list[float]:
    """Per test split: ``name``'s final macro PR-AUC minus the mean of random's seeds there, in points."""
    return [100 * (runs[name][0][-1]["macro_pr_auc"] - float(np.mean([r[-1]["macro_pr_auc"] for r in runs["random"]])))
            for runs in per_split]


def run_splits(args, extra: dict) -> list[dict[str, list[list[dict]]]]:
    """Every strategy's loop on ``args.splits`` test splits (random: ``args.random_seeds`` seeds each)."""
    per_split, src = [], sources(args.sel, args.run)
    for k in range(args.splits):
        d = load(src, Path(args.truth), args.test_share, args.seed + k, args.cap_per_class, args.seed)
        print(f"split {k}: labeled {len(d['lab_y'])}, pool {len(d['pool_x'])} crops ({int((~d['in_test']).sum())} "
              f"queryable), test {len(d['test'])} central cells", flush=True)
        runs = {}
        for s in args.strategies:
            seeds = range(args.random_seeds) if s == "random" else [0]
            runs[s] = [simulate(d, s, args.rounds, args.per_round, args.seed + 100 * k + j, extra) for j in seeds]
            for rows in runs[s]:
                rows[-1]["ids"] = [d["pool_ids"][i] for i in rows[-1]["ids"]]
            print(f"  {s}: round {args.rounds} macro PR-AUC "
                  f"{np.mean([r[-1]['macro_pr_auc'] for r in runs[s]]):.4f}", flush=True)
        per_split.append(runs)
    return per_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sel", default="benchmarks/out/sel16", help="bench_selection.py output folder")
    ap.add_argument("--run", help="read the features, pool regions and backbone of this activessf run instead "
                    "(features_labeled, features_pool, regions_pool; read only)")
    ap.add_argument("--cap-per-class", type=int,
                    help="scarce-label start: a seeded subset of at most N labeled crops per class")
    ap.add_argument("--out", help="JSON path (default <sel>/bench_active_learning.json; "
                    "benchmarks/out/... for --run or a cap)")
    ap.add_argument("--truth", default=str(ROOT.parent / "shared" / "data" / "pbc11" / "unlabeled_truth.csv"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=100)
    ap.add_argument("--test-share", type=float, default=0.3)
    ap.add_argument("--splits", type=int, default=5, help="held-back test splits (seeds seed..seed+splits-1)")
    ap.add_argument("--random-seeds", type=int, default=3)
    ap.add_argument("--strategies", nargs="+", default=["default", "uncertainty", "prototype", "diversity", "random"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="QueryConfig field for every strategy, e.g. --set pool_factor=30")
    args = ap.parse_args()
    import yaml
    from threadpoolctl import threadpool_limits

    extra = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    started = time.time()
    # One BLAS thread: on a shared 2-core machine a multi-threaded lbfgs fit thrashes (~30x slower).
    with threadpool_limits(1):
        per_split = run_splits(args, extra)
    results = {s if s != "random" else f"random (mean of {args.random_seeds})":
               mean_runs([rows for runs in per_split for rows in runs[s]]) for s in args.strategies}
    print(f"mean of {args.splits} test splits:\n" + table(results))
    gaps = {s: paired_gaps(per_split, s) for s in args.strategies if s != "random" and "random" in args.strategies}
    for s, g in gaps.items():
        print(f"{s} - random after {args.rounds} rounds, paired over {len(g)} splits: {np.mean(g):+.2f} "
              f"± {np.std(g, ddof=1) if len(g) > 1 else 0.0:.2f} points macro PR-AUC (per split "
              f"{', '.join(f'{x:+.2f}' for x in g)})")
    gap = float(np.mean(gaps.get("default", [float("nan")])))
    print(f"default: {'meets' if gap >= 3 else 'misses'} the >= 3 point goal; {time.time() - started:.0f} s")
    queried = [{s: [rows[-1]["ids"] for rows in runs[s]] for s in args.strategies} for runs in per_split]
    out = {"args": vars(args), "results": results, "paired_gaps_points": gaps, "default_minus_random_points": gap,
           "queried_split0": queried[0], "queried_per_split": queried, "seconds": time.time() - started}
    path = Path(args.out) if args.out else default_out(args.sel, args.run, args.cap_per_class, "bench_active_learning")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
