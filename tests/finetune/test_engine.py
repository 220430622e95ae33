"""Fine-tuning engine without Ray: config, model init, augmentation, loss going down."""

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from activessf.config import ConfigError, build_config
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.data import (
    Augment,
    class_weights,
    epoch_order,
    eval_batches,
    num_train_batches,
    train_batches,
)
from activessf.finetune.engine import build_loss, build_mixup, evaluate, train_epoch
from activessf.finetune.model import build_classifier, finetune_training

TINY = ["model.name=vit_tiny_patch16_224", "model.img_size=32", "model.patch_size=8", "model.encoder_kwargs={depth: 2}",
        "optim.batch_size=8", "optim.warmup_epochs=0", "optim.epochs=30", "optim.lr=0.001", "aug.randaug_ops=0"]


def test_config_defaults_and_errors():
    cfg = FinetuneConfig()
    assert cfg.resolved_lr() == pytest.approx(1e-3 * 64 / 256)
    assert cfg.optim.layer_decay == 0.75 and cfg.optim.epochs == 50 and cfg.optim.warmup_epochs == 5
    with pytest.raises(ConfigError, match="model.name"):
        build_config(FinetuneConfig, None, ["model.name=nope"])
    with pytest.raises(ConfigError, match="encoder_kwargs"):
        build_config(FinetuneConfig, None, ["model.encoder_kwargs={img_size: 3}"])


def test_pretrained_encoder_loads_and_resnet_baseline(tmp_path):
    cfg = build_config(FinetuneConfig, None, TINY)
    enc = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8, depth=2)
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(path))
    cfg.model.init = str(path)
    model = build_classifier(cfg.model, 3)
    assert torch.equal(model.blocks[1].mlp.fc1.weight, enc.blocks[1].mlp.fc1.weight)
    assert model.head.out_features == 3
    res = build_config(FinetuneConfig, None, ["model.name=resnet18", "model.img_size=32", "optim.layer_decay=null"])
    net = build_classifier(res.model, 4)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_layer_decay_scales_group_lrs():
    cfg = build_config(FinetuneConfig, None, TINY + ["optim.layer_decay=0.5"])
    model = build_classifier(cfg.model, 3)
    training = finetune_training(model, cfg, 10, torch.device("cpu"))
    lrs = sorted({round(g["lr"] / cfg.resolved_lr(), 6) for g in training.optimizer.param_groups})
    assert lrs == [0.125, 0.25, 0.5, 1.0]  # embed, 2 blocks, head


def test_loss_decreases_on_fixed_batch():
    torch.manual_seed(0)
    cfg = build_config(FinetuneConfig, None, TINY + ["model.drop_path_rate=0.0", "aug.label_smoothing=0.0"])
    model = build_classifier(cfg.model, 3)
    training = finetune_training(model, cfg, 1, torch.device("cpu"))
    x, y = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loss_fn = build_loss(cfg, None)
    losses = [train_epoch(model, [(x, y)], training, loss_fn, torch.device("cpu"))["loss"] for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]
    proba = evaluate(model, [x[:5], x[5:]], torch.device("cpu"))
    assert proba.shape == (8, 3) and np.allclose(proba.sum(1), 1)
    assert (proba.argmax(1) == y.numpy()).mean() > 0.8


def test_mixup_and_class_balance_paths():
    cfg = build_config(FinetuneConfig, None, TINY + ["aug.mixup=0.8", "aug.cutmix=1.0", "aug.randaug_ops=2"])
    mix = build_mixup(cfg, 3)
    model = build_classifier(cfg.model, 3)
    training = finetune_training(model, cfg, 2, torch.device("cpu"))
    images = np.random.default_rng(0).integers(0, 255, (11, 40, 40, 3), dtype=np.uint8)
    labels = np.array([0] * 7 + [1] * 3 + [2])
    aug = Augment(cfg.aug, 32)
    order = epoch_order(labels, balanced=True, seed=1)
    batches = list(train_batches(images, labels, order, 8, aug))
    assert len(batches) == num_train_batches(11, 8) == 2 and batches[0][0].shape == (8, 3, 32, 32)
    rec = train_epoch(model, batches, training, build_loss(cfg, mix), torch.device("cpu"), mixup=mix, clip_grad=1.0)
    assert np.isfinite(rec["loss"]) and rec["images"] == 8 + 2
    w = class_weights(labels, 4)
    assert w[3] == 0 and w[2] > w[1] > w[0]
    assert [b.shape[0] for b in eval_batches(images[:, :32, :32], 4, aug)] == [4, 4, 3]
    # Two workers take disjoint equal slices of the same order.
    a = list(train_batches(images, labels, np.arange(11), 8, aug, rank=0, world=2))
    assert len(a) == num_train_batches(11, 8, 2) == 1 and a[0][0].shape[0] == 5


def test_method_names(tmp_path):
    assert FinetuneConfig().method_name() == "vit_base_patch16_224 (scratch)"
    (tmp_path / "encoder.safetensors").write_bytes(b"")  # model.init must exist
    cfg = build_config(FinetuneConfig, None, [f"model.init={tmp_path / 'encoder.safetensors'}"])
    assert cfg.method_name() == "vit_base_patch16_224 (encoder.safetensors)"
    assert build_config(FinetuneConfig, None, ["train.method_name=ours"]).method_name() == "ours"
