"""The run report: ``report.md`` (images linked) and ``report.html`` (self-contained, images inline).

Sections follow the method: region filtering (counts, contact sheet), Active Sample Selection
(per-cluster thresholds and counts, selected crops), pretraining (loss curves,
reconstructions), fine-tuning (Table II / Table I of ``activessf compare`` and the Figure 3
style plots).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import markdown

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f6f6f6;padding:1px 4px}"""


def _image(root: str, rel: str, alt: str) -> list[str]:
    return [f"![{alt}]({rel})", ""] if afs.exists(afs.join(root, rel)) else [f"_{rel} is missing._", ""]


def _json(root: str, rel: str) -> dict:
    path = afs.join(root, rel)
    return json.loads(afs.read_bytes(path)) if afs.exists(path) else {}


def _stage_table(stages: dict[str, dict]) -> list[str]:
    lines = ["| stage | seconds | summary |", "|---|---|---|"]
    for name, rec in stages.items():
        # Counts and names; paths are left to the sections below.
        items = [f"{k}={v}" for k, v in rec.get("summary", {}).items()
                 if isinstance(v, (int, float)) or (isinstance(v, str) and "/" not in v)]
        lines.append(f"| {name} | {rec.get('seconds', '')} | {', '.join(items)} |")
    return lines + [""]


def _regions_section(root: str, stages: dict[str, dict]) -> list[str]:
    lines = ["## 1. Cell Region Filtering", "", "| input | images | ok | rejected | regions kept |", "|---|---|---|---|---|"]
    for name in ("regions_pool", "regions_labeled"):
        s = stages.get(name, {}).get("summary")
        if s:
            lines.append(f"| {name} | {s.get('inputs')} | {s.get('ok')} | {s.get('rejected')} | {s.get('regions')} |")
    lines += ["", "Kept regions on a sample of pool images:", ""]
    return lines + _image(root, "regions_pool/contact_sheet.png", "region contact sheet")


def _selection_section(root: str) -> list[str]:
    rep = _json(root, "selection/report.json")
    lines = ["## 2. Prototypes and Active Sample Selection", ""]
    if not rep:
        return lines + ["_no selection report._", ""]
    lines += [f"k = {rep.get('k')}, alpha = {rep.get('alpha')}: {rep.get('n_selected')} of {rep.get('n_rows')} pool crops "
              "selected (threshold_i = LB + (UB - LB)(1 - n_i / n_max)^alpha).", "",
              "| cluster | labeled members | LB | UB | threshold | pool assigned | selected | labeled classes |",
              "|---|---|---|---|---|---|---|---|"]
    for c in rep.get("clusters", []):
        mix = ", ".join(f"{k} {v}" for k, v in list(c.get("labeled_mix", {}).items())[:3])
        lines.append(f"| {c['cluster']} | {c['size']} | {c['lb']:.3f} | {c['ub']:.3f} | {c['threshold']:.3f} | "
                     f"{c['n_assigned']} | {c['n_selected']} | {mix} |")
    return lines + ["", "Selected crops:", ""] + _image(root, "selection/selected_crops.png", "selected crops")


def _pretrain_section(root: str, stages: dict[str, dict]) -> list[str]:
    lines = ["## 3. Self-supervised pretraining", ""]
    names = [n for n in stages if n.startswith("pretrain_")]
    if not names:
        return lines + ["_no arm pretrains._", ""]
    for name in names:
        s = stages[name].get("summary", {})
        lines += [f"### {name}: {s.get('method', '').upper()} on {s.get('source')}, {s.get('epochs')} epochs", ""]
        lines += _image(root, f"{name}/loss_curve.png", f"{name} loss") + _image(root, f"{name}/reconstructions.png", f"{name} samples")
    return lines


def _finetune_section(root: str) -> list[str]:
    lines = ["## 4. Fine-tuning over shared folds and comparison", ""]
    path = afs.join(root, "compare/compare.md")
    if afs.exists(path):
        text = afs.read_bytes(path).decode("utf-8")
        lines += [re.sub(r"^## ", "### ", text, flags=re.M), ""]
    lines += ["Confusion matrices (row-normalised, summed over folds):", ""]
    lines += _image(root, "compare/confusion_matrices.png", "confusion matrices")
    lines += ["Per-class PR-AUC (Figure 3 style):", ""]
    return lines + _image(root, "compare/per_class_pr_auc.png", "per-class PR-AUC")


def report_markdown(root: str, stages: dict[str, dict]) -> str:
    """The report's Markdown, images linked relative to the run folder ``root``."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = ["# ActiveSSF run report", "", f"Run folder `{root}`, written {stamp}. Resolved config: "
             "`pipeline_config.yaml`.", "", "## Stages", ""] + _stage_table(stages)
    lines += _regions_section(root, stages) + _selection_section(root)
    lines += _pretrain_section(root, stages) + _finetune_section(root)
    return "\n".join(lines) + "\n"


def _inline_images(html: str, root: str) -> str:
    """Replace ``src="rel.png"`` by a base64 data URI so the HTML stands alone."""
    def swap(match: re.Match) -> str:
        rel = match.group(1)
        path = afs.join(root, rel)
        if rel.startswith("data:") or not afs.exists(path):
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(afs.read_bytes(path)).decode("ascii")}"'

    return re.sub(r'src="([^"]+)"', swap, html)


def to_html(text: str, root: str) -> str:
    """Self-contained HTML of the report Markdown."""
    body = markdown.markdown(text, extensions=["tables"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>ActiveSSF run report</title>"
            f"<style>{CSS}</style></head><body>{_inline_images(body, root)}</body></html>\n")


def write_report(plan: Any, stages: dict[str, dict]) -> dict[str, str]:
    """Write ``report.md`` and ``report.html`` at the top of the run folder.

    Args:
        plan: The run's ``Plan`` (for its folder).
        stages: Finished stages from ``pipeline_state.json`` (name -> summary, seconds).

    Returns:
        Paths ``md`` and ``html``.
    """
    text = report_markdown(plan.root, stages)
    paths = {"md": plan.path("report.md"), "html": plan.path("report.html")}
    atomic_write_text(paths["md"], text)
    atomic_write_text(paths["html"], to_html(text, plan.root))
    return paths
