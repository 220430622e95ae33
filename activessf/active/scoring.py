"""The two maps of the query's scoring pass over Arrow batches of crop paths (no Ray imported here).

``read_batch`` (CPU tasks) decodes crop files into model inputs; ``ScoreCrops`` (actors) holds
the final model (torch: the embedding is not in the ONNX graph) and turns them into
probabilities and penultimate features. A crop that cannot be read gets NaN probabilities, so
the ranking skips it instead of the pass failing on one bad file.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from activessf.inference.classifier import CellClassifier
from activessf.io import fs as afs
from activessf.io.decode import decode_image
from activessf.pretrain.images import resize_square


def read_crop(path: str, size: int) -> np.ndarray | None:
    """A crop file as the model's uint8 input ``[S, S, 3]`` (the fine-tuning loader's resize), or None."""
    try:
        decoded = decode_image(afs.read_bytes(path), 1)
    except OSError:
        return None
    return None if decoded.image is None else resize_square(decoded.image, size)


def read_batch(batch: pa.Table, size: int) -> pa.Table:
    """Map of the reading tasks: ``row``, ``path`` -> ``row``, ``crop`` (``S*S*3`` uint8 bytes, empty if unreadable)."""
    crops = [read_crop(p, size) for p in batch["path"].to_pylist()]
    blobs = pa.array([b"" if c is None else c.tobytes() for c in crops], pa.binary())
    return batch.select(["row"]).append_column("crop", blobs)


class ScoreCrops:
    """Map of the model actors: ``row``, ``crop`` -> ``row``, ``probs`` ``[K]``, ``emb`` ``[D]`` per row.

    Args:
        folder: Bundle folder. threads, use_gpu, batch_size: See :class:`CellClassifier`.
    """

    def __init__(self, folder: str, threads: int = 1, use_gpu: bool = False, batch_size: int = 64) -> None:
        self.clf = CellClassifier(folder, "torch", threads, use_gpu, batch_size)
        self.size = int(self.clf.meta["input"]["size"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        blobs = batch["crop"].to_pylist()
        ok = [i for i, b in enumerate(blobs) if b]
        stack = np.frombuffer(b"".join(blobs[i] for i in ok), np.uint8).reshape(-1, self.size, self.size, 3)
        probs, emb = self.clf.probabilities_and_embedding(stack)
        k, d = len(self.clf.classes), emb.shape[1] if len(ok) else 0
        # Unreadable crops: NaN probabilities, so the ranking leaves them out.
        p_all = np.full((len(blobs), k), np.nan, np.float32)
        e_all = np.zeros((len(blobs), d), np.float32)
        p_all[ok], e_all[ok] = probs, emb
        return batch.select(["row"]).append_column("probs", _lists(p_all)).append_column("emb", _lists(e_all))


def _lists(x: np.ndarray) -> pa.Array:
    """``[N, M]`` float32 -> a list<float32> Arrow array of N rows (no Python floats in between)."""
    offsets = pa.array(np.arange(len(x) + 1, dtype=np.int32) * x.shape[1])
    return pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1)))


def stack_lists(col: pa.ChunkedArray | pa.Array, width: int | None = None) -> np.ndarray:
    """A list<float32> column -> ``[N, M]`` float32 (the inverse of ``_lists``)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    n = len(arr)
    return flat.reshape(n, width if width is not None else (len(flat) // n if n else 0)).astype(np.float32)
