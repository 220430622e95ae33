"""Issue 16 evidence tables from fine-tuning run folders: Table II with the rare four, paired tests.

``activessf compare`` writes Table II (accuracy, macro PR-AUC, macro F1) and Table I (per class)
against one reference. The issue also asks for the four rarest classes' PR-AUC (MY, BA, MMY, PMY)
and for each arm paired against more than one reference (the random subset and every crop), so
this reads the same per-fold ``fold_<k>/metrics.json`` files and prints both, on the folds every
run has in common (paired two-sided t-tests on per-fold scores, scipy).

    .venv/bin/python benchmarks/evidence16_tables.py \
        --run "MAE w/ selection=outputs/evidence16/finetune/mae_w_selection" ... \
        --ref "MAE random subset" --ref "MAE w/o selection" [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

RARE = ("MY", "BA", "MMY", "PMY")
METRICS = ("accuracy", "macro_pr_auc", "macro_f1", "rare4_pr_auc")


def fold_scores(run: Path) -> dict[int, dict[str, float]]:
    """Per fold: the three Table II metrics, the rare-four mean PR-AUC and each rare class's."""
    out = {}
    for path in sorted(run.glob("fold_*/metrics.json")):
        m = json.loads(path.read_text())
        per = m["per_class_pr_auc"]
        row = {k: float(m[k]) for k in METRICS[:3]}
        row["rare4_pr_auc"] = float(np.mean([per[c] for c in RARE]))
        row.update({f"pr_auc_{c}": float(per[c]) for c in RARE})
        out[int(m["fold"])] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="NAME=FOLDER (fine-tuning output folder)")
    ap.add_argument("--ref", action="append", default=[], help="NAME of a reference arm (default: the first)")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    runs = {name: fold_scores(Path(folder)) for name, folder in (r.split("=", 1) for r in args.run)}
    folds = sorted(set.intersection(*(set(s) for s in runs.values())))
    refs = args.ref or [next(iter(runs))]
    vals = {n: {k: np.array([s[f][k] for f in folds]) for k in s[folds[0]]} for n, s in runs.items()}
    print(f"folds: {folds}\n")
    print("| Method | accuracy | macro PR-AUC | macro F1 | rare-four PR-AUC | MY / BA / MMY / PMY |")
    print("|---|---|---|---|---|---|")
    for n, v in vals.items():
        cells = [f"{v[k].mean():.3f} ± {v[k].std(ddof=1):.3f}" for k in METRICS]
        rare = " / ".join(f"{v['pr_auc_' + c].mean():.3f}" for c in RARE)
        print(f"| {n} | " + " | ".join(cells) + f" | {rare} |")
    tests = {}
    for ref in refs:
        print(f"\npaired t-test vs {ref} (difference in points, p):")
        for n, v in vals.items():
            if n == ref:
                continue
            row = {}
            for k in METRICS:
                d = v[k] - vals[ref][k]
                p = float(stats.ttest_rel(v[k], vals[ref][k]).pvalue) if len(folds) > 1 else float("nan")
                row[k] = {"diff": float(d.mean()), "p": p}
            tests[f"{n} vs {ref}"] = row
            print(f"  {n}: " + ", ".join(f"{k} {100 * r['diff']:+.1f} (p={r['p']:.3f})" for k, r in row.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"folds": folds, "tests": tests, "scores": {
            n: {k: a.tolist() for k, a in v.items()} for n, v in vals.items()}}, indent=1))


if __name__ == "__main__":
    main()
