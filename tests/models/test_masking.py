"""Patch and masking helpers against small hand-made references."""

import pytest
import torch

from activessf.models.masking import (
    masked_mse,
    normalize_patches,
    num_kept,
    patchify,
    random_masking,
    restore_tokens,
    unpatchify,
)


def test_patchify_hand_made_reference():
    # One 1-channel 4x4 image, values 0..15 row-major, patch 2: four 2x2 patches, row-major.
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.tensor([[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]], dtype=torch.float32)
    assert torch.equal(patchify(img, 2), expected)


def test_patchify_channel_order_is_row_col_channel():
    # Two channels: channel 1 = channel 0 + 100; within a patch, channels interleave per pixel.
    c0 = torch.arange(4.0).reshape(1, 1, 2, 2)
    img = torch.cat([c0, c0 + 100], dim=1)
    assert patchify(img, 2).tolist() == [[[0, 100, 1, 101, 2, 102, 3, 103]]]


def test_unpatchify_inverts_patchify_rectangular_grid():
    img = torch.randn(2, 3, 8, 12)
    patches = patchify(img, 4)
    assert patches.shape == (2, 6, 48)
    assert torch.equal(unpatchify(patches, 4, grid=(2, 3)), img)
    with pytest.raises(ValueError):
        unpatchify(patches, 4)  # 6 patches are not a square grid
    with pytest.raises(ValueError):
        patchify(img, 5)


def test_random_masking_with_given_noise():
    tokens = torch.arange(4.0).reshape(1, 4, 1) * 10  # tokens 0, 10, 20, 30
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])  # keep the two lowest: positions 1 and 3
    kept, mask, ids_restore = random_masking(tokens, 0.5, noise=noise)
    assert kept.flatten().tolist() == [10.0, 30.0]  # in ascending-noise order
    assert mask.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert ids_restore.tolist() == [[3, 0, 2, 1]]  # argsort(argsort(noise))


def test_restore_tokens_puts_kept_back_and_fills_the_rest():
    tokens = torch.arange(4.0).reshape(1, 4, 1) * 10
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    kept, mask, ids_restore = random_masking(tokens, 0.5, noise=noise)
    full = restore_tokens(kept, torch.full((1, 1, 1), -1.0), ids_restore)
    assert full.flatten().tolist() == [-1.0, 10.0, -1.0, 30.0]


def test_random_masking_counts_and_per_sample_independence():
    torch.manual_seed(0)
    tokens = torch.randn(8, 16, 5)
    kept, mask, ids_restore = random_masking(tokens, 0.75)
    assert kept.shape == (8, 4, 5) and mask.shape == (8, 16)
    assert mask.sum(1).tolist() == [12.0] * 8
    assert len({tuple(m.tolist()) for m in mask}) > 1
    assert num_kept(16, 0.999) == 1 and num_kept(196, 0.75) == 49


def test_loss_counts_only_removed_patches_and_norm_target():
    target = torch.zeros(1, 2, 4)
    pred = torch.stack([torch.full((4,), 3.0), torch.full((4,), 1.0)]).unsqueeze(0)
    mask = torch.tensor([[0.0, 1.0]])  # only patch 1 is scored: error 1 per pixel
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    normed = normalize_patches(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]))
    assert normed.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert normed.var().item() == pytest.approx(1.0, rel=1e-4)
