"""The engine without Ray: learning, accumulation, schedule, precision, exact resume."""

import random

import numpy as np
import pytest
import torch

from activessf.engine.optim import resolve_precision, warmup_cosine
from activessf.engine.pretrain_engine import fit, pretrain_training, train_one_epoch
from activessf.engine.state import (
    load_state,
    rng_state,
    save_state,
    seed_everything,
    set_rng_state,
)
from activessf.config import to_dict
from activessf.models.registry import build_method
from tests.models.tiny import tiny_config

CPU = torch.device("cpu")


def _images(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8)


def _smooth_images(n=8, seed=0):
    # Low-frequency images: masked patches are predictable from visible ones, unlike noise.
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 3, 3, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=True)
    return (fine.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def test_loss_decreases_on_a_fixed_batch():
    seed_everything(0)
    cfg = tiny_config(
        "optim.epochs=12", "optim.lr=0.005", "optim.warmup_epochs=0", "aug.crop_scale=[1.0, 1.0]", "aug.hflip=0.0",
        "model.mae.norm_pix_loss=false",
    )
    mae = build_method("mae", cfg)
    batch = _smooth_images()
    history = fit(mae, cfg, lambda e: [{"image": batch}], 1, CPU)
    losses = [r["loss"] for r in history]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.85 * losses[0], losses
    assert history[-1]["images"] == 8 and history[-1]["images_per_s"] > 0


def test_accumulation_steps_and_batch_formats():
    seed_everything(0)
    cfg = tiny_config("optim.accum_steps=2", "optim.epochs=1", "optim.warmup_epochs=0")
    mae = build_method("mae", cfg)
    training = pretrain_training(mae, cfg, num_batches=3, device=CPU)
    assert training.steps_per_epoch == 2 and training.amp_dtype is None and training.total_steps == 2
    batches = [_images(4, 1), _images(4, 2).numpy(), {"image": _images(2, 3)}]  # tensor, array, dict
    stats = train_one_epoch(mae, training, batches, CPU, accum_steps=2)
    assert stats.steps == 2 and stats.images == 10
    assert training.scheduler.last_epoch == 2
    assert all(p.grad is None for p in mae.parameters())  # a short final group still steps


def test_warmup_then_cosine_schedule():
    assert warmup_cosine(0, 4, 12, 0.0) == pytest.approx(0.25)
    assert warmup_cosine(3, 4, 12, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(4, 4, 12, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(8, 4, 12, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(12, 4, 12, 0.1) == pytest.approx(0.1)


def test_precision_is_reduced_on_cuda_only():
    assert resolve_precision("auto", CPU) is None and resolve_precision("bf16", CPU) is None
    assert resolve_precision("auto", torch.device("cuda")) is torch.bfloat16
    assert resolve_precision("fp32", torch.device("cuda")) is None


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    seed_everything(5)
    save_state(rng_state(), tmp_path, "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


@pytest.fixture
def one_thread():
    # Identical reductions in both runs; the session's thread count is restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_resume_from_state_matches_an_uninterrupted_run(tmp_path, one_thread):
    batches = [_images(4, 10), _images(4, 11)]
    cfg = tiny_config("optim.epochs=3")

    seed_everything(0)
    straight = fit(build_method("mae", cfg), cfg, lambda e: batches, 2, CPU)

    seed_everything(0)
    first = build_method("mae", cfg)
    training = pretrain_training(first, cfg, 2, CPU)
    stop_cfg = tiny_config("optim.epochs=3", "train.stop_after_epochs=1")
    history = fit(first, stop_cfg, lambda e: batches, 2, CPU, training=training)
    save_state(training.snapshot(first, 1, to_dict(cfg), history), tmp_path)
    del first, training

    second = build_method("mae", cfg)  # fresh init, overwritten by the state
    training = pretrain_training(second, cfg, 2, CPU)
    start = training.restore(load_state(tmp_path), second, restore_rng=True)
    resumed = fit(second, cfg, lambda e: batches, 2, CPU, training=training, start_epoch=start, history=history)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in straight], rel=1e-5)
    assert [r["lr"] for r in resumed] == pytest.approx([r["lr"] for r in straight])
