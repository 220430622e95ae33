"""The feature stage: embed every crop with the configured backbone into ``features.parquet``.

Skipped when its marker records the same fingerprint (config, crops, the source stage's stamp,
the weights file's content). Runs on Ray Data (``activessf.distributed.features``) or in-process.
"""

from __future__ import annotations

from typing import Iterable, Literal

import pyarrow as pa

from activessf import console
from activessf.config import to_dict
from activessf.features.backbone import FeatureExtractor
from activessf.features.config import FeaturesConfig
from activessf.features.sources import build_source_backbone, source_warning, warn_if_random
from activessf.features.stage import STATUS_SCHEMA, count_status, feature_items, features_schema, iter_local, split_features
from activessf.io import fs as afs
from activessf.io.atomic import AtomicParquetWriter
from activessf.io.items import source_stamp
from activessf.io.markers import begin_stage, content_stamp, fingerprint, write_marker


def run_features(
    source: str,
    out_dir: str,
    cfg: FeaturesConfig,
    labeled: bool = False,
    executor: Literal["ray", "local"] = "ray",
    force: bool = False,
) -> dict | None:
    """Run feature extraction: writes ``features.parquet``, ``status.parquet`` and the config.

    Args:
        source: Region stage folder, or image folder/manifest.
        out_dir: Output folder.
        cfg: Stage config.
        labeled: For an image folder, take labels from ImageFolder sub-folders.
        executor: ``ray`` or ``local`` (in-process).
        force: Rerun even when complete.

    Returns:
        Counts ``{"inputs", "ok", "rejected", "dim"}``, or None when skipped as complete.
    """
    items = feature_items(source, labeled)
    # The source's stamp: a rerun region stage (new crop_margin, new images) means new features.
    fp = fingerprint("features", to_dict(cfg), items.column("id").to_pylist(), items.column("path").to_pylist(),
                     items.column("label").to_pylist(), source_stamp(source, items), _weights_stamp(cfg))
    if not begin_stage("features", out_dir, fp, cfg, force):
        return None
    probe, data_cfg = build_source_backbone(cfg)
    size = int(data_cfg["input_size"][-1])
    warn_if_random(cfg)
    meta = {"backbone": cfg.backbone, "weights": cfg.weights, "data_config": data_cfg, "dim": int(probe.num_features),
            "seed": cfg.seed, "weights_stamp": _weights_stamp(cfg),  # select checks both sides match
            "source": cfg.source, "warning": source_warning(cfg)}
    schema = features_schema(meta["dim"], meta)
    if executor == "ray":
        from activessf.distributed.features import iter_ray

        batches = iter_ray(items, cfg, size)
    else:
        batches = iter_local(items, FeatureExtractor(cfg), size, cfg.batch_size)
    counts = _write(console.track_rows(batches, console.label("features"), items.num_rows), out_dir, schema)
    if counts["inputs"] != items.num_rows:
        raise RuntimeError(f"feature stage lost inputs: {items.num_rows} given, {counts['inputs']} written")
    counts["dim"] = meta["dim"]
    write_marker(out_dir, "features", fp, counts)
    console.detail(f"features: inputs={counts['inputs']} = ok {counts['ok']} + rejected {counts['rejected']}; "
                   f"dim {meta['dim']} ({cfg.backbone}, source {cfg.source})")
    warn_if_random(cfg)
    return counts


def _weights_stamp(cfg: FeaturesConfig) -> str | None:
    """Content of the weights file: new weights at the same path mean new features."""
    return content_stamp(cfg.weights) if cfg.weights else None


def _write(batches: Iterable[dict], out_dir: str, schema: pa.Schema) -> dict:
    total = ok = 0
    with AtomicParquetWriter(afs.join(out_dir, "features.parquet"), schema) as feat_w, AtomicParquetWriter(
        afs.join(out_dir, "status.parquet"), STATUS_SCHEMA
    ) as status_w:
        for batch in batches:
            feats, status = split_features(batch, schema)
            feat_w.write(feats)
            status_w.write(status)
            n, k = count_status(status)
            total, ok = total + n, ok + k
    return {"inputs": total, "ok": ok, "rejected": total - ok}
