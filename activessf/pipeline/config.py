"""Config of ``activessf run``: inputs, run folder and the arms to compare.

A pipeline YAML has one section per stage (``regions``, ``features``, ``selection``,
``pretrain``, ``finetune``) plus this ``pipeline`` section. Every arm is fine-tuned on the same
saved folds, so the comparison is paired; the first arm is the reference of the t-tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from activessf.config import ConfigError, parse_override, require

SAMPLE = "sample"


@dataclass
class ArmConfig:
    """One method to fine-tune and score over the folds."""

    name: str = ""
    # Encoder init: pretrain on the selected crops, on a seeded random subset of the pool as
    # large as the selection (the control of selection), on every pool crop, or none (supervised).
    pretrain: Literal["selected", "random", "all", "none"] = "none"
    # ``key=value`` overrides of the ``finetune`` section for this arm (e.g. model.name=resnet50).
    finetune_overrides: list[str] = field(default_factory=list)
    # ``key=value`` overrides of the ``pretrain`` section (e.g. model.method=mocov3).
    pretrain_overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(bool(self.name.strip()), "pipeline.arms[].name", "every arm needs a name")
        for text in self.finetune_overrides + self.pretrain_overrides:
            try:
                parse_override(text)
            except ConfigError as exc:
                raise ConfigError(f"pipeline.arms[{self.name}]: {exc}") from exc
        require(self.pretrain != "none" or not self.pretrain_overrides, f"pipeline.arms[{self.name}].pretrain_overrides",
                "only for arms that pretrain")

    def slug(self) -> str:
        """Folder-safe name of the arm."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "arm"


def paper_arms() -> list[ArmConfig]:
    """The paper's comparison: MAE with and without selection, supervised ViT and ResNet50."""
    return [
        ArmConfig("MAE w/ selection", "selected"),
        ArmConfig("MAE w/o selection", "all"),
        ArmConfig("ViT (supervised)", "none"),
        ArmConfig("ResNet50 (supervised)", "none", ["model.name=resnet50", "optim.layer_decay=null"]),
    ]


@dataclass
class PipelineConfig:
    """Whole-pipeline settings (the ``pipeline`` section of the YAML)."""

    # Labeled cells: ImageFolder ``<CLASS>/<image>`` (local or object storage); "sample" = embedded.
    labeled: str = SAMPLE
    # Unlabeled slides / images for region filtering and selection; "sample" = embedded pool.
    unlabeled: str = SAMPLE
    # Run folder: one sub-folder per stage, the report at its top.
    output: str = "outputs/run"
    # How labeled images become labeled crops. "central": region filtering, then the region
    # containing the image centre (cell-centred labeled sets such as pbc11; labeled and pool
    # crops then share one geometry). "all": every region inherits its image's label. "none":
    # the images are already crops and are used whole.
    labeled_regions: Literal["central", "all", "none"] = "central"
    arms: list[ArmConfig] = field(default_factory=paper_arms)
    # Train each arm once more on every labeled crop after its folds (the model that
    # ``activessf export`` ships; cross-validation is its estimate).
    final_fit: bool = True
    # Images no stage trains on (a folder; "sample" = the embedded held-back cells): after the
    # comparison the best arm is exported (``<run>/bundle``) and classifies them
    # (``<run>/predict_holdout``, shown in the report). None: no export or predict stage.
    predict_holdout: str | None = None
    report: bool = True
    # Pretraining budget (activessf.pipeline.budget). equal_steps: every pretraining takes the
    # optimizer steps of pretrain.optim.epochs over the whole pool (or pretrain_steps), so an arm
    # on fewer crops runs more epochs, not fewer steps. epochs: optim.epochs over its own crops.
    pretrain_budget: Literal["equal_steps", "epochs"] = "equal_steps"
    pretrain_steps: int | None = None
    # Seed of the random-subset arm's draw (pretrain: random).
    random_seed: int = 0

    def __post_init__(self) -> None:
        require(bool(self.labeled), "pipeline.labeled", "a labeled image folder or 'sample'")
        require(bool(self.unlabeled), "pipeline.unlabeled", "an image folder/manifest or 'sample'")
        require(bool(self.output), "pipeline.output", "a run folder")
        require(len(self.arms) >= 1, "pipeline.arms", "at least one arm")
        slugs = [a.slug() for a in self.arms]
        require(len(set(slugs)) == len(slugs), "pipeline.arms", f"arm names must differ (folder names {slugs})")
        require(not self.predict_holdout or self.final_fit, "pipeline.predict_holdout",
                "needs pipeline.final_fit: true (the final fit is the model it applies)")
        require(self.pretrain_budget in ("equal_steps", "epochs"), "pipeline.pretrain_budget", "equal_steps or epochs")
        require(self.pretrain_steps is None or self.pretrain_steps >= 1, "pipeline.pretrain_steps", "must be >= 1 or null")
        require(self.pretrain_steps is None or self.pretrain_budget == "equal_steps", "pipeline.pretrain_steps",
                "only with pretrain_budget: equal_steps")
        require(self.random_seed >= 0, "pipeline.random_seed", "must be >= 0")
