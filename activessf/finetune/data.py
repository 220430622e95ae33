"""Labeled images in memory, training augmentation and batch iterators (no Ray).

The labeled sets fine-tuned here are small (hundreds to a few thousand crops), so each worker
decodes its images once into a uint8 array and augments per batch on the fly.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torchvision.transforms import v2

from activessf.finetune.config import FtAugConfig


class Augment:
    """Per-image random resized crop, flips, optional RandAugment; then normalisation."""

    def __init__(self, aug: FtAugConfig, img_size: int) -> None:
        ops = [v2.RandomResizedCrop(img_size, scale=tuple(aug.crop_scale), antialias=True),
               v2.RandomHorizontalFlip(aug.hflip), v2.RandomVerticalFlip(aug.vflip)]
        if aug.randaug_ops > 0:
            ops.append(v2.RandAugment(num_ops=aug.randaug_ops, magnitude=aug.randaug_magnitude))
        self.train = v2.Compose(ops)
        self.mean = torch.tensor(aug.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(aug.std).view(1, 3, 1, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 3, S, S]`` -> normalised float ``[B, 3, S, S]``."""
        return (x.float() / 255.0 - self.mean) / self.std

    def __call__(self, images: np.ndarray, train: bool) -> torch.Tensor:
        """uint8 ``[B, S, S, 3]`` -> float ``[B, 3, S, S]`` (augmented when ``train``)."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        if train:
            # One transform call per image: v2 would otherwise share one crop/op draw per batch.
            x = torch.stack([self.train(img) for img in x])
        return self.normalize(x)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``[K]`` (mean 1 over present classes; absent classes 0)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def epoch_order(labels: np.ndarray, balanced: bool, seed: int) -> np.ndarray:
    """Row order of one epoch: a permutation, or class-balanced draws with replacement.

    Args:
        labels: ``[N]`` class index of each training row.
        balanced: Draw rows with probability 1 / (K_present * class count).
        seed: Epoch-specific seed (the same on every worker, which then takes its own slice).

    Returns:
        ``[N]`` row indices.
    """
    rng = np.random.default_rng(seed)
    if not balanced:
        return rng.permutation(len(labels))
    counts = np.bincount(labels)
    p = 1.0 / counts[labels]
    return rng.choice(len(labels), size=len(labels), replace=True, p=p / p.sum())


def train_batches(
    images: np.ndarray, labels: np.ndarray, order: np.ndarray, batch_size: int, augment: Augment,
    rank: int = 0, world: int = 1,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This worker's augmented batches of one epoch.

    Args:
        images: uint8 ``[N, S, S, 3]`` training images.
        labels: ``[N]`` class indices.
        order: ``[N]`` epoch order from :func:`epoch_order` (same on every worker).
        batch_size: Per-worker batch size.
        augment: The training transform.
        rank, world: This worker's slice ``order[rank::world]`` (equal-length, trailing dropped).

    Yields:
        ``(x [B, 3, S, S] float, y [B] long)``; a last batch of 1 is dropped (batch norm).
    """
    per = len(order) // world
    mine = order[rank::world][:per]
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        if len(idx) < 2:
            break
        yield augment(images[idx], train=True), torch.from_numpy(labels[idx].astype(np.int64))


def num_train_batches(n: int, batch_size: int, world: int = 1) -> int:
    """Batches :func:`train_batches` yields per worker (at least 1)."""
    per = n // world
    full, rest = divmod(per, batch_size)
    return max(1, full + (1 if rest >= 2 else 0))


def eval_batches(images: np.ndarray, batch_size: int, augment: Augment) -> Iterator[torch.Tensor]:
    """Normalised, un-augmented ``[B, 3, S, S]`` batches in row order."""
    for start in range(0, len(images), batch_size):
        yield augment(images[start : start + batch_size], train=False)


def load_labeled(paths: Sequence[str], img_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize images; returns uint8 ``[N', S, S, 3]`` and the kept row indices ``[N']``."""
    from activessf.pretrain.images import load_image

    kept, images = [], []
    for i, p in enumerate(paths):
        img = load_image(p, img_size)
        if img is not None:
            kept.append(i)
            images.append(img)
    if not images:
        return np.zeros((0, img_size, img_size, 3), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.asarray(kept, np.int64)
