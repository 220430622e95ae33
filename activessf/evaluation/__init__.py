"""Evaluation without Ray or torch: folds, metrics, run comparison, frozen-feature probes."""
