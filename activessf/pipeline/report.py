"""The run report: ``report.md`` (images linked) and ``report.html`` (self-contained, images inline).

Sections follow the method: region filtering (counts, contact sheet), Active Sample Selection
(per-cluster thresholds and counts, selected crops), pretraining (loss curves,
reconstructions), fine-tuning (Table II / Table I of ``activessf compare`` and the Figure 3
style plots), then the final model on held-back images when the run predicted them.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
from typing import Any

import markdown

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text
from activessf.pipeline.holdout import report_lines as holdout_lines
from activessf.pipeline.verdict import verdict as run_verdict

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f6f6f6;padding:1px 4px}"""


# Markdown characters that make links, images, code or table cells; backslash-escaped in every
# string that comes from the data (class names, arm names, folder names), so a label such as
# ``![x](/etc/passwd)`` stays text. ``<``, ``>`` and ``&`` become entities, so no raw HTML passes.
_MD_ACTIVE = re.compile(r"([\\`\[\]()!|])")
# Image links the report itself writes: plain relative paths.
_SAFE_REL = re.compile(r"[A-Za-z0-9_./-]+")
# Files the HTML inlines must start like an image (PNG or JPEG), not merely exist.
_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def esc(value: Any) -> str:
    """A data string as inert Markdown text: no HTML, no link, no image, one table cell, one line."""
    text = " ".join(str(value).splitlines())
    return html.escape(_MD_ACTIVE.sub(r"\\\1", text), quote=False)


def _image(root: str, rel: str, alt: str) -> list[str]:
    if not _SAFE_REL.fullmatch(rel) or ".." in rel.split("/"):
        return [f"_{esc(rel)} is not a path inside the run folder._", ""]
    return [f"![{esc(alt)}]({rel})", ""] if afs.exists(afs.join(root, rel)) else [f"_{rel} is missing._", ""]


def _json(root: str, rel: str) -> dict:
    path = afs.join(root, rel)
    return json.loads(afs.read_bytes(path)) if afs.exists(path) else {}


def _stage_table(stages: dict[str, dict]) -> list[str]:
    lines = ["| stage | seconds | summary |", "|---|---|---|"]
    for name, rec in stages.items():
        # Counts and names; paths are left to the sections below.
        items = [f"{esc(k)}={esc(v)}" for k, v in rec.get("summary", {}).items()
                 if isinstance(v, (int, float)) or (isinstance(v, str) and "/" not in v)]
        lines.append(f"| {esc(name)} | {esc(rec.get('seconds', ''))} | {', '.join(items)} |")
    return lines + [""]


def _regions_section(root: str, stages: dict[str, dict]) -> list[str]:
    lines = ["## 1. Cell Region Filtering", "", "| input | images | ok | rejected | regions kept |", "|---|---|---|---|---|"]
    for name in ("regions_pool", "regions_labeled"):
        s = stages.get(name, {}).get("summary")
        if s:
            lines.append(f"| {name} | " + " | ".join(esc(s.get(k)) for k in ("inputs", "ok", "rejected", "regions")) + " |")
    lines += ["", "Kept regions on a sample of pool images:", ""]
    return lines + _image(root, "regions_pool/contact_sheet.png", "region contact sheet")


def _selection_section(root: str) -> list[str]:
    rep = _json(root, "selection/report.json")
    lines = ["## 2. Prototypes and Active Sample Selection", ""]
    if not rep:
        return lines + ["_no selection report._", ""]
    if rep.get("warning"):
        lines += [f"> **{rep['warning']}**", ""]
    lines += [f"k = {esc(rep.get('k'))}, alpha = {esc(rep.get('alpha'))}: {esc(rep.get('n_selected'))} of "
              f"{esc(rep.get('n_rows'))} pool crops "
              "selected (threshold_i = LB + (UB - LB)(1 - n_i / n_max)^alpha).", "",
              "| cluster | labeled members | LB | UB | threshold | pool assigned | selected | labeled classes |",
              "|---|---|---|---|---|---|---|---|"]
    for c in rep.get("clusters", []):
        mix = ", ".join(f"{esc(k)} {esc(v)}" for k, v in list(c.get("labeled_mix", {}).items())[:3])
        lines.append(f"| {esc(c['cluster'])} | {esc(c['size'])} | {c['lb']:.3f} | {c['ub']:.3f} | {c['threshold']:.3f} | "
                     f"{esc(c['n_assigned'])} | {esc(c['n_selected'])} | {mix} |")
    return lines + ["", "Selected crops:", ""] + _image(root, "selection/selected_crops.png", "selected crops")


def _pretrain_section(root: str, stages: dict[str, dict]) -> list[str]:
    lines = ["## 3. Self-supervised pretraining", ""]
    names = [n for n in stages if n.startswith("pretrain_")]
    if not names:
        return lines + ["_no arm pretrains._", ""]
    for name in names:
        s = stages[name].get("summary", {})
        lines += [f"### {esc(name)}: {esc(str(s.get('method', '')).upper())} on {esc(s.get('source'))}, "
                  f"{esc(s.get('epochs'))} epochs", ""]
        lines += _image(root, f"{name}/loss_curve.png", f"{name} loss") + _image(root, f"{name}/reconstructions.png", f"{name} samples")
    return lines


def _finetune_section(root: str) -> list[str]:
    lines = ["## 4. Fine-tuning over shared folds and comparison", ""]
    path = afs.join(root, "compare/compare.md")
    if afs.exists(path):
        text = afs.read_bytes(path).decode("utf-8")
        lines += [re.sub(r"^## ", "### ", _inert_tables(text), flags=re.M), ""]
    lines += ["Confusion matrices (row-normalised, summed over folds):", ""]
    lines += _image(root, "compare/confusion_matrices.png", "confusion matrices")
    lines += ["Per-class PR-AUC (Figure 3 style):", ""]
    return lines + _image(root, "compare/per_class_pr_auc.png", "per-class PR-AUC")


def _inert_tables(text: str) -> str:
    """``compare.md`` (its class and method names are data) with no HTML, link or image left.

    Its table pipes are kept; everything else active in Markdown is escaped as in ``esc``.
    """
    return html.escape(re.sub(r"([\\\[\]()!])", r"\\\1", text), quote=False)


def report_markdown(root: str, stages: dict[str, dict], verdict: str | None = None) -> str:
    """The report's Markdown, images linked relative to the run folder ``root``.

    ``verdict`` is the one-sentence result (``pipeline.verdict.verdict``), shown first when given.
    """
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = ["# ActiveSSF run report", "", f"Run folder {esc(root)}, written {stamp}. Resolved config: "
             "`pipeline_config.yaml`.", ""]
    lines += [f"**Result.** {esc(verdict)}", ""] if verdict else []
    lines += ["## Stages", ""] + _stage_table(stages)
    lines += _regions_section(root, stages) + _selection_section(root)
    lines += _pretrain_section(root, stages) + _finetune_section(root) + holdout_lines(root, esc, _image)
    return "\n".join(lines) + "\n"


def _image_under(root: str, rel: str) -> tuple[bytes, str] | None:
    """The bytes and type of image ``rel`` when it is a PNG/JPEG file inside ``root``, else None.

    ``realpath`` on both sides: a symlink or ``..`` that leads out of the run folder is refused,
    so a crafted path cannot pull another file (``/etc/passwd``, a key) into a shared report.
    """
    if afs.is_remote(root):
        path = afs.join(root, rel)
        inside = _SAFE_REL.fullmatch(rel) is not None and ".." not in rel.split("/")
    else:
        base = os.path.realpath(root)
        path = os.path.realpath(os.path.join(base, rel))
        inside = os.path.commonpath([base, path]) == base and os.path.isfile(path)
    if not inside or not afs.exists(path):
        return None
    data = afs.read_bytes(path)
    kind = next((t for magic, t in _IMAGE_MAGIC.items() if data.startswith(magic)), None)
    return (data, kind) if kind else None


def _inline_images(page: str, root: str) -> str:
    """Replace ``src="rel.png"`` by a base64 data URI so the HTML stands alone.

    Only images inside the run folder are inlined; any other ``src`` is emptied (never left
    pointing at a file or URL the reader's browser would fetch).
    """
    def swap(match: re.Match) -> str:
        found = _image_under(root, html.unescape(match.group(1)))
        if found is None:
            return 'src=""'
        data, kind = found
        return f'src="data:{kind};base64,{base64.b64encode(data).decode("ascii")}"'

    return re.sub(r'src="([^"]*)"', swap, page)


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
    text = report_markdown(plan.root, stages, run_verdict(plan, stages))
    paths = {"md": plan.path("report.md"), "html": plan.path("report.html")}
    atomic_write_text(paths["md"], text)
    atomic_write_text(paths["html"], to_html(text, plan.root))
    return paths
