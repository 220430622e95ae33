"""The main job of ``make demo``: the pipeline's stages on the embedded real sample, on CPU.

Stages: region filtering (labeled sample, unlabeled pool, and field-of-view smears), features
(resnet18, seeded random init: no weights are downloaded), Active Sample Selection, and MAE
pretraining on the selected crops (vit_tiny cut to 4 blocks, 64 px, 10 epochs: a CPU-sized run).
Every stage writes its own folder under ``--output`` (default ``outputs/demo``) and a rerun skips
stages that are complete.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from activessf.config import build_config
from activessf.data import SAMPLE_LABELED, SAMPLE_SMEARS, SAMPLE_UNLABELED
from activessf.distributed.features import run_features
from activessf.distributed.pretrain import run_pretrain
from activessf.distributed.regions import run_regions
from activessf.features.config import FeaturesConfig
from activessf.pretrain.config import PretrainConfig
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig
from activessf.selection.stage import run_select

# Small on purpose: the demo must finish in minutes on 2 CPU cores.
DEMO_OVERRIDES = {
    "features": ["backbone=resnet18", "batch_size=32"],
    "selection": ["k=11"],
    "pretrain": [
        "model.encoder=vit_tiny_patch16_224", "model.img_size=64", "model.patch_size=8",
        "model.encoder_kwargs={depth: 4}", "model.decoder_dim=64", "model.decoder_depth=1",
        "model.decoder_heads=4", "optim.epochs=10", "optim.warmup_epochs=2", "optim.batch_size=16",
        "train.log_every=0",
    ],
}


def banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="outputs/demo")
    parser.add_argument("--config", default=None, help="pipeline YAML with regions:/features:/selection: sections")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="e.g. regions.preset=paper")
    args = parser.parse_args(argv)
    out = Path(args.output)
    start = time.time()
    rcfg = build_config(RegionsConfig, args.config, args.overrides, section="regions")
    fcfg = build_config(FeaturesConfig, args.config, DEMO_OVERRIDES["features"] + args.overrides, section="features")
    scfg = build_config(SelectionConfig, args.config, DEMO_OVERRIDES["selection"] + args.overrides, section="selection")
    pcfg = build_config(PretrainConfig, args.config, DEMO_OVERRIDES["pretrain"] + args.overrides, section="pretrain")
    banner(f"1/5 Cell Region Filtering ({rcfg.preset} preset)")
    run_regions(str(SAMPLE_LABELED), str(out / "regions_labeled"), rcfg, labeled=True)
    run_regions(str(SAMPLE_UNLABELED), str(out / "regions_pool"), rcfg)
    run_regions(str(SAMPLE_SMEARS), str(out / "regions_smears"), rcfg)
    banner(f"2/5 features ({fcfg.backbone})")
    run_features(str(out / "regions_labeled"), str(out / "features_labeled"), fcfg)
    run_features(str(out / "regions_pool"), str(out / "features_pool"), fcfg)
    banner("3/5 prototypes and Active Sample Selection")
    run_select(str(out / "features_labeled"), str(out / "features_pool"), str(out / "selection"), scfg)
    banner(f"4/5 {pcfg.model.method.upper()} pretraining on the selected crops (Ray Train)")
    run_pretrain(str(out / "selection"), str(out / "pretrain"), pcfg)
    banner("5/5 outputs")
    print(f"demo finished in {time.time() - start:.0f} s")
    for rel in ("regions_smears/contact_sheet.png", "regions_pool/contact_sheet.png", "regions_labeled/regions.parquet",
                "selection/report.json", "selection/selected_crops.png", "selection/selection.parquet",
                "pretrain/loss_curve.png", "pretrain/reconstructions.png", "pretrain/encoder.safetensors"):
        print(f"  {out / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
