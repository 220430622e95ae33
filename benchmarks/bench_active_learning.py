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

    nice -n 5 .venv/bin/python benchmarks/bench_selection.py --data ../shared/data --out benchmarks/out/sel16 \\
        --sources labeled --backbone resnet10t --img-size 64      # features, once
    nice -n 5 .venv/bin/python benchmarks/bench_active_learning.py --sel benchmarks/out/sel16

Prints the table and writes ``<sel>/bench_active_learning.json``.
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
from benchmarks.selection_metrics import RARE, pool_truth  # noqa: E402

NOT_A_CELL = "not a target cell"


def load(sel: Path, truth_csv: Path, test_share: float, seed: int) -> dict:
    """Labeled features and labels, pool features, the oracle's answers and the test split."""
    import pyarrow.parquet as pq

    lab_ids, lab_x = read_features(str(sel / "src_labeled" / "feat_labeled"))
    lab_label = dict(zip(*(pq.read_table(sel / "src_labeled" / "feat_labeled" / "features.parquet",
                                         columns=["id", "label"]).to_pydict().values())))
    classes = sorted(set(lab_label.values()))
    pool_ids, pool_x = read_features(str(sel / "src_labeled" / "feat_pool"))
    info = pool_truth(sel / "regions_pool", truth_csv)
    regions = pq.read_table(sel / "regions_pool" / "regions.parquet", columns=["region_id", "image_id"]).to_pydict()
    image_of = dict(zip(regions["region_id"], regions["image_id"]))
    images = sorted(set(image_of.values()))
    rng = np.random.default_rng(seed)
    test_images = set(rng.choice(images, size=round(test_share * len(images)), replace=False).tolist())
    answer = [info[r][1] if info[r][0] and info[r][1] in classes else NOT_A_CELL for r in pool_ids]
    in_test = np.array([image_of[r] in test_images for r in pool_ids])
    test = np.flatnonzero(in_test & (np.array(answer) != NOT_A_CELL))
    return {"classes": classes, "lab_x": lab_x, "lab_y": np.array([classes.index(lab_label[i]) for i in lab_ids]),
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
        picked = rank(probs, d["pool_x"], d["lab_x"], counts, available, per_round, cfg).index.tolist()
        queried += picked
        for i in picked:
            if d["answer"][i] != NOT_A_CELL:
                counts[d["classes"].index(d["answer"][i])] += 1
        model, m = fit_score(d, queried, seed)
        rare = sum(d["answer"][i] in RARE for i in queried)
        out.append(m | {"round": r, "queried": len(queried), "rare_answered": rare})
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sel", default="benchmarks/out/sel16", help="bench_selection.py output folder")
    ap.add_argument("--truth", default=str(ROOT.parent / "shared" / "data" / "pbc11" / "unlabeled_truth.csv"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=100)
    ap.add_argument("--test-share", type=float, default=0.3)
    ap.add_argument("--random-seeds", type=int, default=3)
    ap.add_argument("--strategies", nargs="+", default=["default", "uncertainty", "prototype", "diversity", "random"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="QueryConfig field for every strategy, e.g. --set pool_factor=30")
    args = ap.parse_args()
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    sel = Path(args.sel)
    started = time.time()
    d = load(sel, Path(args.truth), args.test_share, args.seed)
    print(f"labeled {len(d['lab_y'])}, pool {len(d['pool_x'])} crops ({int((~d['in_test']).sum())} queryable), "
          f"test {len(d['test'])} central cells", flush=True)
    results = {}
    for s in args.strategies:
        seeds = range(args.random_seeds) if s == "random" else [0]
        runs = [simulate(d, s, args.rounds, args.per_round, args.seed + k, extra) for k in seeds]
        results[s if s != "random" else f"random (mean of {len(runs)})"] = mean_runs(runs)
        print(f"{s}: round {args.rounds} macro PR-AUC {results[list(results)[-1]][-1]['macro_pr_auc']:.4f}", flush=True)
    text = table(results)
    print(text)
    final = {name: rows[-1]["macro_pr_auc"] for name, rows in results.items()}
    rnd = next((v for n, v in final.items() if n.startswith("random")), float("nan"))
    gap = 100 * (final.get("default", float("nan")) - rnd)
    print(f"default - random after {args.rounds} rounds: {gap:+.2f} points macro PR-AUC "
          f"({'meets' if gap >= 3 else 'misses'} the >= 3 point goal); {time.time() - started:.0f} s")
    out = {"args": vars(args), "results": results, "default_minus_random_points": gap, "seconds": time.time() - started}
    (sel / "bench_active_learning.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
