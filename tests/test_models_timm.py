"""Any timm architecture as a benchmark's model: `model: timm:<name>`."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data.base import ImageSet
from unlearnkit.data.loaders import TensorLoader
from unlearnkit.fused_training import train_many
from unlearnkit.methods import resolve_config, run_method
from unlearnkit.models import build_model, load_state
from unlearnkit.train import TrainConfig, predict_logits, train

TINY = "timm:test_resnet"  # timm's own test network: 0.37 M parameters, a resnet with fc


def _data(n=24) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.rand(n, 3, 32, 32, generator=g) * 255, torch.arange(n) % 10)


def test_a_timm_model_trains_unlearns_and_reloads():
    torch.manual_seed(0)
    net = build_model(TINY, num_classes=10)
    data = _data()
    train(net, data, TrainConfig(epochs=1, batch_size=8), seed=0, progress=False)
    assert predict_logits(net, data).shape == (len(data), 10)
    loader = TensorLoader(data, batch_size=8)
    run_method("finetune", net, loader, TensorLoader(data.subset(torch.arange(4)), 4), None,
               seed=0, cfg=resolve_config("finetune", {"max_steps": 2}))
    twin = load_state(build_model(TINY, num_classes=10), net.state_dict())
    x = data.images[:2]
    torch.testing.assert_close(twin.eval()(x), net.eval()(x))


def test_an_unknown_timm_name_lists_close_names():
    with pytest.raises(ValueError, match="close names: .*resnet18"):
        build_model("timm:resnet181")


def test_the_fused_trainer_refuses_timm_models_clearly():
    with pytest.raises(ValueError, match="one model at a time"):
        train_many(TINY, _data(), [0, 1], TrainConfig(epochs=1), progress=False)
