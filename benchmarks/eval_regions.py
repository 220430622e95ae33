"""Measure the CRF presets against real annotations.

bccd (field-of-view smears, Pascal-VOC boxes): WBC recall at IoU >= 0.5 (one-to-one greedy
matching) and false regions per image (kept regions matching no WBC box), the false regions
broken down by what they sit on. pbc11 unlabeled (one cell per image, centred): central-cell
yield, the share of images with a kept region whose box contains the image centre, overall and
per class (the class file is read here, for the breakdown only; no preset reads it).

The default preset tags each region with a kind (``nucleated`` or ``platelet``); it is run once
keeping every kind and scored under two countings: ``nucleated`` only (the WBC task) and all kinds.

    .venv/bin/python benchmarks/eval_regions.py --limit 40
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import xml.etree.ElementTree as ET
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.regions.config import REGION_KINDS, DefaultCRFParams, PaperCRFParams

COUNTINGS = {"default": {"nucleated": ("nucleated",), "all": REGION_KINDS}, "paper": {"all": None}}


def load_preset(name: str):
    """``(function, params)`` of a preset; ``None`` if its module does not exist yet."""
    try:
        if name == "default":
            from activessf.regions.adaptive import find_regions_default

            return find_regions_default, DefaultCRFParams(keep_kinds=list(REGION_KINDS))
        from activessf.regions.paper import find_regions_paper

        return find_regions_paper, PaperCRFParams()
    except ImportError as exc:
        print(f"preset {name} unavailable: {exc}", file=sys.stderr)
        return None


def voc_boxes(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """``{class: [(x0, y0, x1, y1), ...]}`` of one Pascal-VOC file."""
    out: dict[str, list] = {}
    for obj in ET.parse(path).getroot().iter("object"):
        b = obj.find("bndbox")
        box = tuple(float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.setdefault(obj.find("name").text, []).append(box)
    return out


def iou(a, b) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def run_image(task: tuple[str, str, list[str]]) -> dict:
    """Run every preset on one image: ``{preset: {"boxes", "kinds", "seconds"}}``."""
    dataset, path, presets = task
    rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out = {"dataset": dataset, "path": path, "shape": rgb.shape[:2], "presets": {}}
    for name in presets:
        fn, params = load_preset(name)
        t0 = time.perf_counter()
        regions = fn(rgb, params, 0)
        out["presets"][name] = {
            "boxes": [(r.x, r.y, r.x + r.w, r.y + r.h) for r in regions],
            "kinds": [getattr(r, "kind", "cell") for r in regions],
            "seconds": time.perf_counter() - t0,
        }
    return out


def select(res: dict, kinds) -> list:
    """Boxes of one preset result whose kind is in ``kinds`` (all when ``None``)."""
    return [b for b, k in zip(res["boxes"], res["kinds"]) if kinds is None or k in kinds]


def score_bccd(results: list[dict], ann_dir: Path, preset: str, kinds) -> dict:
    """WBC recall at IoU 0.5 and false regions per image, with what the false ones sit on."""
    hit = total = false = 0
    best_iou: list[float] = []
    sits = {"wbc_loose": 0, "platelet": 0, "rbc": 0, "other": 0}
    for r in results:
        gt = voc_boxes(ann_dir / (Path(r["path"]).stem + ".xml"))
        wbc, boxes = gt.get("WBC", []), select(r["presets"][preset], kinds)
        pairs = sorted(((iou(b, g), i, j) for i, b in enumerate(boxes) for j, g in enumerate(wbc)), reverse=True)
        used_b, used_g = set(), set()
        for v, i, j in pairs:
            if v >= 0.5 and i not in used_b and j not in used_g:
                used_b.add(i)
                used_g.add(j)
        total += len(wbc)
        hit += len(used_g)
        best_iou += [max((iou(b, g) for b in boxes), default=0.0) for g in wbc]
        for i, b in enumerate(boxes):
            if i in used_b:
                continue
            false += 1
            if any(iou(b, g) >= 0.1 for g in wbc):
                sits["wbc_loose"] += 1
            elif any(iou(b, g) >= 0.3 for g in gt.get("Platelets", [])):
                sits["platelet"] += 1
            elif any(iou(b, g) >= 0.3 for g in gt.get("RBC", [])):
                sits["rbc"] += 1
            else:
                sits["other"] += 1
    n = len(results)
    return {"images": n, "wbc": total, "wbc_recall": hit / max(total, 1),
            "false_per_image": false / max(n, 1), "false_on": sits,
            "wbc_best_iou_quartiles": np.percentile(best_iou, [25, 50, 75]).round(3).tolist() if best_iou else None,
            "wbc_missed_iou_0.3_0.5": int(sum(0.3 <= v < 0.5 for v in best_iou)),
            "wbc_missed_iou_below_0.3": int(sum(v < 0.3 for v in best_iou))}


def score_pbc(results: list[dict], truth: dict[str, str], preset: str, kinds) -> dict:
    """Central-cell yield overall and per class; size of the central box."""
    per_class: dict[str, list[int]] = {}
    sizes, counts = [], []
    for r in results:
        h, w = r["shape"]
        cx, cy = w / 2, h / 2
        boxes = select(r["presets"][preset], kinds)
        central = [b for b in boxes if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
        counts.append(len(boxes))
        if central:
            b = min(central, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            sizes.append((b[2] - b[0], b[3] - b[1]))
        per_class.setdefault(truth.get(Path(r["path"]).name, "?"), []).append(int(bool(central)))
    sizes = np.array(sizes) if sizes else np.zeros((0, 2))
    return {
        "images": len(results),
        "central_yield": float(np.mean([v for vs in per_class.values() for v in vs])) if results else 0.0,
        "per_class": {c: {"n": len(v), "yield": float(np.mean(v))} for c, v in sorted(per_class.items())},
        "median_central_box_wh": np.median(sizes, axis=0).tolist() if len(sizes) else None,
        "regions_per_image": float(np.mean(counts)) if counts else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each set (0 = all)")
    ap.add_argument("--presets", nargs="+", default=["default", "paper"])
    ap.add_argument("--workers", type=int, default=2, choices=(1, 2))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "eval_regions.json")
    args = ap.parse_args()
    presets = [p for p in args.presets if load_preset(p) is not None]
    bccd = sorted((args.data / "bccd" / "JPEGImages").glob("*.jpg"))
    pbc = sorted((args.data / "pbc11" / "unlabeled").glob("*.jpg"))
    if args.limit:
        bccd, pbc = bccd[: args.limit], pbc[: args.limit]
    tasks = [("bccd", str(p), presets) for p in bccd] + [("pbc11", str(p), presets) for p in pbc]
    with Pool(args.workers) as pool:
        results = list(pool.imap(run_image, tasks, chunksize=4))
    with open(args.data / "pbc11" / "unlabeled_truth.csv") as f:
        truth = {row["file"]: row["label"] for row in csv.DictReader(f)}
    summary = summarise(results, presets, args.data, truth)
    print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    args.out.with_name(args.out.stem + "_images.json").write_text(json.dumps(results))
    print(f"wrote {args.out}")


def summarise(results: list[dict], presets: list[str], data: Path, truth: dict[str, str]) -> dict:
    """Scores of every preset and counting, plus per-image time per dataset."""
    by_set = {s: [r for r in results if r["dataset"] == s] for s in ("bccd", "pbc11")}
    summary: dict = {}
    for p in presets:
        for counting, kinds in COUNTINGS[p].items():
            summary[f"{p}/{counting}"] = {
                "bccd": score_bccd(by_set["bccd"], data / "bccd" / "Annotations", p, kinds),
                "pbc11": score_pbc(by_set["pbc11"], truth, p, kinds),
            }
        summary[f"{p}/seconds_per_image"] = {
            s: float(np.mean([r["presets"][p]["seconds"] for r in rs])) if rs else None for s, rs in by_set.items()
        }
    return summary


def print_table(summary: dict) -> None:
    """One row per preset/counting; then the per-class pbc11 yield."""
    rows = [k for k in summary if not k.endswith("seconds_per_image")]
    head = ("preset/counting", "WBC recall", "false/img", "false on wbc/plt/rbc/other", "pbc11 yield", "pbc box wh",
            "s/img bccd", "s/img pbc11")
    print("{:18s} {:>10s} {:>9s} {:>26s} {:>11s} {:>11s} {:>10s} {:>11s}".format(*head))
    for k in rows:
        b, p = summary[k]["bccd"], summary[k]["pbc11"]
        t = summary[k.split("/")[0] + "/seconds_per_image"]
        sits = "/".join(str(b["false_on"][c]) for c in ("wbc_loose", "platelet", "rbc", "other"))
        wh = "x".join(f"{v:.0f}" for v in (p["median_central_box_wh"] or [0, 0]))
        print(f"{k:18s} {b['wbc_recall']:10.3f} {b['false_per_image']:9.3f} {sits:>26s} {p['central_yield']:11.3f} "
              f"{wh:>11s} {t['bccd'] or 0:10.3f} {t['pbc11'] or 0:11.3f}")
    classes = sorted({c for k in rows for c in summary[k]["pbc11"]["per_class"]})
    print("\npbc11 central-cell yield per class")
    print(f"{'class (n)':16s}" + "".join(f"{k:>18s}" for k in rows))
    for c in classes:
        cells = [summary[k]["pbc11"]["per_class"].get(c) for k in rows]
        n = next(x["n"] for x in cells if x)
        print(f"{c + f' ({n})':16s}" + "".join(f"{(x['yield'] if x else float('nan')):18.3f}" for x in cells))


if __name__ == "__main__":
    main()
