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
    """

    x: int
    y: int
    w: int
    h: int
    area: int
    fill_rate: float
