"""Config of ``activessf predict`` and ``activessf serve`` (the ``predict`` section of a YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from activessf.config import require


@dataclass
class PredictConfig:
    """Applying a model bundle to new images."""

    # "cells": region filtering with the bundle's own preset, then one prediction per cell.
    # "crops": every input image is already one cell crop and is classified whole.
    mode: Literal["cells", "crops"] = "cells"
    # "auto" = onnxruntime on CPU, torch on a GPU.
    runtime: Literal["auto", "onnx", "torch"] = "auto"
    # Crops per classifier call.
    batch_size: int = 64
    # Images per unit of work; a finished chunk is written at once, so a rerun skips it.
    chunk_size: int = 64
    # Classifier actors; None = one per GPU when the cluster has GPUs, else one.
    concurrency: int | None = None
    # Threads of each classifier actor on CPU (onnxruntime / torch intra-op).
    threads: int = 1
    use_gpu: Literal["auto", "true", "false"] = "auto"
    # Cells whose top probability is below this are flagged ``low_confidence``.
    low_confidence: float = 0.5
    # Cells shown per predicted class on its contact sheet (highest confidence first); 0 = none.
    contact_sheet_cells: int = 24

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "predict.batch_size", "must be >= 1")
        require(self.chunk_size >= 1, "predict.chunk_size", "must be >= 1")
        require(self.concurrency is None or self.concurrency >= 1, "predict.concurrency", "must be >= 1 or null")
        require(self.threads >= 1, "predict.threads", "must be >= 1")
        require(0.0 <= self.low_confidence <= 1.0, "predict.low_confidence", "must be in [0, 1]")
        require(self.contact_sheet_cells >= 0, "predict.contact_sheet_cells", "must be >= 0")
