"""The model bundle: a trained classifier in a folder that describes itself (no Ray).

A bundle holds ``model.safetensors`` (a :class:`ProbabilityModel`: one fine-tuned classifier, or
the fold models of an ensemble), ``model.json`` (how to rebuild and feed it: timm name and
arguments, input size, mean/std, class names in output order, the region-filtering config the
crops were cut with, the cross-validation metrics, digests of every file), ``model.onnx`` (the
same network with a dynamic batch axis, probabilities out) and a ``README.md`` model card.
Loading rebuilds the network from ``model.json`` alone: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from activessf.errors import BundleError

BUNDLE_FORMAT = 1
FILES = ("model.json", "model.safetensors", "model.onnx", "README.md")
ONNX_INPUT, ONNX_OUTPUT = "image", "probabilities"


def package_version() -> str:
    try:
        return version("activessf")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


class ProbabilityModel(nn.Module):
    """Mean softmax of one or more classifiers: images ``[B, 3, S, S]`` -> probabilities ``[B, K]``."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = [F.softmax(m(x).float(), dim=1) for m in self.members]
        return torch.stack(probs).mean(0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, D]`` (the head's input), averaged over the members."""
        return torch.stack([pre_logits(m, x).float() for m in self.members]).mean(0)


def pre_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A classifier's pooled features before its last linear layer: timm's
    ``forward_head(pre_logits=True)``, or the encoder of an ``EncoderClassifier``."""
    if hasattr(model, "forward_head"):
        return model.forward_head(model.forward_features(x), pre_logits=True)
    return model.encoder(x)


def member_descriptor(model: dict[str, Any]) -> dict[str, Any]:
    """How to rebuild the classifier a fine-tune trained, from its config's ``model`` section.

    An encoder that is not a timm model (ConvMAE) is rebuilt from the export descriptor of the
    pretrained encoder the fine-tune started from (``encoder.json``), kept here whole.
    """
    from activessf.models.descriptor import read_descriptor

    init = model["init"]
    desc = read_descriptor(init) if init != "none" and os.path.isfile(init) else None
    if desc is not None and not desc.is_timm():
        return {"builder": "encoder", "encoder": json.loads(desc.to_json()), "img_size": model["img_size"]}
    return {"builder": "timm", "name": model["name"], "img_size": model["img_size"], "patch_size": model["patch_size"],
            "encoder_kwargs": dict(model["encoder_kwargs"])}


def build_member(desc: dict[str, Any], num_classes: int) -> nn.Module:
    """An untrained classifier of the architecture ``desc`` (from :func:`member_descriptor`)."""
    from activessf.finetune.model import EncoderClassifier, build_classifier

    if desc["builder"] == "encoder":
        from activessf.models.descriptor import EncoderDescriptor, build_encoder_module

        return EncoderClassifier(build_encoder_module(EncoderDescriptor(**desc["encoder"])), num_classes)
    from activessf.finetune.config import FtModelConfig

    m = FtModelConfig(name=desc["name"], init="none", img_size=desc["img_size"], patch_size=desc["patch_size"],
                      encoder_kwargs=dict(desc["encoder_kwargs"]), drop_path_rate=0.0)
    return build_classifier(m, num_classes)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(model: nn.Module, path: str, size: int) -> float:
    """Write ``model`` as ONNX (dynamic batch axis); returns the max |ORT - torch| on a check batch.

    Args:
        model: Images ``[B, 3, S, S]`` -> probabilities ``[B, K]``, in eval mode.
        path: Output ``.onnx`` file.
        size: Input side S.
    """
    import onnxruntime as ort

    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(model, (example,), path, input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                      dynamic_shapes=({0: batch},), dynamo=True, verbose=False, external_data=False)
    check = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(check).numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {ONNX_INPUT: check.numpy()})[0]
    return float(np.abs(got - ref).max())


@dataclass
class Bundle:
    """A loaded bundle: its description and the rebuilt model (eval mode, CPU)."""

    folder: str
    meta: dict[str, Any]
    model: ProbabilityModel

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def size(self) -> int:
        return int(self.meta["input"]["size"])

    @property
    def onnx_path(self) -> str:
        return os.path.join(self.folder, "model.onnx")


def read_meta(folder: str) -> dict[str, Any]:
    """``model.json`` of a bundle, checked for format, version and file digests."""
    if not os.path.isdir(folder):
        raise BundleError(f"{folder}: no such bundle folder (make one with `activessf export`)")
    missing = [f for f in FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise BundleError(f"{folder}: incomplete bundle, missing {', '.join(missing)}")
    try:
        with open(os.path.join(folder, "model.json"), encoding="utf-8") as fh:
            meta = json.load(fh)
    except ValueError as exc:
        raise BundleError(f"{folder}/model.json: not valid JSON ({exc})") from exc
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{folder}: bundle format {meta.get('format')!r}, this activessf reads format {BUNDLE_FORMAT}")
    made, here = meta.get("activessf_version"), package_version()
    if made != here:
        raise BundleError(f"{folder}: made by activessf {made}, this is {here}; export it again with this version")
    for name, digest in meta.get("files", {}).items():
        if sha256(os.path.join(folder, name)) != digest:
            raise BundleError(f"{folder}/{name}: contents differ from the digest in model.json (modified or corrupt)")
    return meta


def load_bundle(folder: str) -> Bundle:
    """Rebuild a bundle's model from its files (strict key match; nothing downloaded)."""
    from safetensors.torch import load_file

    folder = os.path.abspath(folder)
    meta = read_meta(folder)
    k = len(meta["classes"])
    model = ProbabilityModel([build_member(meta["model"], k) for _ in range(int(meta["members"]))])
    try:
        model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    except RuntimeError as exc:
        raise BundleError(f"{folder}/model.safetensors does not fit the model in model.json: {str(exc)[:300]}") from exc
    return Bundle(folder, meta, model.eval())
