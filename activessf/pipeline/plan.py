"""Resolve a pipeline YAML and overrides into every stage's config before any work starts.

Bad config anywhere (a stage section, an arm's overrides) fails here, naming the field, so a
long run never dies at its last stage on a typo.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import NamedTuple

from activessf.config import build_config, planned_files, to_dict
from activessf.features.config import FeaturesConfig
from activessf.finetune.config import FinetuneConfig
from activessf.io import fs as afs
from activessf.io.markers import fingerprint
from activessf.pipeline.config import SAMPLE, ArmConfig, PipelineConfig
from activessf.pretrain.config import PretrainConfig
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig
from activessf.tracking import TrackingConfig

SOURCE_DIR = {"selected": "selection", "random": "random_subset", "all": "regions_pool"}


class ArmPlan(NamedTuple):
    """One arm of a run.

    Attributes:
        arm: The arm as configured (``pipeline.arms[]``).
        pretrain: Folder name of the pretraining it fine-tunes from; None for a supervised arm.
        finetune: Its resolved fine-tuning config.
    """

    arm: ArmConfig
    pretrain: str | None
    finetune: FinetuneConfig


@dataclass
class Plan:
    """Every stage's resolved config and folder for one run."""

    pipe: PipelineConfig
    regions: RegionsConfig
    features: FeaturesConfig
    selection: SelectionConfig
    # Pretraining folder name -> (source stage folder name, config); arms may share one.
    pretrains: dict[str, tuple[str, PretrainConfig]] = field(default_factory=dict)
    # Arm slug -> the arm, its pretraining folder and its fine-tuning config.
    arms: dict[str, ArmPlan] = field(default_factory=dict)
    # MLflow tracking of the run (``tracking`` section).
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def root(self) -> str:
        out = self.pipe.output
        return out if "://" in out else os.path.abspath(out)

    def path(self, *parts: str) -> str:
        return afs.join(self.root, *parts)

    def labeled_input(self) -> str:
        """Where the labeled images are (the embedded sample when ``labeled: sample``)."""
        from activessf.data import SAMPLE_LABELED

        return str(SAMPLE_LABELED) if self.pipe.labeled == SAMPLE else self.pipe.labeled

    def unlabeled_input(self) -> str:
        from activessf.data import SAMPLE_UNLABELED

        return str(SAMPLE_UNLABELED) if self.pipe.unlabeled == SAMPLE else self.pipe.unlabeled

    def labeled_crops(self) -> str:
        """The labeled crops features and fine-tuning read: central crops, all regions, or the images."""
        mode = self.pipe.labeled_regions
        if mode == "central":
            from activessf.pipeline.labeled import MANIFEST

            return self.path(MANIFEST)
        return self.path("regions_labeled") if mode == "all" else self.labeled_input()

    def features_config(self) -> FeaturesConfig:
        """The features config the feature stages run with: for ``source: labeled`` it points at
        the backbone the ``feature_backbone`` stage trained (which must have run)."""
        if self.features.source != "labeled":
            return self.features
        from activessf.stages.feature_backbone import with_backbone
        from activessf.features.labeled import WEIGHTS

        return with_backbone(self.features, self.path("feature_backbone", WEIGHTS))

    def first_finetune(self) -> FinetuneConfig:
        """The first arm's fine-tuning config: its fold settings make the run's one folds file."""
        return next(iter(self.arms.values())).finetune

    def pretrain_config(self, folder: str) -> PretrainConfig:
        """The config pretraining ``folder`` runs with: under ``pipeline.pretrain_budget:
        equal_steps`` its epochs spend the shared optimizer-step budget on the crops it sees
        (``activessf.pipeline.budget``); needs the pool's and its source's crops on disk."""
        source, cfg = self.pretrains[folder]
        if self.pipe.pretrain_budget != "equal_steps":
            return cfg
        from activessf.io.items import crop_items
        from activessf.pipeline.budget import step_budget, with_step_budget

        n_pool = crop_items(self.path("regions_pool")).num_rows
        n_crops = n_pool if source == "regions_pool" else crop_items(self.path(source)).num_rows
        if n_crops == 0:
            from activessf.io.sources import InputError

            raise InputError(f"{folder}: its source {source} holds no crops to pretrain on")
        return with_step_budget(cfg, n_crops, step_budget(cfg, n_pool, self.pipe.pretrain_steps))

    def resolved(self) -> dict:
        """The whole resolved config, one section per stage (saved beside the outputs)."""
        return {
            "pipeline": to_dict(self.pipe), "regions": to_dict(self.regions), "features": to_dict(self.features),
            "selection": to_dict(self.selection),
            "pretrain": {name: {"source": src, **to_dict(cfg)} for name, (src, cfg) in self.pretrains.items()},
            "finetune": {slug: {"arm": a.arm.name, "pretrain": a.pretrain, **to_dict(a.finetune)}
                         for slug, a in self.arms.items()},
            "tracking": to_dict(self.tracking),
        }


def _pretrain_folder(arm: ArmConfig) -> str:
    base = f"pretrain_{arm.pretrain}"
    return base + (f"_{fingerprint(arm.pretrain_overrides)[:8]}" if arm.pretrain_overrides else "")


def _encoder_overrides(pcfg: PretrainConfig, encoder_path: str) -> list[str]:
    """Fine-tune the encoder a pretraining exports, as its descriptor says (``encoder.json``)."""
    fields = pcfg.model.encoder_descriptor().finetune_model(encoder_path)
    return [f"model.{k}={json.dumps(v)}" for k, v in fields.items()]


def build_plan(yaml_path: str | None, overrides: list[str] | None = None) -> Plan:
    """Every config of a run from ``yaml_path`` (sections per stage) and ``section.key=value`` overrides.

    Args:
        yaml_path: Pipeline YAML (None = all defaults).
        overrides: ``--set`` strings, each prefixed by its section (``finetune.optim.epochs=3``).

    Returns:
        The plan; raises ``ConfigError`` naming the field on any invalid value.
    """
    sets = list(overrides or [])
    pipe = build_config(PipelineConfig, yaml_path, sets, section="pipeline")
    plan = Plan(pipe, build_config(RegionsConfig, yaml_path, sets, section="regions"),
                build_config(FeaturesConfig, yaml_path, sets, section="features"),
                build_config(SelectionConfig, yaml_path, sets, section="selection"),
                tracking=build_config(TrackingConfig, yaml_path, sets, section="tracking"))
    for arm in pipe.arms:
        folder = None
        ft_sets = list(sets)
        if arm.pretrain != "none":
            folder = _pretrain_folder(arm)
            pre_sets = sets + [f"pretrain.{s}" for s in arm.pretrain_overrides]
            pcfg = build_config(PretrainConfig, yaml_path, pre_sets + [f"pretrain.train.run_name={folder}"],
                                section="pretrain")
            plan.pretrains[folder] = (SOURCE_DIR[arm.pretrain], pcfg)
            ft_sets += [f"finetune.{s}" for s in _encoder_overrides(pcfg, plan.path(folder, "encoder.safetensors"))]
        ft_sets += [f"finetune.{s}" for s in arm.finetune_overrides]
        ft_sets += [f"finetune.train.run_name={arm.slug()}", f"finetune.train.method_name={json.dumps(arm.name)}",
                    f"finetune.train.final_fit={json.dumps(pipe.final_fit)}"]
        # The encoder a pretraining stage will export is a valid model.init before it exists.
        with planned_files([plan.path(f, "encoder.safetensors") for f in plan.pretrains]):
            plan.arms[arm.slug()] = ArmPlan(arm, folder, build_config(FinetuneConfig, yaml_path, ft_sets, section="finetune"))
    return plan
