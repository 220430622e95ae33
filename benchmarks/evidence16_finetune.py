"""Fine-tune arms of an ``activessf run`` config directly, without its upstream stages.

Why: the pipeline keys every stage by its upstream fingerprints, so a changed region-stage config
(fields added to ``RegionsConfig`` since the run) re-runs regions, features, selection and every
pretraining before it reaches the folds. A fine-tuning fold is keyed by its own recipe, the folds
and the labeled crops (``finetune.freshness``), and its encoder file's content, so this calls the
pipeline's own fine-tuning stage (``stages.finetune.run_finetune``, with the arm config the
pipeline resolves) for the named arms: finished folds are reused, the rest are trained.

    .venv/bin/python benchmarks/evidence16_finetune.py --config benchmarks/evidence_pbc11.yaml \
        [--arm mae_w_selection ...]
"""

from __future__ import annotations

import argparse
import json
import time

from activessf.distributed.runtime import ensure_ray
from activessf.pipeline.plan import build_plan
from activessf.stages.finetune import run_finetune


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], help="pipeline override key=value")
    ap.add_argument("--arm", action="append", default=[], help="arm slug (default: every arm)")
    args = ap.parse_args()
    plan = build_plan(args.config, args.set)
    ensure_ray()
    for slug in args.arm or list(plan.arms):
        arm, t0 = plan.arms[slug], time.time()
        paths = run_finetune(plan.labeled_crops(), plan.path("finetune", slug), arm.finetune,
                             folds_path=plan.path("folds.parquet"))
        summary = {m: paths["report"]["summary"][m] for m in ("accuracy", "macro_pr_auc", "macro_f1")} \
            if paths.get("completed") else paths
        print(json.dumps({"arm": slug, "seconds": round(time.time() - t0, 1), "summary": summary}, default=str),
              flush=True)


if __name__ == "__main__":
    main()
