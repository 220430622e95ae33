"""Feature extraction with a frozen timm backbone (pure torch; the Ray stage wraps it)."""

from activessf.features.backbone import (
    FeatureExtractor,
    build_backbone,
    extract_features,
    load_weights,
    preprocess_batch,
    read_state_dict,
    resolve_device,
    resolve_preprocess,
)
from activessf.features.config import FeaturesConfig, resolve_num_gpus

__all__ = [
    "FeatureExtractor",
    "FeaturesConfig",
    "build_backbone",
    "extract_features",
    "load_weights",
    "preprocess_batch",
    "read_state_dict",
    "resolve_device",
    "resolve_num_gpus",
    "resolve_preprocess",
]
