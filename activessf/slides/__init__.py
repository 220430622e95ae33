"""Whole-slide images: readers (OpenSlide, tiffslide), tiling math, per-tile work. No Ray here."""
