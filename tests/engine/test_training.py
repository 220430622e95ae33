"""The shared training plumbing: one optimiser step, one typed training state (no Ray)."""

import pytest
import torch
import torch.nn as nn

from activessf.config import build_config
from activessf.engine.training import build_training_state, optimizer_step
from activessf.finetune.config import FinetuneConfig

CPU = torch.device("cpu")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


def _optim(epochs: int = 2, warmup: float = 1.0):
    cfg = build_config(FinetuneConfig, None, [f"optim.epochs={epochs}", f"optim.warmup_epochs={warmup}",
                                              "optim.min_lr=0.0", "optim.layer_decay=null"])
    return cfg.optim


def test_schedule_spans_the_run_and_steps_once_per_call():
    net = _net()
    training = build_training_state(net, _optim(epochs=2, warmup=1.0), lr=0.1, steps_per_epoch=4, precision="auto",
                                    device=CPU)
    assert training.total_steps == 8 and training.amp_dtype is None and training.scaler is None
    lrs = []
    for _ in range(training.total_steps):
        training.backward(net(torch.randn(3, 4)).pow(2).mean())
        training.step(net)
        lrs.append(training.current_lr)
    # Linear warm-up over the first 4 steps, then cosine down to min_lr = 0 at the end.
    assert lrs[:3] == pytest.approx([0.05, 0.075, 0.1])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs[4] < lrs[3]
    assert all(p.grad is None for p in net.parameters())  # each step clears the gradients


def test_norms_and_biases_get_no_weight_decay():
    net = _net()
    training = build_training_state(net, _optim(), lr=0.1, steps_per_epoch=1, precision="fp32", device=CPU)
    decayed = {id(p) for g in training.optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(net[0].weight), id(net[2].weight)}


def test_clipping_bounds_the_update():
    net = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(net.weight)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    (net(torch.full((1, 2), 1e6)).sum()).backward()
    optimizer_step(net, opt, None, clip_grad=1.0)
    assert net.weight.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_snapshot_and_restore_continue_the_schedule(tmp_path):
    net = _net()
    training = build_training_state(net, _optim(epochs=3), lr=0.1, steps_per_epoch=2, precision="fp32", device=CPU)
    for _ in range(3):
        training.backward(net(torch.randn(3, 4)).pow(2).mean())
        training.step(net)
    state = training.snapshot(net, epoch=1, config={"model": {}}, history=[{"epoch": 1}])
    other = _net()
    restored = build_training_state(other, _optim(epochs=3), lr=0.1, steps_per_epoch=2, precision="fp32", device=CPU)
    assert restored.restore(state, other) == 1
    assert restored.scheduler.last_epoch == 3 and restored.current_lr == pytest.approx(training.current_lr)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values()))
