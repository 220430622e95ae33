"""Config of ``activessf sweep``: the search space, the objective and how trials run.

A sweep YAML is a pipeline YAML (``pipeline``, ``regions``, ``features``, ``selection``,
``pretrain``, ``finetune`` sections: the base every trial starts from) plus a ``sweep``
section. ``sweep.space`` maps dotted config keys of the ``selection``, ``pretrain`` or
``finetune`` sections to a distribution, e.g.::

    space:
      selection.alpha: {uniform: [0.25, 2.0]}
      selection.k: {choice: [6, 11, 16]}
      selection.ub_quantile: {choice: [null, 0.9, 0.75]}

Distributions: ``uniform``, ``loguniform`` ([low, high]), ``randint`` ([low, high), integers),
``choice`` (list) and ``grid`` (list; every value is tried, crossed with the other grid keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from activessf.config import require

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice", "grid")
SWEEPABLE = ("selection", "pretrain", "finetune")
METRICS = ("accuracy", "macro_pr_auc", "macro_f1")


def parse_space(space: dict[str, Any]) -> dict[str, tuple[str, list]]:
    """Validate ``sweep.space``: ``key -> (distribution, arguments)``.

    Raises:
        ConfigError naming ``sweep.space.<key>`` on an unknown section, distribution or bounds.
    """
    out = {}
    for key, spec in space.items():
        name = f"sweep.space.{key}"
        require(key.split(".", 1)[0] in SWEEPABLE and "." in key, name,
                f"keys are <section>.<field> with section one of {list(SWEEPABLE)} "
                "(regions and features run once, shared by every trial)")
        require(isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS, name,
                f"one of {list(DISTRIBUTIONS)}, e.g. {{uniform: [0.5, 2.0]}}")
        dist, args = next(iter(spec.items()))
        require(isinstance(args, list) and len(args) >= 1, name, f"{dist} takes a list")
        if dist in ("uniform", "loguniform", "randint"):
            require(len(args) == 2 and all(isinstance(a, (int, float)) for a in args) and args[0] < args[1], name,
                    f"{dist} takes [low, high] with low < high")
            require(dist != "loguniform" or args[0] > 0, name, "loguniform needs low > 0")
        out[key] = (dist, list(args))
    require(bool(out), "sweep.space", "list at least one parameter")
    return out


def example_values(space: dict[str, tuple[str, list]]) -> list[dict[str, Any]]:
    """Values at each end of every range / every listed value, to validate configs up front."""
    lows = {k: (a[0] if d != "randint" else int(a[0])) for k, (d, a) in space.items()}
    highs = {k: (a[-1] if d in ("choice", "grid", "uniform", "loguniform") else int(a[1]) - 1) for k, (d, a) in space.items()}
    return [lows, highs]


def as_overrides(params: dict[str, Any]) -> list[str]:
    """``{"selection.alpha": 0.5}`` -> ``["selection.alpha=0.5"]`` (JSON values parse as YAML)."""
    return [f"{k}={json.dumps(v)}" for k, v in params.items()]


@dataclass
class ProbeConfig:
    """The cheap objective's frozen-feature probe (``activessf.evaluation.frozen``)."""

    kind: Literal["logreg", "knn"] = "logreg"
    c: float = 1.0
    k: int = 20

    def __post_init__(self) -> None:
        require(self.c > 0, "sweep.probe.c", "must be > 0")
        require(self.k >= 1, "sweep.probe.k", "must be >= 1")


@dataclass
class SweepConfig:
    """The ``sweep`` section."""

    # Stable experiment name: rerunning with the same name and storage resumes the sweep.
    name: str = "sweep"
    output: str = "outputs/sweep"
    # Run folder of the shared stages (regions, features); None = <output>/shared. Point it at
    # an `activessf run` folder with the same regions/features config to reuse its outputs.
    shared_output: str | None = None
    # Tune's storage (None = <output>/tune); a shared path or s3:// on a cluster.
    storage_path: str | None = None
    # cheap: selection + short in-process pretraining + frozen-feature probe over the folds.
    # full: selection + Ray Train pretraining + a TorchTrainer fine-tuning run per fold.
    objective: Literal["cheap", "full"] = "cheap"
    metric: Literal["accuracy", "macro_pr_auc", "macro_f1"] = "macro_pr_auc"
    search: Literal["random", "grid", "optuna"] = "random"
    num_samples: int = 8
    seed: int = 0
    # ASHA early stopping on the running CV mean, ``folds_done`` as its time attribute.
    asha: bool = False
    asha_grace_folds: int = 1
    # None = as many as the cluster's current resources hold at cpus/gpus_per_trial.
    max_concurrent_trials: int | None = None
    # Resources of one trial: the cheap objective trains in the trial itself; a full trial is a
    # driver whose TorchTrainer runs take their resources from the pretrain/finetune sections.
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    space: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(bool(self.name) and "/" not in self.name, "sweep.name", "must be a plain name")
        require(self.num_samples >= 1, "sweep.num_samples", "must be >= 1")
        require(self.asha_grace_folds >= 1, "sweep.asha_grace_folds", "must be >= 1")
        require(self.max_concurrent_trials is None or self.max_concurrent_trials >= 1, "sweep.max_concurrent_trials",
                "must be >= 1 or null")
        require(self.cpus_per_trial >= 0 and self.gpus_per_trial >= 0, "sweep.cpus_per_trial", "must be >= 0")
        parsed = parse_space(self.space)
        if self.search == "grid":
            bad = [k for k, (d, _) in parsed.items() if d not in ("grid", "choice")]
            require(not bad, "sweep.search", f"grid search needs grid/choice lists; {bad} are ranges")
        if self.search == "optuna":
            bad = [k for k, (d, _) in parsed.items() if d == "grid"]
            require(not bad, "sweep.search", f"optuna samples every key; use choice instead of grid for {bad}")

    def parsed_space(self) -> dict[str, tuple[str, list]]:
        return parse_space(self.space)
