"""Selection quality against the pool's truth (benchmarks only: no pipeline stage reads the truth).

A pool crop is *relevant* when it is the central cell of its pool image (the region containing
the image centre, the smallest when several do, as ``activessf.pipeline.labeled`` picks labeled
crops) and that image's true class is one of the labeled classes. Everything else is an
off-centre fragment or neighbour, or a cell of a class outside the labeled set (IG, NEUTROPHIL).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activessf.pipeline.labeled import central_rows

RARE = ("MY", "BA", "MMY", "PMY")


def pool_truth(regions_dir: Path, truth_csv: Path) -> dict[str, tuple[bool, str]]:
    """Per pool region id: (is the central cell of its image, true class of its image).

    Args:
        regions_dir: Region stage folder of the pool (``manifest.parquet``, ``regions.parquet``).
        truth_csv: ``file,label`` rows, one per pool image.
    """
    with open(truth_csv) as fh:
        truth = {r["file"]: r["label"] for r in csv.DictReader(fh)}
    manifest = pq.read_table(regions_dir / "manifest.parquet", columns=["image_id", "status", "width", "height"])
    ok = manifest.filter(pc.equal(manifest["status"], "ok"))
    sizes = dict(zip(ok["image_id"].to_pylist(), zip(ok["width"].to_pylist(), ok["height"].to_pylist())))
    regions = pq.read_table(regions_dir / "regions.parquet", columns=["region_id", "image_id", "source_path", "x", "y", "w", "h"])
    central = set(central_rows(regions, sizes))
    ids, files = regions["region_id"].to_pylist(), regions["source_path"].to_pylist()
    return {rid: (row in central, truth[Path(f).name]) for row, (rid, f) in enumerate(zip(ids, files))}


def effective_classes(counts: Counter) -> float:
    """exp(Shannon entropy) of a class mix: 1 for one class, K for K equal classes."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    p = np.asarray([c / total for c in counts.values() if c > 0])
    return float(math.exp(-(p * np.log(p)).sum()))


def mix_metrics(ids: Iterable[str], info: dict[str, tuple[bool, str]], labeled_classes: Sequence[str]) -> dict:
    """Relevance, rare share and class mix of a set of pool crops.

    Returns:
        ``n``; ``relevance`` (central cell of a labeled class / n); ``central`` (central / n);
        ``rare_share`` (rare central / central); ``rare_share_all`` (rare central / n);
        ``effective_classes`` of the central cells' classes; ``classes`` (central cells per class).
    """
    ids = list(ids)
    central = Counter(info[i][1] for i in ids if info[i][0])
    n, n_central = len(ids), sum(central.values())
    relevant = sum(c for cls, c in central.items() if cls in labeled_classes)
    rare = sum(central[c] for c in RARE)
    return {"n": n, "relevance": relevant / max(1, n), "central": n_central / max(1, n),
            "rare_share": rare / max(1, n_central), "rare_share_all": rare / max(1, n),
            "effective_classes": effective_classes(central), "classes": dict(sorted(central.items()))}


def mean_jaccard(sets: Sequence[set]) -> float:
    """Mean pairwise Jaccard overlap of the sets (1.0 when there is one set or all are empty)."""
    pairs = [(a, b) for a, b in itertools.combinations(sets, 2)]
    if not pairs:
        return 1.0
    return float(np.mean([len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]))


def random_subset(ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A seeded random subset of ``size`` pool crops (the selection's same-size control)."""
    rng = np.random.default_rng(seed)
    return [ids[i] for i in sorted(rng.choice(len(ids), size=min(size, len(ids)), replace=False))]
