"""Augmented views from uint8 image batches (torchvision.transforms.v2).

Decision (documented for the engine): augmentation runs per batch inside the training step,
on whichever device the batch is on, through the method's ``views``. Ray workers and the plain
loop therefore do identical work, and a GPU does the resizing. The random crop is drawn per
sample: v2 transforms draw one set of parameters per call, so a batched call would crop every
image of the batch the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_nchw_uint8(images: torch.Tensor) -> torch.Tensor:
    """Accept ``[N, H, W, 3]`` (Ray/NumPy layout) or ``[N, 3, H, W]`` uint8; return ``[N, 3, H, W]``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"expected a [N, H, W, 3] batch, got shape {tuple(images.shape)}")
    if images.shape[-1] == 3 and images.shape[1] != 3:
        return images.permute(0, 3, 1, 2).contiguous()
    if images.shape[1] == 3:
        return images
    raise ValueError(f"expected 3 channels, got shape {tuple(images.shape)}")


class ImageViews:
    """Random resized crop + horizontal flip, then float and normalise.

    Args:
        img_size: Output side in pixels.
        scale: Crop area range relative to the image (MAE: 0.2-1.0).
        hflip: Flip probability.
        mean, std: Normalisation per channel, in [0, 1] pixel units.
    """

    def __init__(
        self,
        img_size: int,
        scale: Sequence[float] = (0.2, 1.0),
        hflip: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.img_size = img_size
        self.augment = v2.Compose(
            [
                v2.RandomResizedCrop(img_size, scale=tuple(scale), interpolation=InterpolationMode.BICUBIC, antialias=True),
                v2.RandomHorizontalFlip(hflip),
            ]
        )
        self.resize = v2.Resize((img_size, img_size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        self.finish = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Training view: uint8 ``[N, H, W, 3]`` -> float ``[N, 3, S, S]``, one crop per sample."""
        x = to_nchw_uint8(images)
        x = torch.stack([self.augment(img) for img in x])
        return self.finish(x)

    def plain(self, images: torch.Tensor) -> torch.Tensor:
        """Evaluation view (resize only): uint8 ``[N, H, W, 3]`` -> float ``[N, 3, S, S]``."""
        x = to_nchw_uint8(images)
        if x.shape[-2:] != (self.img_size, self.img_size):
            x = self.resize(x)
        return self.finish(x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float ``[N, 3, S, S]`` normalised -> ``[N, 3, S, S]`` in [0, 1] for display."""
        return (x * self.std.to(x.device) + self.mean.to(x.device)).clamp(0.0, 1.0)
