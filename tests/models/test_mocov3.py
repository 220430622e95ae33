"""MoCo v3: InfoNCE against a manual computation, rank-offset labels, momentum schedule, engine hook."""

import math

import pytest
import torch
import torch.nn.functional as F

import activessf.models.mocov3 as moco
from activessf.engine.pretrain_engine import fit
from activessf.models.registry import build_method
from tests.models.tiny import tiny_config

SMALL = ["model.method=mocov3", "model.mocov3.proj_dim=16", "model.mocov3.proj_hidden_dim=32"]


def manual_ctr(q, k_all, labels, t):
    q, k_all = q / q.norm(dim=1, keepdim=True), k_all / k_all.norm(dim=1, keepdim=True)
    logits = q @ k_all.t() / t
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -logp[torch.arange(len(q)), labels].mean() * 2 * t


def test_info_nce_equals_manual_cross_entropy():
    torch.manual_seed(0)
    q, k = torch.randn(6, 8), torch.randn(6, 8)
    assert moco.info_nce(q, k, 0.2).item() == pytest.approx(manual_ctr(q, k, torch.arange(6), 0.2).item(), rel=1e-5)


def test_identical_views_give_low_loss_shuffled_high():
    torch.manual_seed(0)
    z = torch.randn(16, 32)
    same = moco.info_nce(z, z, 0.2).item()
    shuffled = moco.info_nce(z, z[torch.randperm(16)], 0.2).item()
    # Random 32-d codes have cosine ~ +-0.2, so off-diagonal terms are tiny at T = 0.2.
    assert same < 0.1 < 2 * 0.2 * math.log(16) * 0.8 < shuffled


def test_labels_are_offset_by_rank(monkeypatch):
    torch.manual_seed(0)
    q, k_local, k_other = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
    # Rank 1 of 2: gathered keys are [rank 0's, rank 1's]; the positives are rows 4..7.
    gathered = torch.cat([F.normalize(k_other, dim=1), F.normalize(k_local, dim=1)])
    monkeypatch.setattr(moco, "gather_keys", lambda k: (gathered, 1))
    got = moco.info_nce(q, k_local, 0.2).item()
    assert got == pytest.approx(manual_ctr(q, gathered, torch.arange(4) + 4, 0.2).item(), rel=1e-5)
    assert got != pytest.approx(manual_ctr(q, gathered, torch.arange(4), 0.2).item(), rel=1e-3)


def test_cosine_momentum_schedule_and_ema_update():
    assert moco.cosine_momentum(0.0, 0.99) == pytest.approx(0.99)
    assert moco.cosine_momentum(0.5, 0.99) == pytest.approx(0.995)
    assert moco.cosine_momentum(1.0, 0.99) == pytest.approx(1.0)
    method = build_method("mocov3", tiny_config(*SMALL))
    online = method.encoder.blocks[0].attn.qkv.weight
    target = method.momentum_encoder.blocks[0].attn.qkv.weight
    assert torch.equal(online, target) and not target.requires_grad
    with torch.no_grad():
        online.add_(1.0)
    before = target.clone()
    method.on_step(0.0)
    torch.testing.assert_close(target, 0.99 * before + 0.01 * online)
    method.on_step(1.0)  # momentum 1: the target no longer moves
    torch.testing.assert_close(target, 0.99 * before + 0.01 * online)


def test_two_views_and_forward():
    torch.manual_seed(0)
    method = build_method("mocov3", tiny_config(*SMALL))
    x = method.views(torch.randint(0, 256, (3, 40, 40, 3), dtype=torch.uint8))
    assert x.shape == (3, 2, 3, 32, 32) and not torch.equal(x[:, 0], x[:, 1])
    out = method(x)
    out["loss"].backward()
    assert out["q"].shape == out["k"].shape == (2, 3, 16) and torch.isfinite(out["loss"])
    assert method.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0  # the loss reaches the encoder
    assert all(p.grad is None for p in method.momentum_encoder.parameters())


def test_engine_calls_on_step_with_progress():
    torch.manual_seed(0)
    cfg = tiny_config(*SMALL, "optim.epochs=2")
    method = build_method("mocov3", cfg)
    seen = []
    real = method.on_step
    method.on_step = lambda p: (seen.append(p), real(p))
    images = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    fit(method, cfg, lambda e: [images[:4], images[4:]], 2, torch.device("cpu"))
    assert seen == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert method.momentum == pytest.approx(1.0)


def _gloo_worker(rank: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    g = torch.Generator().manual_seed(0)
    qs, ks = torch.randn(2, 3, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    loss = moco.info_nce(qs[rank], ks[rank], 0.2)
    torch.save({"loss": loss.item(), "qs": qs, "ks": ks}, f"{out}{rank}.pt")
    dist.destroy_process_group()


def test_keys_gathered_across_two_gloo_workers(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_gloo_worker, args=(f"file://{tmp_path / 'init'}", str(tmp_path / "r")), nprocs=2)
    for rank in range(2):
        got = torch.load(tmp_path / f"r{rank}.pt", weights_only=True)
        k_all = torch.cat([got["ks"][0], got["ks"][1]])
        expected = manual_ctr(got["qs"][rank], k_all, torch.arange(3) + 3 * rank, 0.2)
        assert got["loss"] == pytest.approx(expected.item(), rel=1e-5)
