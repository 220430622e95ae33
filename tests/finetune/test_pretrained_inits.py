"""Every pretraining method's export loads into the fine-tune classifier the same way."""

import json

import pytest
import torch

from activessf.config import build_config
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.model import EncoderClassifier, build_classifier, check_init
from activessf.models.descriptor import read_descriptor
from activessf.models.registry import build_method
from activessf.pretrain.export import write_outputs
from tests.models.tiny import tiny_config

CONVMAE = ["model.convmae.dims=[8, 16, 32]", "model.convmae.depths=[1, 1, 2]", "model.convmae.heads=2"]


@pytest.mark.parametrize("method,extra", [("mae", []), ("mixmim", []), ("mocov3", []), ("convmae", CONVMAE)])
def test_export_loads_into_classifier(tmp_path, method, extra):
    cfg = tiny_config(f"model.method={method}", *extra, "train.num_reconstructions=0")
    pre = build_method(method, cfg)
    paths = write_outputs(pre, [{"epoch": 1, "loss": 1.0, "lr": 0.1, "images_per_s": 1.0}], cfg, str(tmp_path),
                          torch.zeros(0, 32, 32, 3, dtype=torch.uint8).numpy())
    desc = read_descriptor(paths["encoder"])
    assert desc == cfg.model.encoder_descriptor() and desc.method == method
    # As the pipeline plan does: the fine-tune's model fields come from the descriptor.
    fields = desc.finetune_model(paths["encoder"])
    ft = build_config(FinetuneConfig, None, [f"model.{k}={json.dumps(v)}" for k, v in fields.items()] + ["model.img_size=32"])
    assert ft.model.name == ("vit_tiny_patch16_224" if method != "convmae" else FinetuneConfig().model.name)
    check_init(ft.model, 3)  # the driver-side check accepts every method's export
    model = build_classifier(ft.model, num_classes=3).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    # The encoder weights are the pretrained ones, not a fresh init.
    enc_state = pre.encoder.state_dict()
    target = model.encoder if isinstance(model, EncoderClassifier) else model
    key = next(k for k in enc_state if k.endswith("weight") and enc_state[k].dim() > 1)
    torch.testing.assert_close(target.state_dict()[key], enc_state[key])
    # num_classes 0: the pooled features (what the sweep's frozen probe embeds with).
    features = build_classifier(ft.model, num_classes=0).eval()
    assert features(torch.rand(2, 3, 32, 32)).shape == (2, pre.encoder.num_features)


def test_a_convmae_export_that_does_not_fit_its_descriptor_fails_in_the_driver(tmp_path):
    from activessf.errors import WeightsError

    cfg = tiny_config("model.method=convmae", *CONVMAE, "train.num_reconstructions=0")
    paths = write_outputs(build_method("convmae", cfg), [{"epoch": 1, "loss": 1.0, "lr": 0.1}], cfg, str(tmp_path),
                          torch.zeros(0).numpy())
    desc = json.loads((tmp_path / "encoder.json").read_text())
    desc["kwargs"]["heads"] = 4  # still valid, but a 3-stage width of 64 no longer matches the weights
    desc["kwargs"]["dims"] = [8, 16, 64]
    (tmp_path / "encoder.json").write_text(json.dumps(desc))
    ft = build_config(FinetuneConfig, None, [f"model.init={paths['encoder']}", "model.img_size=32"])
    with pytest.raises(WeightsError, match="do not fit their descriptor"):
        check_init(ft.model, 3)


def test_init_that_does_not_fit_fails_in_the_driver_naming_the_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    from activessf.errors import WeightsError
    from activessf.finetune.model import check_init

    wrong = tmp_path / "resnet34.safetensors"
    save_file(timm.create_model("resnet34", pretrained=False).state_dict(), str(wrong))
    ft = build_config(FinetuneConfig, None, [f"model.init={wrong}", "model.name=resnet18", "model.patch_size=null",
                                             "model.encoder_kwargs={}", "model.img_size=32"])
    with pytest.raises(WeightsError, match="resnet34.safetensors do not fit resnet18"):
        check_init(ft.model, 3)
    check_init(build_config(FinetuneConfig, None, ["model.init=none"]).model, 3)  # nothing to check
