"""Dispatch an image to the configured CRF preset."""

from __future__ import annotations

import numpy as np

from activessf.regions.config import RegionsConfig
from activessf.regions.types import Region


def find_regions(rgb: np.ndarray, cfg: RegionsConfig) -> list[Region]:
    """Kept cell regions of one image, sorted top-to-bottom then left-to-right.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        cfg: Stage config; ``cfg.preset`` picks ``paper`` or ``default``.

    Returns:
        Regions in original-image pixels, in a deterministic order (so region ids are stable).
    """
    if cfg.preset == "paper":
        from activessf.regions.paper import find_regions_paper

        regions = find_regions_paper(rgb, cfg.paper, cfg.seed)
    else:
        from activessf.regions.adaptive import find_regions_default

        regions = find_regions_default(rgb, cfg.default, cfg.seed)
    return sorted(regions, key=lambda r: (r.y, r.x, r.h, r.w))
