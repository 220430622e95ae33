"""``activessf export``: a finished run's classifier -> a model bundle (no Ray).

A run is an ``activessf run`` folder (arms under ``finetune/<slug>``; the arm defaults to the best
by mean macro PR-AUC) or one ``activessf finetune`` folder. The bundle ships the arm's final fit
(``final/model.safetensors``) or, with ``ensemble=True``, the mean of its fold models.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import yaml

from activessf.config import to_dict
from activessf.inference.bundle import (
    BUNDLE_FORMAT,
    ONNX_INPUT,
    ONNX_OUTPUT,
    BundleError,
    ProbabilityModel,
    build_member,
    export_onnx,
    member_descriptor,
    package_version,
    sha256,
)
from activessf.inference.card import model_card
from activessf.io.atomic import atomic_folder
from activessf.io.markers import fingerprint

# ONNX and torch must agree this closely on the export's check batch (the bar).
ONNX_TOLERANCE = 1e-4


@dataclass
class ArmRun:
    """One fine-tuned arm of a run: its folder, display name and ``metrics.json``."""

    folder: str
    name: str
    metrics: dict[str, Any]

    @property
    def pr_auc(self) -> float:
        return float(self.metrics["summary"]["macro_pr_auc"]["mean"] or 0.0)


def _load_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def find_arms(run: str) -> list[ArmRun]:
    """Every finished arm of a pipeline run folder, or the one arm of a fine-tune folder."""
    folders = [run] if os.path.isfile(os.path.join(run, "metrics.json")) else []
    ft = os.path.join(run, "finetune")
    if not folders and os.path.isdir(ft):
        folders = [os.path.join(ft, d) for d in sorted(os.listdir(ft)) if os.path.isfile(os.path.join(ft, d, "metrics.json"))]
    arms = []
    for folder in folders:
        metrics = _load_json(os.path.join(folder, "metrics.json"))
        arms.append(ArmRun(folder, metrics.get("method", os.path.basename(folder)), metrics))
    if not arms:
        raise BundleError(f"{run}: no finished fine-tuning (expected metrics.json or finetune/<arm>/metrics.json)")
    return arms


def pick_arm(arms: list[ArmRun], wanted: str | None) -> ArmRun:
    """The arm named ``wanted`` (display name or folder name), else the best by macro PR-AUC."""
    if wanted is None:
        return max(arms, key=lambda a: a.pr_auc)
    for arm in arms:
        if wanted in (arm.name, os.path.basename(arm.folder)):
            return arm
    names = ", ".join(f"{a.name!r}" for a in arms)
    raise BundleError(f"no arm {wanted!r} in this run; arms: {names}")


def _member_states(arm: ArmRun, ensemble: bool) -> list[dict[str, torch.Tensor]]:
    """State dicts of the classifiers to ship: the final fit, or every fold's last checkpoint."""
    from safetensors.torch import load_file

    if not ensemble:
        path = os.path.join(arm.folder, "final", "model.safetensors")
        if not os.path.isfile(path):
            raise BundleError(f"{arm.folder}: no final model (run with finetune.train.final_fit=true or "
                              "pipeline.final_fit: true, or export the fold ensemble with --ensemble)")
        return [load_file(path)]
    states = []
    for fold in arm.metrics["folds"]:
        ckpt = fold.get("checkpoint")
        if not ckpt or not os.path.isfile(os.path.join(ckpt, "state.pt")):
            raise BundleError(f"{arm.folder}: fold {fold['fold']} has no local checkpoint to ensemble ({ckpt})")
        states.append(torch.load(os.path.join(ckpt, "state.pt"), map_location="cpu", weights_only=True)["model"])
    return states


def _regions_of(run: str, arm: ArmRun) -> tuple[dict[str, Any], str]:
    """The region-filtering config the arm's crops were cut with, and how labeled crops were made."""
    from activessf.regions.config import RegionsConfig

    for folder in (run, os.path.dirname(os.path.dirname(arm.folder))):
        path = os.path.join(folder, "pipeline_config.yaml")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                cfg = yaml.safe_load(fh)
            return cfg["regions"], cfg["pipeline"]["labeled_regions"]
    return to_dict(RegionsConfig()), "unknown"


def _build(arm: ArmRun, ensemble: bool) -> tuple[ProbabilityModel, dict[str, Any], dict[str, Any]]:
    """The arm's model to ship, its architecture descriptor and its fine-tune config (a dict)."""
    cfg = arm.metrics["config"]
    desc = member_descriptor(cfg["model"])
    k = len(arm.metrics["classes"])
    members = []
    for state in _member_states(arm, ensemble):
        net = build_member(desc, k)
        net.load_state_dict(state)
        members.append(net)
    return ProbabilityModel(members).eval(), desc, cfg


def _metadata(run: str, arm: ArmRun, desc: dict, cfg: dict, members: int, regions: tuple[dict, str]) -> dict[str, Any]:
    s = arm.metrics["summary"]
    cv = {m: s[m] for m in ("accuracy", "macro_pr_auc", "macro_f1")} | {
        "n_folds": len(arm.metrics["folds"]), "per_class_pr_auc": s.get("per_class_pr_auc", {})}
    return {
        "format": BUNDLE_FORMAT, "activessf_version": package_version(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "arm": arm.name, "run": os.path.abspath(run), "members": members,
        "kind": "fold ensemble" if members > 1 else "final fit on all labeled crops",
        "model": desc, "classes": list(arm.metrics["classes"]),
        "input": {"size": cfg["model"]["img_size"], "mean": list(cfg["aug"]["mean"]), "std": list(cfg["aug"]["std"]),
                  "layout": "NCHW float32 RGB, (pixel / 255 - mean) / std"},
        "onnx": {"input": ONNX_INPUT, "output": ONNX_OUTPUT, "batch_axis": "dynamic"},
        "regions": regions[0], "labeled_regions": regions[1], "cv": cv,
        "config_digest": fingerprint(arm.metrics["config"], regions[0]),
    }


def export_bundle(run: str, output: str, arm: str | None = None, ensemble: bool = False) -> dict[str, Any]:
    """Write a bundle for one arm of ``run`` into ``output`` (replaced whole, atomically).

    Args:
        run: Pipeline run folder or fine-tune folder (local).
        output: Bundle folder to write.
        arm: Arm display name or folder name (None = best by mean macro PR-AUC).
        ensemble: Ship the fold models' mean instead of the final fit.

    Returns:
        The bundle's ``model.json`` contents.
    """
    chosen = pick_arm(find_arms(run), arm)
    model, desc, cfg = _build(chosen, ensemble)
    return write_bundle(model, _metadata(run, chosen, desc, cfg, len(model.members), _regions_of(run, chosen)), output)


def write_bundle(model: ProbabilityModel, meta: dict[str, Any], output: str) -> dict[str, Any]:
    """Write ``model`` and its description as a bundle folder (replaced whole, atomically).

    Args:
        model: Images ``[B, 3, S, S]`` -> probabilities ``[B, K]``, in eval mode.
        meta: ``model.json`` contents without ``files`` (see ``_metadata``).
        output: Bundle folder.

    Returns:
        ``meta`` with the ONNX check and the file digests added.
    """
    from safetensors.torch import save_file

    with atomic_folder(output, prefix=".tmp-bundle-") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(tmp, "model.safetensors"))
        diff = export_onnx(model, os.path.join(tmp, "model.onnx"), meta["input"]["size"])
        if diff > ONNX_TOLERANCE:
            raise BundleError(f"ONNX and torch disagree by {diff:.2e} (> {ONNX_TOLERANCE}) on the check batch")
        meta["onnx"]["max_abs_diff_vs_torch"] = diff
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as fh:
            fh.write(model_card(meta))
        meta["files"] = {f: sha256(os.path.join(tmp, f)) for f in ("model.safetensors", "model.onnx", "README.md")}
        with open(os.path.join(tmp, "model.json"), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
    return meta
