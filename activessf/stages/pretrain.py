"""The pretraining stage: list the images, key the Ray run, train on Ray Train, export.

A rerun with the same ``train.storage_path``, recipe and images resumes the Ray run (its name is
keyed by the recipe and the images, :func:`keyed_run`); another recipe or selection starts a new
run. A finished run rerun this way trains nothing and re-exports.
"""

from __future__ import annotations

import os
from typing import Any

from activessf import console
from activessf.config import from_dict, save_config, to_dict
from activessf.distributed.epochs import watch_epochs
from activessf.distributed.pretrain import fit_ray
from activessf.distributed.pretrain_data import build_image_dataset, take_images
from activessf.distributed.runtime import data_context_quiet, ensure_ray
from activessf.distributed.train import storage_root
from activessf.io import fs as afs
from activessf.io.markers import content_stamp, files_stamp, recipe_fingerprint, stage_stamp
from activessf.models.registry import build_method
from activessf.pretrain.config import PretrainConfig
from activessf.pretrain.export import write_outputs
from activessf.pretrain.images import list_images


def keyed_run(cfg: PretrainConfig, data: Any, paths: list[str]) -> PretrainConfig:
    """``cfg`` with its Ray run name keyed by the recipe and the images.

    A rerun with another recipe or another selection (the pipeline reruns pretraining when the
    selection changes) must start over, not resume the old run's last checkpoint and export it
    again; the same recipe and data keep the name, so interrupted runs resume.

    Args:
        cfg: Stage config.
        data: As given to ``run_pretrain``; a stage folder stands for its images by its marker.
        paths: The images (``list_images(data)``); else their sizes and mtimes stand for them.
    """
    stamp = stage_stamp(str(data)) if isinstance(data, (str, os.PathLike)) else None
    init = content_stamp(cfg.init_checkpoint) if cfg.init_checkpoint else None
    fp = recipe_fingerprint("pretrain", to_dict(cfg), stamp or files_stamp(paths), init)
    tree = to_dict(cfg)
    tree["train"]["run_name"] = f"{cfg.train.run_name}_{fp[:10]}"
    return from_dict(PretrainConfig, tree)


def run_pretrain(data: str, output: str, cfg: PretrainConfig) -> dict[str, Any]:
    """Pretrain on the images under ``data``; write weights, logs and figures to ``output``.

    Args:
        data: Folder of images, ``.txt`` list of paths, or a stage folder / manifest.
        output: Output folder (local).
        cfg: Stage config; ``train.storage_path`` defaults to ``<output>/ray_runs``.

    Returns:
        Paths: ``encoder`` (safetensors), ``metrics`` (JSONL), ``loss_curve``,
        ``reconstructions`` (PNGs), ``config``, ``checkpoint``, plus ``epochs_done`` and ``completed``.
    """
    ensure_ray()
    data_context_quiet(progress=False)
    output = afs.abspath(output)  # an s3:// URI stays one
    save_config(cfg, output, "pretrain_config.yaml")
    paths = list_images(data)
    ds = build_image_dataset(paths, cfg.model.img_size, materialize=cfg.train.materialize)
    if cfg.train.materialize:
        kept = ds.count()
        console.detail(f"pretrain: {len(paths)} images = {kept} decoded + {len(paths) - kept} rejected (undecodable)",
                       err=False)
    with watch_epochs(output, console.label("pretrain"), cfg.optim.epochs) as callbacks:
        run = fit_ray(ds, keyed_run(cfg, data, paths), storage_root(cfg.train.storage_path, output), callbacks=callbacks)
    method = build_method(cfg.model.method, cfg)
    method.load_state_dict(run["state"]["model"])
    out: dict[str, Any] = write_outputs(method, run["history"], cfg, output, take_images(ds, cfg.train.num_reconstructions))
    out["checkpoint"] = run["result"].checkpoint.path
    out["epochs_done"] = int(run["state"]["epoch"])
    out["completed"] = out["epochs_done"] >= cfg.optim.epochs
    return out
