"""A bundle's classifier on onnxruntime or torch: uint8 crops ``[N, S, S, 3]`` -> probabilities ``[N, K]``.

No Ray here: the Ray Data actor, the local loop and the Serve replica each hold one.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from activessf.inference.bundle import ONNX_INPUT, load_bundle, read_meta
from activessf.inference.cells import normalize

Runtime = Literal["auto", "onnx", "torch"]


def resolve_runtime(runtime: Runtime, use_gpu: bool) -> str:
    """``auto`` is torch on a GPU (CUDA kernels, bf16-free fp32) and onnxruntime on CPU."""
    if runtime != "auto":
        return runtime
    return "torch" if use_gpu else "onnx"


class CellClassifier:
    """Loads a bundle once and classifies batches of crops.

    Args:
        folder: Bundle folder (checked: format, version, file digests).
        runtime: ``onnx``, ``torch`` or ``auto``.
        threads: Intra-op threads on CPU.
        use_gpu: Run torch on ``cuda`` (onnx stays on CPU; ``auto`` picks torch).
        batch_size: Crops per model call.
    """

    def __init__(self, folder: str, runtime: Runtime = "auto", threads: int = 1, use_gpu: bool = False,
                 batch_size: int = 64) -> None:
        self.runtime = resolve_runtime(runtime, use_gpu)
        self.batch_size = batch_size
        if self.runtime == "onnx":
            import onnxruntime as ort

            self.meta = read_meta(folder)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), opts,
                                                providers=["CPUExecutionProvider"])
        else:
            import torch

            torch.set_num_threads(threads)
            bundle = load_bundle(folder)
            self.meta = bundle.meta
            self.device = torch.device("cuda" if use_gpu else "cpu")
            self.model = bundle.model.to(self.device)
        self.classes = list(self.meta["classes"])
        self.mean, self.std = self.meta["input"]["mean"], self.meta["input"]["std"]

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.runtime == "onnx":
            return self.session.run(None, {ONNX_INPUT: x})[0]
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops ``[N, S, S, 3]`` -> float32 probabilities ``[N, K]`` (rows sum to 1)."""
        k = len(self.classes)
        if len(crops) == 0:
            return np.zeros((0, k), np.float32)
        out = [self._run(normalize(crops[i:i + self.batch_size], self.mean, self.std))
               for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(out).astype(np.float32)

    def probabilities_and_embedding(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 crops ``[N, S, S, 3]`` -> probabilities ``[N, K]`` and penultimate features ``[N, D]``.

        Torch runtime only: the ONNX graph ends at the probabilities.
        """
        import torch

        if self.runtime != "torch":
            raise ValueError("embeddings need the torch runtime (runtime='torch')")
        probs, feats = [], []
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(normalize(crops[i:i + self.batch_size], self.mean, self.std)).to(self.device)
            with torch.inference_mode():
                probs.append(self.model(x).float().cpu().numpy())
                feats.append(self.model.embed(x).float().cpu().numpy())
        if not probs:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(probs).astype(np.float32), np.concatenate(feats).astype(np.float32)
