"""Supervised fine-tuning of pretrained encoders and baselines over stratified folds."""
