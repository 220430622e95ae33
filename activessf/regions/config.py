"""Config of the Cell Region Filtering stage (both presets; every number is a field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from activessf.config import require


@dataclass
class PaperCRFParams:
    """The published CRF (Zhuang et al. 2025), every constant exposed.

    HSV values use OpenCV's scale: H in [0, 180), S and V in [0, 255].
    """

    normalize: bool = True
    blur_ksize: int = 3
    blur_sigma: float = 1.5
    k_first: int = 20
    k_merged: int = 10
    # Pixels sampled to fit the colour K-means; every pixel is still assigned. 0 = fit on all pixels.
    fit_pixels: int = 4096
    kmeans_iters: int = 30
    purple_lower: list[int] = field(default_factory=lambda: [30, 100, 0])
    purple_upper: list[int] = field(default_factory=lambda: [140, 255, 255])
    blue_lower: list[int] = field(default_factory=lambda: [95, 150, 50])
    blue_upper: list[int] = field(default_factory=lambda: [105, 255, 255])
    min_box_w: int = 70
    min_box_h: int = 70
    min_fill_rate: float = 0.7

    def __post_init__(self) -> None:
        require(self.blur_ksize % 2 == 1 and self.blur_ksize > 0, "paper.blur_ksize", "must be odd and > 0")
        require(self.k_first >= self.k_merged >= 1, "paper.k_merged", "need k_first >= k_merged >= 1")
        for name in ("purple_lower", "purple_upper", "blue_lower", "blue_upper"):
            require(len(getattr(self, name)) == 3, f"paper.{name}", "must be [H, S, V]")
        require(0.0 <= self.min_fill_rate <= 1.0, "paper.min_fill_rate", "must be in [0, 1]")


@dataclass
class DefaultCRFParams:
    """Scale- and stain-adaptive CRF (see ``activessf/regions/adaptive.py`` for the rules)."""

    blur_sigma_frac: float = 0.01
    k_colors: int = 8
    fit_pixels: int = 4096
    kmeans_iters: int = 30
    min_fill_rate: float = 0.4

    def __post_init__(self) -> None:
        require(self.k_colors >= 3, "default.k_colors", "must be >= 3")
        require(0.0 <= self.min_fill_rate <= 1.0, "default.min_fill_rate", "must be in [0, 1]")


@dataclass
class RegionsConfig:
    """Cell Region Filtering stage: which preset, how crops are cut, how the Ray stage runs."""

    preset: Literal["default", "paper"] = "default"
    seed: int = 0
    # Images narrower or shorter than this are rejected (a 1x1 "image" holds no cell).
    min_side: int = 16
    crop_size: int = 224
    # Square crop side = max(w, h) * (1 + crop_margin); the box stays centred.
    crop_margin: float = 0.25
    crop_format: Literal["png", "jpg"] = "png"
    contact_sheet_images: int = 16
    batch_size: int = 16
    # Parallel map tasks; None lets Ray Data decide (it never takes every CPU for tasks).
    concurrency: int | None = None
    paper: PaperCRFParams = field(default_factory=PaperCRFParams)
    default: DefaultCRFParams = field(default_factory=DefaultCRFParams)

    def __post_init__(self) -> None:
        require(self.min_side >= 1, "min_side", "must be >= 1")
        require(self.crop_size >= 8, "crop_size", "must be >= 8")
        require(self.crop_margin >= 0.0, "crop_margin", "must be >= 0")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.contact_sheet_images >= 0, "contact_sheet_images", "must be >= 0")
