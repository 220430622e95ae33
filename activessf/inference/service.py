"""What ``activessf serve`` answers for one posted image (no Ray: the Serve replica wraps it).

The same two steps as ``activessf predict`` (``cells_of_image``, then the bundle's classifier), so
an answer matches the prediction file for the same image and bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from activessf.config import from_dict
from activessf.inference.cells import cells_of_image
from activessf.inference.classifier import CellClassifier
from activessf.inference.config import PredictConfig
from activessf.regions.config import RegionsConfig

# A posted body larger than this is refused before decoding (a smear field is a few MB).
MAX_BODY_BYTES = 64 << 20


class BadImage(ValueError):
    """The posted image cannot be classified; the message is the reason sent back (HTTP 400)."""


class CellPredictor:
    """A bundle's classifier plus its region filter: image bytes -> JSON-able answer.

    Args:
        folder: Bundle folder.
        cfg: Predict config (mode, runtime, thresholds).
        use_gpu: Run torch on CUDA.
    """

    def __init__(self, folder: str, cfg: PredictConfig, use_gpu: bool = False) -> None:
        self.cfg = cfg
        self.clf = CellClassifier(folder, cfg.runtime, cfg.threads, use_gpu, cfg.batch_size)
        self.regions = from_dict(RegionsConfig, self.clf.meta["regions"])
        self.size = int(self.clf.meta["input"]["size"])

    def answer(self, data: bytes) -> dict[str, Any]:
        """Every cell of the image with its box, class and probabilities.

        Raises:
            BadImage: Empty, too large, undecodable or too small images (the reason says which).
        """
        if not data:
            raise BadImage("empty request body: POST the image file's bytes")
        if len(data) > MAX_BODY_BYTES:
            raise BadImage(f"image of {len(data)} bytes is over the {MAX_BODY_BYTES} byte limit")
        cells = cells_of_image(data, self.regions, self.size, self.cfg.mode)
        if cells.status != "ok":
            raise BadImage(cells.reason or "not a readable image")
        probs = self.clf.probabilities(cells.crops)
        return {"width": cells.width, "height": cells.height, "note": cells.reason, "mode": self.cfg.mode,
                "classes": self.clf.classes, "cells": self._cells(cells.boxes, cells.kinds, probs)}

    def _cells(self, boxes: np.ndarray, kinds: list[str], probs: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for (x, y, w, h), kind, p in zip(boxes.tolist(), kinds, probs):
            top = int(p.argmax())
            out.append({"x": x, "y": y, "w": w, "h": h, "kind": kind, "predicted": self.clf.classes[top],
                        "confidence": float(p[top]), "low_confidence": bool(p[top] < self.cfg.low_confidence),
                        "probabilities": {c: float(v) for c, v in zip(self.clf.classes, p)}})
        return out
