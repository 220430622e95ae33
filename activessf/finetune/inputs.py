"""What a fine-tuning run trains on and what it hands back (typed, no Ray).

A :class:`FoldInputs` goes from the stage (or a sweep trial) to the Ray layer and on to the
outputs writer; a :class:`FoldRun` comes back from one training run (a fold or the final fit).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from activessf.evaluation.folds import fold_indices

FINAL = "final"


@dataclasses.dataclass
class FoldInputs:
    """One run's training and test rows.

    Attributes:
        fold: Fold index, or ``"final"`` for the final fit (every row trains, none is tested).
        classes: Class names in output order (K).
        train_paths, train_y: Training crop files and class indices.
        test_paths, test_y, test_ids: Test crop files, class indices and row ids.
        fingerprint: ``freshness.finetune_fingerprint`` of the recipe (keys the Ray run).
        scored_apart: Classes scored apart (``evaluation.folds.scored_apart``), name -> reason.
    """

    fold: int | str
    classes: list[str]
    train_paths: list[str]
    train_y: list[int]
    test_paths: list[str] = dataclasses.field(default_factory=list)
    test_y: list[int] = dataclasses.field(default_factory=list)
    test_ids: list[str] = dataclasses.field(default_factory=list)
    fingerprint: str | None = None
    scored_apart: dict[str, str] = dataclasses.field(default_factory=dict)

    def loop_config(self) -> dict[str, Any]:
        """What the training workers need (plain, picklable; no ids)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("test_ids", "scored_apart")}


@dataclasses.dataclass
class FoldRun:
    """What one training run returns.

    Attributes:
        history: Per-epoch records.
        epoch: Completed epochs.
        proba: Test probabilities ``[M, K]`` of the ``kept`` ``[M]`` test rows that decoded; None
            when the run stopped early (``train.stop_after_epochs``) and was not evaluated yet.
        kept: Indices into the test rows.
        checkpoint: Where the run's last checkpoint lives.
        model: The trained state dict (the final fit only).
    """

    history: list[dict]
    epoch: int
    proba: np.ndarray | None = None
    kept: np.ndarray | None = None
    checkpoint: str | None = None
    model: dict | None = None

    @property
    def finished(self) -> bool:
        """Trained to the end (and, for a fold, evaluated)."""
        return self.proba is not None


def labeled_rows(items: pa.Table, folds: pa.Table) -> tuple[dict[str, str], list[str], list[str]]:
    """Path of each id, and the ids and labels in fold-file order."""
    return dict(zip(items["id"].to_pylist(), items["path"].to_pylist())), folds["id"].to_pylist(), folds["label"].to_pylist()


def fold_inputs(items: pa.Table, folds: pa.Table, fold: int, classes: list[str], **tags: Any) -> FoldInputs:
    """Fold ``fold``: the other folds train, this one is tested.

    Args:
        items: Labeled crops (``id``, ``path``).
        folds: The fold assignment (``id``, ``label``, ``fold``).
        fold: Which fold is tested.
        classes: Class names in output order.
        **tags: ``fingerprint`` and ``scored_apart``.
    """
    path_of, ids, labels = labeled_rows(items, folds)
    train, test = fold_indices(folds, fold)
    return FoldInputs(
        fold=fold, classes=classes,
        train_paths=[path_of[ids[r]] for r in train], train_y=[classes.index(labels[r]) for r in train],
        test_paths=[path_of[ids[r]] for r in test], test_y=[classes.index(labels[r]) for r in test],
        test_ids=[ids[r] for r in test], **tags)


def final_inputs(items: pa.Table, folds: pa.Table, classes: list[str], **tags: Any) -> FoldInputs:
    """The final fit: every labeled row trains, none is held out."""
    path_of, ids, labels = labeled_rows(items, folds)
    return FoldInputs(fold=FINAL, classes=classes, train_paths=[path_of[i] for i in ids],
                      train_y=[classes.index(lab) for lab in labels], **tags)
