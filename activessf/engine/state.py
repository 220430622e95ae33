"""Training-state checkpoints that load with ``torch.load(weights_only=True)``.

Everything saved is a tensor, number, string, list, dict or None: RNG states are converted
from NumPy/Python tuples to tensors and lists, the config is a plain dict.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), NumPy and Python RNG states in weights_only-safe types."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside a DDP/compile wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return model


def training_state(
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    epoch: int,
    config: dict,
    history: list[dict],
) -> dict[str, Any]:
    """Everything needed to continue a run after ``epoch`` completed epochs.

    Args:
        method: Model (wrapped or not; the bare state dict is saved).
        optimizer, scheduler: Their ``state_dict()`` is saved.
        scaler: ``GradScaler`` or None.
        epoch: Number of completed epochs.
        config: The resolved config as a plain dict.
        history: Per-epoch metric dicts so far.
    """
    return {
        "model": unwrap(method).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "config": config,
        "history": list(history),
        "rng": rng_state(),
    }


def restore_training_state(
    state: dict[str, Any],
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any = None,
    restore_rng: bool = True,
) -> int:
    """Load :func:`training_state` output in place; returns the number of completed epochs."""
    unwrap(method).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng and state.get("rng") is not None:
        set_rng_state(state["rng"])
    return int(state["epoch"])


def save_state(state: dict[str, Any], folder: str | os.PathLike, name: str = STATE_FILE) -> Path:
    """``torch.save`` into ``folder/name`` via a temporary file (no half-written checkpoint)."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_state(folder: str | os.PathLike, name: str = STATE_FILE) -> dict[str, Any]:
    """Read a saved state with ``weights_only=True`` onto the CPU."""
    return torch.load(Path(folder) / name, map_location="cpu", weights_only=True)
