"""Sweep outputs: one row per trial, the best config as a ready-to-run YAML, objective plots."""

from __future__ import annotations

import copy
import io
import json
from typing import Any, Sequence

import yaml

from activessf.config import load_yaml, parse_override, set_dotted
from activessf.io.atomic import atomic_write_bytes, atomic_write_text


def results_markdown(rows: Sequence[dict], params: Sequence[str], metric: str) -> str:
    """Trials best first: params, CV mean +- std of ``metric``, folds done, selected crops, status."""
    head = ["trial", *params, f"{metric} (mean ± std)", "folds", "selected", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        score = "n/a" if r.get("mean") is None else f"{r['mean']:.4f} ± {r.get('std') or 0.0:.4f}"
        vals = [_fmt(r["params"].get(p)) for p in params]
        lines.append("| " + " | ".join([r["trial_id"], *vals, score, str(r.get("folds_done", 0)),
                                         str(r.get("n_selected", "")), r["status"]]) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def sort_rows(rows: list[dict]) -> list[dict]:
    """Finished trials by descending mean, then the others."""
    return sorted(rows, key=lambda r: (r.get("mean") is None, -(r.get("mean") or 0.0)))


def best_tree(sweep_yaml: str, params: dict[str, Any], output: str) -> dict:
    """The sweep YAML without its ``sweep`` section, the best params applied, a new run folder."""
    tree = copy.deepcopy(load_yaml(sweep_yaml))
    tree.pop("sweep", None)
    for key, value in params.items():
        set_dotted(tree, *parse_override(f"{key}={json.dumps(value)}"))
    set_dotted(tree, "pipeline.output", output)
    return tree


def write_best_yaml(path: str, sweep_yaml: str, best: dict, metric: str, output: str) -> str:
    """Write the best trial's config, loadable by ``activessf run --config``."""
    header = (f"# Best trial {best['trial_id']} of the sweep: {metric} {best['mean']:.4f} ± {best.get('std') or 0:.4f}\n"
              f"# over the sweep's folds. Run it: activessf run --config {path}\n")
    atomic_write_text(path, header + yaml.safe_dump(best_tree(sweep_yaml, best["params"], output), sort_keys=False))
    return path


def plot_objective(rows: Sequence[dict], params: Sequence[str], metric: str) -> bytes:
    """PNG: objective vs each parameter (one panel each; lists and None shown as categories)."""
    from matplotlib.figure import Figure

    done = [r for r in rows if r.get("mean") is not None]
    fig = Figure(figsize=(4 * max(1, len(params)), 3.4))
    for i, p in enumerate(params):
        ax = fig.add_subplot(1, max(1, len(params)), i + 1)
        values = [r["params"].get(p) for r in done]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = values
        else:
            cats = sorted({json.dumps(v) for v in values})
            xs = [cats.index(json.dumps(v)) for v in values]
            ax.set_xticks(range(len(cats)), cats, rotation=30)
        ax.errorbar(xs, [r["mean"] for r in done], yerr=[r.get("std") or 0 for r in done], fmt="o", capsize=3)
        ax.set_xlabel(p)
        ax.set_ylabel(metric if i == 0 else "")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} (mean ± std over folds) per trial")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def write_results(output_paths: dict[str, str], rows: list[dict], params: Sequence[str], metric: str) -> None:
    """``results.json``, ``results.md`` and ``objective.png``."""
    atomic_write_text(output_paths["json"], json.dumps(rows, indent=1, default=str))
    atomic_write_text(output_paths["md"], results_markdown(rows, params, metric))
    atomic_write_bytes(output_paths["png"], plot_objective(rows, params, metric))
