"""Config of the Cell Region Filtering stage (both presets; every number is a field)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from activessf.config import require

# Kinds of region the default preset tells apart (the paper preset has one, "cell").
REGION_KINDS = ("nucleated", "platelet")


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
    # 1024 is ~3x cheaper than 4096 with the same agreement with the all-pixel reference on pbc11
    # (the reference's own seed-to-seed stain-mask IoU, ~0.79, bounds any implementation).
    fit_pixels: int = 1024
    kmeans_iters: int = 30
    # Init of the 20 -> 10 count-weighted merge: "ward" (deterministic weighted-Ward seeding, see
    # regions/merge.py; raises agreement with the literal CRF on pbc11 from ~0.75 to ~0.81 IoU) or
    # "kmeans++" (seeded random init, as scikit-learn/OpenCV default).
    merge_init: str = "ward"
    # Lloyd stops early once no centre moves more than this many colour levels.
    kmeans_eps: float = 1.0
    # Bits per channel of the colour lookup table that answers "is this pixel's nearest centre a
    # stain colour" (5 -> 32k RGB bins). Speed only: pixels of bins that straddle a decision
    # boundary are decided exactly, so the mask does not depend on it.
    lut_bits: int = 5
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
        fit_ok = self.fit_pixels == 0 or self.fit_pixels >= self.k_first
        require(fit_ok, "paper.fit_pixels", "must be 0 or >= k_first")
        require(self.kmeans_iters >= 1, "paper.kmeans_iters", "must be >= 1")
        require(self.merge_init in ("ward", "kmeans++"), "paper.merge_init", "must be 'ward' or 'kmeans++'")
        require(1 <= self.lut_bits <= 7, "paper.lut_bits", "must be in [1, 7]")
        for name in ("purple_lower", "purple_upper", "blue_lower", "blue_upper"):
            require(len(getattr(self, name)) == 3, f"paper.{name}", "must be [H, S, V]")
        require(0.0 <= self.min_fill_rate <= 1.0, "paper.min_fill_rate", "must be in [0, 1]")


@dataclass
class DefaultCRFParams:
    """Scale- and stain-adaptive CRF (rules in ``activessf/regions/adaptive.py``).

    Colours are optical densities (OD, ``-log(I / 256)``); no field names a hue. Lengths ending
    in ``_d`` are multiples of the image's red-cell diameter ``d``, which the preset measures on
    every image; no field is in pixels of a particular microscope.
    """

    # Gaussian denoise kernel: sensor and JPEG noise is pixel-sized whatever the magnification.
    blur_ksize: int = 3
    # Colour clusters (K-means in OD) that the background and red-cell colours are read from.
    k_colors: int = 8
    # Pixels sampled to fit K-means and to vote for the red-cell direction; 0 = all pixels.
    fit_pixels: int = 4096
    # Lloyd iterations of the colour K-means.
    kmeans_iters: int = 30
    # Smallest cluster share that may be the background (glints on red cells are brighter but rare).
    min_cluster_frac: float = 0.02
    # OD length below which a colour counts as unstained (the usual transparency cut in stain
    # vector estimation, Macenko et al. 2009).
    od_floor: float = 0.15
    # Red-cell pixels share one dye direction in OD to within this angle (degrees): the
    # red-cell direction is the one most stained pixels fall within this angle of.
    rbc_cone_deg: float = 10.0
    # The nuclear-stain threshold (Otsu's) is at least this many times the median off-axis OD
    # of stained pixels, i.e. well above red-cell noise, so a field without nuclei stays empty.
    stain_noise_factor: float = 4.0
    # Pixels denser than this many typical red cells are stain whatever their colour: a red
    # cell is a thin film of nearly constant density, two overlapping ones reach 2.
    dense_factor: float = 2.5
    # d is measured on the masks shrunk to about this many pixels.
    scale_pixels: int = 60000
    # Number of log-spaced radii (1 px to a third of the shrunk image) of the granulometry.
    scale_steps: int = 32
    # Where at least this many red cells lie alone and whole (convex, uncut, within a factor 2
    # of the granulometric mode), d is their median size instead of the mode.
    min_isolated: int = 3
    # Convex means area over convex-hull area at least this (a clump of cells is not).
    min_solidity: float = 0.9
    # Stain specks thinner than this (x d) are removed by an opening.
    speck_radius_d: float = 0.04
    # Stained parts closer than twice this (x d) are one object: the lobes of a segmented nucleus.
    group_radius_d: float = 0.25
    # Objects whose stained area has an equivalent diameter below this (x d) are dropped ...
    min_platelet_d: float = 0.15
    # ... at or above this (x d) are "nucleated", in between "platelet" (a platelet is ~0.3 d,
    # the smallest nucleus, a small lymphocyte's or an erythroblast's, ~0.7 d or more).
    min_nucleated_d: float = 0.6
    # A nucleated object's cell is searched up to this far (x d) from its stain; 0 = stain box.
    grow_margin_d: float = 0.6
    # The watershed seed of a cell is its stain dilated by this (x d), past the nuclear edge.
    seed_ring_d: float = 0.1
    # Pixels with less OD than this are background seeds of the watershed.
    background_od: float = 0.075
    # The watershed runs on the image smoothed by this Gaussian sigma (x d), so that granules
    # and chromatin texture do not make edges.
    edge_sigma_d: float = 0.03
    # Smallest half-width (x d) of a real body: thinner basin strands (leaks along red-cell
    # rims) are cut, red-cell seeds are red cells eroded by it, platelets are closed by it.
    strand_radius_d: float = 0.1
    # Kept regions need (cell pixels / box pixels) at least this.
    min_fill_rate: float = 0.3
    # Which region kinds are returned: "nucleated" and/or "platelet".
    keep_kinds: list[str] = field(default_factory=lambda: list(REGION_KINDS))

    def __post_init__(self) -> None:
        require(self.blur_ksize % 2 == 1 and self.blur_ksize > 0, "default.blur_ksize", "must be odd and > 0")
        require(self.k_colors >= 3, "default.k_colors", "must be >= 3")
        require(self.fit_pixels == 0 or self.fit_pixels >= self.k_colors, "default.fit_pixels",
                "must be 0 or >= k_colors")
        require(self.kmeans_iters >= 1, "default.kmeans_iters", "must be >= 1")
        require(0.0 < self.min_cluster_frac < 0.5, "default.min_cluster_frac", "must be in (0, 0.5)")
        require(self.od_floor > 0.0, "default.od_floor", "must be > 0")
        require(0.0 < self.rbc_cone_deg < 45.0, "default.rbc_cone_deg", "must be in (0, 45)")
        require(self.stain_noise_factor >= 1.0, "default.stain_noise_factor", "must be >= 1")
        require(self.dense_factor > 1.0, "default.dense_factor", "must be > 1")
        require(self.scale_pixels >= 1000, "default.scale_pixels", "must be >= 1000")
        require(self.scale_steps >= 8, "default.scale_steps", "must be >= 8")
        require(self.min_isolated >= 1, "default.min_isolated", "must be >= 1")
        require(0.0 < self.min_solidity <= 1.0, "default.min_solidity", "must be in (0, 1]")
        for name in ("speck_radius_d", "group_radius_d", "edge_sigma_d", "strand_radius_d", "background_od"):
            require(getattr(self, name) >= 0.0, f"default.{name}", "must be >= 0")
        require(0.0 <= self.min_platelet_d <= self.min_nucleated_d, "default.min_nucleated_d",
                "need 0 <= min_platelet_d <= min_nucleated_d")
        require(self.grow_margin_d >= 0.0, "default.grow_margin_d", "must be >= 0")
        require(self.grow_margin_d == 0 or 0.0 <= self.seed_ring_d < self.grow_margin_d, "default.seed_ring_d",
                "must be >= 0 and < grow_margin_d")
        require(0.0 <= self.min_fill_rate <= 1.0, "default.min_fill_rate", "must be in [0, 1]")
        require(len(self.keep_kinds) > 0 and set(self.keep_kinds) <= set(REGION_KINDS), "default.keep_kinds",
                f"must be a non-empty subset of {list(REGION_KINDS)}")


@dataclass
class SlideParams:
    """Whole-slide inputs (SVS, NDPI, MRXS, tiled TIFF...): how they are cut into tiles.

    Tile sizes are in *working* pixels: at ``mpp`` microns per pixel when the slide records
    its resolution, else at pyramid ``level``. A cell is found whole when it is at most
    ``overlap`` working pixels wide (see ``activessf/slides/tiling.py``).
    """

    # Side of a square tile the region filter sees, in working pixels.
    tile: int = 1024
    # Neighbouring tiles share this many pixels: at least the widest cell to be found whole
    # (64 um at 0.25 um/px: a myeloblast or a monocyte with room to spare, not a megakaryocyte).
    overlap: int = 256
    # Microns per working pixel (0.25 is a 40x scan); null = always use ``level``.
    mpp: float | None = 0.25
    # Pyramid level read when the slide records no resolution (or ``mpp`` is null); 0 = full.
    level: int = 0
    # A tile is bare glass, and skipped unread, when less than this share of it is stained on
    # the low-resolution level.
    min_tissue: float = 0.02
    # A low-resolution pixel counts as stained when its densest channel's optical density
    # (-log10(I / 255)) reaches this; clean glass is ~0.02-0.05, a red cell's rim ~0.2.
    stained_od: float = 0.1
    # The glass test reads the coarsest pyramid level whole, when its longer side is at most
    # this; a slide without such a level has every tile read.
    mask_max_side: int = 4096
    # Tiles per Ray Data batch (each tile is read inside the map, so this bounds task memory).
    tiles_per_batch: int = 4
    # Two kept boxes from different tiles overlapping this much (IoU) are one cell: the safety
    # net behind tile ownership (a cell's box drawn slightly apart in two tiles).
    dedup_iou: float = 0.5

    def __post_init__(self) -> None:
        require(self.tile >= 64, "slides.tile", "must be >= 64")
        require(0 <= self.overlap <= self.tile // 2, "slides.overlap", "must be in [0, tile / 2]")
        require(self.mpp is None or (math.isfinite(self.mpp) and self.mpp > 0), "slides.mpp", "must be > 0 or null")
        require(self.level >= 0, "slides.level", "must be >= 0")
        require(0.0 <= self.min_tissue <= 1.0, "slides.min_tissue", "must be in [0, 1]")
        require(self.stained_od > 0.0, "slides.stained_od", "must be > 0")
        require(self.mask_max_side >= 16, "slides.mask_max_side", "must be >= 16")
        require(self.tiles_per_batch >= 1, "slides.tiles_per_batch", "must be >= 1")
        require(0.0 < self.dedup_iou <= 1.0, "slides.dedup_iou", "must be in (0, 1]")


@dataclass
class RegionsConfig:
    """Cell Region Filtering stage: which preset, how crops are cut, how the Ray stage runs."""

    preset: Literal["default", "paper"] = "default"
    seed: int = 0
    # Images narrower or shorter than this are rejected (a 1x1 "image" holds no cell).
    min_side: int = 16
    # Images of more pixels than this are rejected from their header, before decoding (memory);
    # whole slides belong to a tiled reader.
    max_pixels: int = 50_000_000
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
    slides: SlideParams = field(default_factory=SlideParams)

    def __post_init__(self) -> None:
        require(self.min_side >= 1, "min_side", "must be >= 1")
        require(self.max_pixels >= self.min_side**2, "max_pixels", "must be >= min_side ** 2")
        require(self.crop_size >= 8, "crop_size", "must be >= 8")
        require(math.isfinite(self.crop_margin) and self.crop_margin >= 0.0, "crop_margin", "must be finite and >= 0")
        require(self.seed >= 0, "seed", "must be >= 0")
        require(self.concurrency is None or self.concurrency >= 1, "concurrency", "must be >= 1 or null")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.contact_sheet_images >= 0, "contact_sheet_images", "must be >= 0")
