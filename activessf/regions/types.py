"""The value every CRF preset returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """One kept connected region, in original-image pixels.

    Attributes:
        x, y: Top-left corner of the bounding box.
        w, h: Box width and height.
        area: Number of region pixels.
        fill_rate: ``area / (w * h)``.
        kind: What the region holds: ``"nucleated"`` or ``"platelet"`` (default preset), or
            ``"cell"`` where the preset does not tell kinds apart (paper preset).
    """

    x: int
    y: int
    w: int
    h: int
    area: int
    fill_rate: float
    kind: str = "cell"
