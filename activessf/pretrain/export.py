"""Pretraining outputs: encoder weights and their descriptor, metrics log, loss curve, reconstructions.

``encoder.safetensors`` (timm's own key layout for ViT encoders) comes with ``encoder.json``, the
:class:`~activessf.models.descriptor.EncoderDescriptor` saying how to rebuild and load it; the
same JSON is in the safetensors header.

Every file is written whole through ``activessf.io.atomic`` (local or object storage).
"""

from __future__ import annotations

import io
import json
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from activessf.io.atomic import atomic_write_bytes, atomic_write_text


def encoder_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's tensors, contiguous and unshared (what safetensors requires)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in method.encoder.state_dict().items()}


def export_encoder(method: nn.Module, path: str, metadata: dict[str, Any] | None = None) -> str:
    """Write the encoder as ``.safetensors`` in timm's own key layout.

    ``timm.create_model(name, pretrained=True, num_classes=0,
    pretrained_cfg_overlay=dict(file=path))`` (plus the same ``img_size``/``patch_size``/
    ``encoder_kwargs`` used here) loads it directly.

    Args:
        method: Trained method with an ``encoder``.
        path: Destination ending in ``.safetensors``.
        metadata: String-able facts stored in the file header (encoder name, sizes).
    """
    from safetensors.torch import save

    meta = {"format": "pt", **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in (metadata or {}).items()}}
    atomic_write_bytes(path, save(encoder_state(method), metadata=meta))
    return path


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` whole; returns ``path``."""
    atomic_write_text(path, text)
    return path


def write_metrics(history: Sequence[dict], path: str) -> str:
    """One JSON object per epoch (epoch, loss, lr, images/s, ...)."""
    return write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_loss_curve(history: Sequence[dict], path: str, title: str = "pretraining loss") -> str:
    """Loss (and learning rate on a second axis) per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [r["loss"] for r in history], marker="o", ms=3, label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax2 = ax.twinx()
    ax2.plot(epochs, [r["lr"] for r in history], color="tab:orange", alpha=0.6, label="lr")
    ax2.set_ylabel("lr")
    handles = ax.get_lines() + ax2.get_lines()
    ax.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=8)
    atomic_write_bytes(path, _png(fig))
    plt.close(fig)
    return path


@torch.no_grad()
def reconstruction_grid(method: nn.Module, images: np.ndarray | torch.Tensor, seed: int = 0) -> np.ndarray:
    """Original / masked / reconstructed / reconstruction with visible patches pasted back.

    Args:
        method: MAE-like method with ``views``, ``forward`` returning ``pred``/``mask``,
            ``reconstruct``, ``patch`` and ``grid``.
        images: uint8 ``[N, S, S, 3]``.
        seed: Masking seed (the global RNG is left untouched).

    Returns:
        float ``[N, 4, S, S, 3]`` in [0, 1].
    """
    from activessf.models.masking import unpatchify

    method.eval()
    device = next(method.parameters()).device
    x = method.views.plain(torch.as_tensor(images)).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        out = method(x)
    recon = method.reconstruct(x, out["pred"].float())
    p = method.patch
    pix_mask = unpatchify(out["mask"].unsqueeze(-1).expand(-1, -1, p * p * 3).float(), p, method.grid)
    views = [x, x * (1 - pix_mask), recon, x * (1 - pix_mask) + recon * pix_mask]
    shown = torch.stack([method.views.denormalize(v) for v in views], dim=1)
    return shown.permute(0, 1, 3, 4, 2).cpu().numpy()


def plot_reconstructions(method: nn.Module, images: np.ndarray, path: str, seed: int = 0) -> str:
    """PNG grid from :func:`reconstruction_grid`, one row per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = reconstruction_grid(method, images, seed)
    titles = ["original", "masked", "reconstruction", "recon + visible"]
    rows = grid.shape[0]
    fig, axes = plt.subplots(rows, 4, figsize=(8, 2 * rows), squeeze=False)
    for r in range(rows):
        for c in range(4):
            axes[r, c].imshow(grid[r, c])
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(titles[c], fontsize=9)
    atomic_write_bytes(path, _png(fig))
    plt.close(fig)
    return path


def write_outputs(method: nn.Module, history: Sequence[dict], cfg: Any, output: str, sample: np.ndarray) -> dict[str, str]:
    """All stage outputs in ``output``: encoder + descriptor, metrics, loss curve, reconstructions, config.

    Args:
        method: Trained method (bare module).
        history: Per-epoch records.
        cfg: ``PretrainConfig``.
        output: Folder (local or object storage).
        sample: uint8 ``[K, S, S, 3]`` images for the reconstruction figure (K may be 0).

    Returns:
        Paths by role: ``encoder``, ``descriptor``, ``metrics``, ``loss_curve``, ``reconstructions``,
        ``config``.
    """
    from activessf.config import save_config
    from activessf.io import fs as afs
    from activessf.models.descriptor import DESCRIPTOR_FILE, HEADER_KEY

    afs.makedirs(output)
    m, desc = cfg.model, cfg.model.encoder_descriptor()
    # The flat keys serve readers of the header alone (features' pool_ssl source).
    meta = {"method": m.method, "encoder": m.encoder, "img_size": m.img_size, "patch_size": m.patch_size,
            "encoder_kwargs": m.encoder_kwargs, HEADER_KEY: desc.to_json()}
    paths = {
        "encoder": export_encoder(method, afs.join(output, desc.weights), meta),
        "descriptor": write_text(afs.join(output, DESCRIPTOR_FILE), desc.to_json() + "\n"),
        "metrics": write_metrics(history, afs.join(output, "metrics.jsonl")),
        "loss_curve": plot_loss_curve(history, afs.join(output, "loss_curve.png")),
        "config": str(save_config(cfg, output, "pretrain_config.yaml")),
    }
    if len(sample) and hasattr(method, "reconstruct"):  # contrastive methods have no pixels to show
        paths["reconstructions"] = plot_reconstructions(method, sample, afs.join(output, "reconstructions.png"), cfg.train.seed)
    return paths
