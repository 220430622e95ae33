"""Per-image cost and fidelity of the CRF presets, against a decode+blur floor and the literal CRF.

Rows, measured side by side in one run (interleaved per image, same images, same seed):

* ``floor``   - decode + 3x3 Gaussian blur: the least any CRF must do per image;
* ``paper``   - decode + ``find_regions_paper`` (the fast published CRF);
* ``default`` - decode + ``find_regions_default`` (skipped with a note if not importable);
* ``default_base`` - the same preset as of git revision ``--baseline-rev`` (``git_baseline.py``
  imports that revision's ``activessf/regions`` beside the current one), so old and new code
  are timed interleaved on the same images under the same load; the images whose regions
  differ between the two are counted;
* ``literal`` - decode + ``benchmarks/literal_crf.py`` (scikit-learn K-means on every pixel,
  one init): the straightforward implementation, the time the paper preset is compared with;
* ``literal_stable`` - the same with ``STABLE_N_INIT`` restarts: the fidelity reference.

Every row includes the decode, so ratios compare whole per-image work. The fast rows are
repeated ``--repeats`` times per image (median and min kept); ``literal`` runs once. ``--threads``
(default 1) caps OpenCV and the BLAS/OpenMP pools, so each row is the cost of one core - how
the Ray stage spends them (one task per core).

Fidelity of ``paper`` vs ``literal_stable``: stain-mask IoU (mean, min, share >= 0.95) and
kept-region agreement. Context lines keep the IoU honest: ``literal_stable`` against itself with
the next seed (how stable the published method is: it bounds any reimplementation), the
one-init ``literal`` against ``literal_stable`` (what an exact all-pixel fit scores), and ``paper``
against the literal mask of *its own* fitted palette (must be exactly 1: the lookup tables are
exact; only the sampled K-means fit differs from the literal method).

``--tiles`` adds 1024 x 1024 tiles (3 x 3 mosaics of bccd smears, seeded) and reports the
default preset's tiles/s per core, new and baseline.

    .venv/bin/python benchmarks/bench_regions.py --n 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from activessf.io.decode import decode_image  # noqa: E402
from activessf.regions.common import denoise  # noqa: E402
from activessf.regions.config import DefaultCRFParams, PaperCRFParams  # noqa: E402
from git_baseline import load_regions_at  # noqa: E402
from regions_tiles import tile_section  # noqa: E402

from activessf.regions.paper import (  # noqa: E402
    find_regions_paper,
    fit_palette,
    paper_stain_mask,
    preprocess,
)
from literal_crf import (  # noqa: E402
    STABLE_N_INIT,
    literal_find_regions,
    literal_stain_mask,
    mask_from_palette,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="images to measure (first N, sorted by name)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "pbc11" / "unlabeled")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "bench_regions.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each fast row per image")
    p.add_argument("--threads", type=int, default=1, help="OpenCV / BLAS / OpenMP threads")
    p.add_argument("--no-seed-baseline", action="store_true", help="skip literal seed-vs-seed IoU")
    p.add_argument("--no-literal", action="store_true", help="skip the literal rows and the fidelity checks")
    p.add_argument("--baseline-rev", default="0fb2393",
                   help="git revision of the default_base row (before issue 20's speed work); '' to skip")
    p.add_argument("--tiles", type=int, default=8, help="1024x1024 bccd mosaic tiles to time (0 to skip)")
    p.add_argument("--memory-sizes", type=int, nargs="*", default=[1000, 4000],
                   help="input counts for the Ray Data peak-memory runs (none to skip)")
    return p.parse_args(argv)


def load_default_preset():
    """``find_regions_default`` or None (printed note) when the default preset is not available."""
    try:
        from activessf.regions.adaptive import find_regions_default
    except ImportError as exc:
        print(f"note: default preset not importable ({exc}); its row is skipped")
        return None
    return find_regions_default


def load_baseline(rev: str):
    """``(find_regions_default, DefaultCRFParams)`` of the default preset at git revision ``rev``."""
    module = load_regions_at(rev, "adaptive")
    return module.find_regions_default, sys.modules[module.__package__ + ".config"].DefaultCRFParams


def timed(fn, repeats: int) -> tuple[tuple[float, float, float], object]:
    """Median (wall, CPU) and min wall seconds of ``fn()`` over ``repeats`` calls, and its last result.

    CPU time of this process is reported beside wall time because on a shared machine it is
    the steadier of the two, and the min is the run least disturbed by other work; on a quiet
    machine with ``--threads 1`` they all agree.
    """
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return (statistics.median(walls), statistics.median(cpus), min(walls)), out


def region_tuples(regions) -> list[tuple]:
    return sorted((r.x, r.y, r.w, r.h, r.kind) for r in regions)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def box_iou(a, b) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter)


def matched_regions(mine: list, ref: list, thr: float = 0.5) -> int:
    """Greedy one-to-one matches of boxes at IoU >= ``thr``."""
    free, hits = list(ref), 0
    for r in mine:
        best = max(free, key=lambda q: box_iou(r, q), default=None)
        if best is not None and box_iou(r, best) >= thr:
            free.remove(best)
            hits += 1
    return hits


def measure_image(data: bytes, args, paper: PaperCRFParams, default_fn, baseline) -> dict:
    """All rows for one image, interleaved, plus the untimed fidelity checks."""
    seed, reps = args.seed, args.repeats
    row = {}
    row["floor"], _ = timed(lambda: denoise(decode_image(data).image, 3, 1.5), reps)
    row["paper"], regions = timed(lambda: find_regions_paper(decode_image(data).image, paper, seed), reps)
    if default_fn is not None:
        dflt = DefaultCRFParams()
        row["default"], dregs = timed(lambda: default_fn(decode_image(data).image, dflt, seed), reps)
        row["default_regions"] = len(dregs)
        if baseline is not None:
            base_fn, base_params = baseline[0], baseline[1]()
            row["default_base"], bregs = timed(lambda: base_fn(decode_image(data).image, base_params, seed), reps)
            row["default_same_as_base"] = region_tuples(dregs) == region_tuples(bregs)
    if args.no_literal:
        return row
    row["literal"], (one_mask, _) = timed(lambda: literal_find_regions(decode_image(data).image, paper, seed), 1)
    row["literal_stable"], (lit_mask, lit_regions) = timed(
        lambda: literal_find_regions(decode_image(data).image, paper, seed, STABLE_N_INIT), 1
    )
    rgb = decode_image(data).image
    mask = paper_stain_mask(rgb, paper, seed)
    smooth = preprocess(rgb, paper)
    own = mask_from_palette(smooth, *fit_palette(smooth, paper, seed), paper)
    row.update(
        iou=mask_iou(mask, lit_mask),
        literal_one_init_iou=mask_iou(one_mask, lit_mask),
        own_palette_identical=bool(np.array_equal(mask, own)),
        paper_regions=len(regions),
        literal_regions=len(lit_regions),
        matched=matched_regions(regions, lit_regions),
        mask_frac_paper=float(mask.mean()),
        mask_frac_literal=float(lit_mask.mean()),
    )
    if not args.no_seed_baseline:
        row["literal_seed_iou"] = mask_iou(lit_mask, literal_stain_mask(rgb, paper, seed + 1, STABLE_N_INIT))
    return row


def iou_stats(values: list[float]) -> dict:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "min": float(v.min()), "frac_ge_0.95": float(np.mean(v >= 0.95))}


def summarise(per_image: list[dict]) -> dict:
    """Per-row time stats (ms), ratios and fidelity aggregates."""
    out = {"rows": {}}
    for name in ("floor", "paper", "default", "default_base", "literal", "literal_stable"):
        if name in per_image[0]:
            wall, cpu, best = ([r[name][i] * 1000 for r in per_image] for i in range(3))
            out["rows"][name] = {"mean_ms": statistics.fmean(wall), "median_ms": statistics.median(wall),
                                 "min_mean_ms": statistics.fmean(best), "cpu_mean_ms": statistics.fmean(cpu)}
    rows = out["rows"]
    out["paper_over_floor"] = rows["paper"]["mean_ms"] / rows["floor"]["mean_ms"]
    if "default" in rows:
        out["default_over_floor"] = rows["default"]["mean_ms"] / rows["floor"]["mean_ms"]
    if "default_base" in rows:
        out["default_base_over_default"] = {k: rows["default_base"][k] / rows["default"][k] for k in rows["default"]}
        out["default_same_as_base_frac"] = float(np.mean([r["default_same_as_base"] for r in per_image]))
    if "literal" not in rows:
        return out
    out["literal_over_paper"] = rows["literal"]["mean_ms"] / rows["paper"]["mean_ms"]
    out["iou"] = iou_stats([r["iou"] for r in per_image])
    out["literal_one_init_iou"] = iou_stats([r["literal_one_init_iou"] for r in per_image])
    if "literal_seed_iou" in per_image[0]:
        out["literal_seed_iou"] = iou_stats([r["literal_seed_iou"] for r in per_image])
    out["own_palette_identical_frac"] = float(np.mean([r["own_palette_identical"] for r in per_image]))
    out["regions"] = {
        "paper": sum(r["paper_regions"] for r in per_image),
        "literal": sum(r["literal_regions"] for r in per_image),
        "matched_iou_0.5": sum(r["matched"] for r in per_image),
        "images_same_kept_set": float(np.mean([
            r["paper_regions"] == r["literal_regions"] == r["matched"] for r in per_image
        ])),
    }
    return out


def print_table(summary: dict, n: int) -> None:
    rows, floor = summary["rows"], summary["rows"]["floor"]["mean_ms"]
    print(f"\nPer-image time over {n} images (ms; every row includes the decode)")
    cpu_floor = rows["floor"]["cpu_mean_ms"]
    print(f"{'row':<15}{'mean ms':>10}{'median ms':>11}{'min ms':>9}{'x floor':>9}{'CPU ms':>10}{'CPU x floor':>13}")
    for name, r in rows.items():
        print(f"{name:<15}{r['mean_ms']:>10.2f}{r['median_ms']:>11.2f}{r['min_mean_ms']:>9.2f}"
              f"{r['mean_ms'] / floor:>9.1f}{r['cpu_mean_ms']:>10.2f}{r['cpu_mean_ms'] / cpu_floor:>13.1f}")
    print(f"paper / floor = {summary['paper_over_floor']:.2f}")
    if "default_base_over_default" in summary:
        ratio = summary["default_base_over_default"]
        print(f"default_base / default: mean {ratio['mean_ms']:.2f}x, min {ratio['min_mean_ms']:.2f}x, "
              f"CPU {ratio['cpu_mean_ms']:.2f}x; same regions on {summary['default_same_as_base_frac']:.0%} of images")
    if "literal_over_paper" not in summary:
        return
    print(f"literal / paper = {summary['literal_over_paper']:.0f}")

    def fmt(s: dict) -> str:
        return f"mean {s['mean']:.3f}  min {s['min']:.3f}  >=0.95 {s['frac_ge_0.95']:.0%}"

    print(f"\nstain-mask IoU vs literal_stable (n_init={STABLE_N_INIT}), paper: {fmt(summary['iou'])}")
    if "literal_seed_iou" in summary:
        print(f"  context, literal_stable seed s vs s+1: {fmt(summary['literal_seed_iou'])}")
    print(f"  context, literal (one init):           {fmt(summary['literal_one_init_iou'])}")
    identical = summary["own_palette_identical_frac"]
    print(f"  paper mask == literal mask of paper's own palette: {identical:.0%} of images")
    reg = summary["regions"]
    print(f"kept regions: paper {reg['paper']}, literal_stable {reg['literal']}, matched (box IoU>=0.5) "
          f"{reg['matched_iou_0.5']}; images with the same kept set {reg['images_same_kept_set']:.0%}")


def per_image_section(args: argparse.Namespace) -> dict:
    """Time and fidelity of every preset on the first ``args.n`` images of ``args.data``."""
    paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.n]
    if not paths:
        raise SystemExit(f"no images in {args.data}")
    blobs = [p.read_bytes() for p in paths]  # disk reads stay out of the timings
    paper, default_fn = PaperCRFParams(), load_default_preset()
    baseline = load_baseline(args.baseline_rev) if args.baseline_rev and default_fn is not None else None
    per_image = []
    for i, data in enumerate(blobs):
        per_image.append(measure_image(data, args, paper, default_fn, baseline))
        print(f"\r{i + 1}/{len(blobs)} images", end="", flush=True)
    summary = summarise(per_image)
    print_table(summary, len(blobs))
    names = [p.name for p in paths]
    return {"summary": summary, "images": [{"name": n, **r} for n, r in zip(names, per_image)]}


def memory_section(args: argparse.Namespace) -> list[dict]:
    """Peak memory of the Ray Data region stage at ``--memory-sizes`` inputs (pbc11 images)."""
    from benchmarks.stage_memory import measure_stage_memory

    pbc = args.data.parent
    paths = sorted(str(p) for p in pbc.glob("unlabeled/*.jpg")) + sorted(str(p) for p in pbc.glob("labeled/*/*.jpg"))
    sizes = [n for n in args.memory_sizes if n <= len(paths)]
    rows = measure_stage_memory(paths, sizes, preset="default")
    print("\nRay Data region stage (default preset), peak RSS of driver + Ray processes")
    print(f"{'inputs':>7}{'regions':>9}{'seconds':>9}{'baseline MiB':>14}{'peak MiB':>10}{'peak-baseline':>15}")
    for r in rows:
        print(f"{r['inputs']:>7}{r['regions']:>9}{r['seconds']:>9}{r['baseline_mib']:>14}{r['peak_mib']:>10}"
              f"{r['peak_over_baseline_mib']:>15}")
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cv2.setNumThreads(args.threads)
    report = {"args": {k: str(v) for k, v in vars(args).items()}}
    with threadpool_limits(limits=args.threads):
        report["per_image"] = per_image_section(args)
        if args.tiles:
            base = load_baseline(args.baseline_rev) if args.baseline_rev else None
            report["tiles"] = tile_section(args.data.parents[1] / "bccd" / "JPEGImages", args.tiles, args.repeats,
                                           args.seed, base)
    if args.memory_sizes:
        report["ray_stage_memory"] = memory_section(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
