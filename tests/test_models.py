"""Tests of models.py: SentimentModel on named and custom backbones, and the backbone table."""

from __future__ import annotations

import copy
import io
import urllib.error

import pytest
import torch
from torch import nn

import sentiment_metric as sm
from sentiment_metric.models import BACKBONES, BackboneSpec, small_convnet


def tiny_backbone() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )


@pytest.fixture(scope="module")
def googlenet() -> sm.SentimentModel:
    torch.manual_seed(0)
    return sm.SentimentModel("googlenet", num_classes=8)


@pytest.fixture(scope="module")
def resnet18() -> sm.SentimentModel:
    torch.manual_seed(0)
    return sm.SentimentModel("resnet18", num_classes=5, reduced_channels=8)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_googlenet_defaults(googlenet, images):
    m = googlenet.train()
    assert m.layers == ("inception3b", "inception4e", "inception5b")
    assert m.layer_channels == (480, 832, 1024)
    assert m.embedding_size == 408 and m.pooled_features == 1024
    assert m.backbone.aux1 is None and m.backbone.aux2 is None and not m.backbone.aux_logits
    assert isinstance(m.backbone.fc, nn.Identity)
    assert m.classifier.in_features == 1024 and m.classifier.out_features == 8
    emb, logits = m(images)
    assert emb.shape == (4, 408) and logits.shape == (4, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
    text = repr(m)
    assert "backbone='googlenet'" in text and "embedding_size=408" in text


def _grad_reaches_backbone(model: sm.SentimentModel, x: torch.Tensor, first: nn.Parameter) -> None:
    for part in (0, 1):  # the embedding alone, then the logits alone
        model.zero_grad(set_to_none=True)
        model(x)[part].pow(2).sum().backward()
        assert first.grad is not None and first.grad.abs().sum() > 0, part


def test_googlenet_backward_reaches_backbone(googlenet, images):
    m = googlenet.train()
    _grad_reaches_backbone(m, images, m.backbone.conv1.conv.weight)
    assert m.head.reducers[0].weight.grad is None  # zero_grad'ed, then only logits
    m.zero_grad(set_to_none=True)
    emb, logits = m(images)
    (emb.sum() + logits.sum()).backward()
    assert m.head.reducers[0].weight.grad is not None and m.classifier.weight.grad is not None


def test_resnet18_shapes_and_backward(resnet18):
    m = resnet18.train()
    assert m.layers == ("layer2", "layer3", "layer4") and m.layer_channels == (128, 256, 512)
    assert m.embedding_size == 3 * 36 and m.pooled_features == 512
    x = torch.randn(4, 3, 96, 96)
    emb, logits = m(x)
    assert emb.shape == (4, 108) and logits.shape == (4, 5)
    _grad_reaches_backbone(m, x, m.backbone.conv1.weight)


def test_hooks_do_not_leak_between_calls(resnet18, images):
    m = resnet18.eval()
    tapped = [m.backbone.get_submodule(n) for n in m.layers]
    with torch.no_grad():
        emb4, logits4 = m(images)
        assert m._tapped == {}  # nothing held between calls
        emb2, logits2 = m(images[:2])
        m(torch.randn(3, 3, 80, 80))
    assert all(len(t._forward_hooks) == 1 for t in tapped)  # none added per call
    torch.testing.assert_close(emb2, emb4[:2])  # no carry-over between batches
    torch.testing.assert_close(logits2, logits4[:2])

    # a forward that fails half-way leaves nothing behind either
    def fail(module, inputs, output):
        raise RuntimeError("boom")

    handle = m.backbone.get_submodule("layer4").register_forward_hook(fail)
    try:
        with pytest.raises(sm.SentimentMetricError, match=r"failed in backbone .*boom"):
            m(images)
    finally:
        handle.remove()
    assert m._tapped == {}


def test_eval_vs_train(googlenet, images):
    m = googlenet
    m.eval()
    with torch.no_grad():
        e1, l1 = m(images)
        e2, l2 = m(images)
    assert torch.equal(e1, e2) and torch.equal(l1, l2)  # eval: deterministic
    bn = m.backbone.conv1.bn
    before = bn.running_mean.clone()
    m.train()
    e3, _ = m(images)
    assert not torch.equal(bn.running_mean, before)  # train: batch statistics, updated
    assert not torch.allclose(e3, e1)
    # eval again: the running statistics are used, nothing changes
    m.eval()
    after = bn.running_mean.clone()
    with torch.no_grad():
        m(images)
    assert torch.equal(bn.running_mean, after)


def test_dry_run_restores_modes_and_touches_no_statistics():
    net = tiny_backbone()
    net[1].eval()  # a user's frozen BatchNorm in an otherwise training module
    stats = net[1].running_mean.clone()
    m = sm.SentimentModel(net, layers=["2", "4"], reduced_channels=2)
    assert net.training and not net[1].training
    assert torch.equal(net[1].running_mean, stats)
    assert m.layer_channels == (8, 12)


def test_custom_backbone_pooled_features():
    torch.manual_seed(0)
    net = tiny_backbone()
    m = sm.SentimentModel(net, layers=["2", "4"], num_classes=3, reduced_channels=4)
    assert m.embedding_size == 20 and m.pooled_features == 12  # GAP of the last tap
    x = torch.randn(2, 3, 32, 32)
    emb, logits = m.eval()(x)
    assert emb.shape == (2, 20)
    pooled = net[:5](x).mean(dim=(2, 3))
    torch.testing.assert_close(logits, m.classifier(pooled))
    # pooled_layer: another module's output (flattened when not 4-D)
    # (a flattened map's size depends on the input size: dry-run at the size used)
    m2 = sm.SentimentModel(
        net, layers=["2"], pooled_layer="5", embedding="fc", dry_run_shape=(3, 32, 32)
    )
    assert m2.head is None and m2.embedding_size == 12 * 8 * 8
    emb2, _ = m2.eval()(x)
    torch.testing.assert_close(emb2, net(x))


def test_fc_embedding_is_the_pooled_features():
    torch.manual_seed(0)
    m = sm.SentimentModel("resnet18", embedding="fc", num_classes=4).eval()
    assert m.head is None and m.embedding_size == 512
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        emb, logits = m(x)
        torch.testing.assert_close(emb, m.backbone(x))
        torch.testing.assert_close(logits, m.classifier(emb))
    assert emb.shape == (2, 512) and logits.shape == (2, 4)


def test_named_backbone_custom_layers():
    m = sm.SentimentModel("resnet18", layers=["layer3", "layer4.1"], reduced_channels=4)
    assert m.layer_channels == (256, 512) and m.embedding_size == 20
    emb, _ = m(torch.randn(2, 3, 64, 64))
    assert emb.shape == (2, 20)


def test_state_dict_round_trip_and_deepcopy(images):
    torch.manual_seed(0)
    a = sm.SentimentModel("resnet18", num_classes=3, reduced_channels=4).eval()
    torch.manual_seed(1)
    b = sm.SentimentModel("resnet18", num_classes=3, reduced_channels=4).eval()
    with torch.no_grad():
        ea, la = a(images)
        assert not torch.allclose(b(images)[1], la)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))  # strict: same keys
    c = copy.deepcopy(a)  # the copy's hooks fill the copy's store
    with torch.no_grad():
        eb, lb = b(images)
        ec, _ = c(images)
    assert torch.equal(ea, eb) and torch.equal(la, lb) and torch.equal(ea, ec)
    assert a._tapped == {} and c._tapped is not a._tapped


def test_sentiment_model_torch_compile():
    # A full torchvision backbone with hooks, compiled without graph breaks (fullgraph=True).
    # aot_eager: dynamo + AOT autograd tracing stay ~5 s here; inductor's C++ cold start on two
    # loaded cores adds ~30 s per model, so it is exercised by the benchmark/GPU runs instead.
    torch.manual_seed(0)
    m = sm.SentimentModel("resnet18", reduced_channels=4).eval()
    x = torch.randn(2, 3, 64, 64)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        got, ref = compiled(x), m(x)
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    assert m._tapped == {}


def test_custom_model_compile_train_backward():
    torch.manual_seed(0)
    m = sm.SentimentModel(tiny_backbone(), layers=["2", "4"], reduced_channels=3)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    emb, logits = compiled(torch.randn(4, 3, 32, 32))
    (emb.sum() + logits.sum()).backward()
    assert m.backbone[0].weight.grad is not None and m._tapped == {}


def test_autocast_embedding_float32():
    m = sm.SentimentModel(tiny_backbone(), layers=["2", "4"], reduced_channels=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb, logits = m(torch.randn(2, 3, 32, 32))
    assert emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert logits.dtype == torch.bfloat16  # the classifier runs under autocast as usual


def test_custom_backbone_float64_device(device):
    net = tiny_backbone().to(device=device, dtype=torch.float64)
    m = sm.SentimentModel(net, layers=["2", "4"], reduced_channels=3)
    assert m.head.reducers[0].weight.dtype == torch.float64
    assert m.classifier.weight.device.type == device.type
    emb, _ = m(torch.randn(2, 3, 32, 32, dtype=torch.float64, device=device))
    assert emb.dtype == torch.float64


def _offline(exc: Exception):
    def download(*args, **kwargs):
        raise exc

    return download


@pytest.mark.parametrize(
    ("backbone", "exc"),
    [
        ("resnet18", urllib.error.URLError("[Errno -3] Temporary failure in name resolution")),
        ("googlenet", OSError(101, "Network is unreachable")),
    ],
)
def test_weights_download_failure_is_clear(monkeypatch, tmp_path, backbone, exc):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached checkpoint
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline(exc))
    with pytest.raises(sm.SentimentMetricError, match="could not download the pretrained") as info:
        sm.SentimentModel(backbone, weights="DEFAULT")
    msg = str(info.value)
    assert "weights=None" in msg and str(tmp_path) in msg and "download.pytorch.org" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no urllib trace


def test_weights_are_loaded(monkeypatch):
    # The pretrained path, without a download: torchvision's loader hands a known state dict.
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(3)
    ref = tvm.googlenet(weights=None, aux_logits=True, init_weights=False)
    monkeypatch.setattr(
        tvm.GoogLeNet_Weights, "get_state_dict", lambda self, *a, **k: ref.state_dict()
    )
    m = sm.SentimentModel("googlenet", weights=tvm.GoogLeNet_Weights.IMAGENET1K_V1)
    assert m.backbone.aux1 is None and m.backbone.transform_input
    assert torch.equal(
        m.backbone.inception5b.branch1.conv.weight, ref.inception5b.branch1.conv.weight
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backbone": "vgg16"}, r"backbone must be one of 'googlenet', 'resnet18'.* got 'vgg16'"),
        ({"backbone": 3}, "or an nn.Module; got int"),
        ({"backbone": "resnet18", "layers": ["layer5"]}, r"unknown layer name 'layer5'.*'layer4'"),
        (
            {"backbone": "googlenet", "layers": ["inception3b", "inception4x"]},
            r"unknown layer name 'inception4x' in backbone googlenet; closest names: "
            r".*'inception4a'.*top-level modules: 'conv1'.* e\.g\. 'conv1\.conv'",
        ),
        ({"backbone": "resnet18", "layers": []}, "at least one layer"),
        ({"backbone": "resnet18", "layers": [3]}, "list of module names"),
        ({"backbone": "resnet18", "reduced_channels": 0}, "reduced_channels must be an int >= 1"),
        ({"backbone": "resnet18", "num_classes": 0}, "num_classes must be an int >= 1"),
        (
            {"backbone": "resnet18", "embedding": "gram"},
            "embedding must be one of 'sentiment', 'fc'",
        ),
        ({"backbone": "resnet18", "weights": "IMAGENET9K"}, r"'DEFAULT', 'IMAGENET1K_V1'"),
        ({"backbone": "resnet18", "dry_run_shape": (64, 64)}, r"dry_run_shape must be \(C, H, W\)"),
    ],
)
def test_sentiment_model_bad_arguments(kwargs, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        sm.SentimentModel(**kwargs)


def test_custom_backbone_bad_arguments():
    net = tiny_backbone()
    with pytest.raises(sm.SentimentMetricError, match=r"layers= .* is required.*'0', '1'"):
        sm.SentimentModel(net)
    with pytest.raises(sm.SentimentMetricError, match="weights= applies only to a named"):
        sm.SentimentModel(net, layers=["2"], weights="DEFAULT")
    with pytest.raises(sm.SentimentMetricError, match=r"layer '5' outputs shape \(2, 3072\)"):
        sm.SentimentModel(net, layers=["5"])
    with pytest.raises(sm.SentimentMetricError, match=r"dry run .* shape \(2, 3, 16, 16\)"):
        sm.SentimentModel(
            nn.Sequential(nn.Linear(5, 5), nn.ReLU()), layers=["1"], dry_run_shape=(3, 16, 16)
        )

    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Conv2d(3, 4, 1)
            self.extra = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    unused = Unused()
    with pytest.raises(sm.SentimentMetricError, match="'extra' .* was not called"):
        sm.SentimentModel(unused, layers=["extra"])


def test_images_must_be_4d(resnet18):
    with pytest.raises(sm.SentimentMetricError, match=r"images must have shape \(B, C, H, W\)"):
        resnet18(torch.randn(3, 64, 64))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.randn(2, 1, 64, 64), r"images must have 3 channels .* got shape \(2, 1, 64, 64\)"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), r"floating-point.*uint8.*/ 255"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.int64), "floating-point"),
        (
            torch.randn(2, 3, 64, 64, dtype=torch.float64),
            r"images has dtype torch.float64 but the parameters of the model are torch.float32",
        ),
        (torch.randn(2, 3, 64, 64).half(), r"torch.float16 but .* torch.float32"),
        (torch.randn(2, 3, 1, 1), r"images of shape \(2, 3, 1, 1\) failed in backbone googlenet"),
        (torch.randn(2, 3, 8, 8), r"too small .* dry run took one image of shape \(3, 64, 64\)"),
    ],
)
def test_bad_images_are_named(googlenet, images, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        googlenet(images)
    assert googlenet._tapped == {}


def test_legitimate_unusual_images():
    torch.manual_seed(0)
    small = sm.SentimentModel("small", num_classes=3, reduced_channels=2, dry_run_shape=(3, 8, 8))
    emb, _ = small(torch.randn(2, 3, 1, 1))  # 1×1 images: the small net takes them
    assert emb.shape == (2, 9) and torch.isfinite(emb).all()
    double = copy.deepcopy(small).double()  # float64 images with a float64 model
    emb64, _ = double(torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert emb64.dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):  # any float but float64 under autocast
        emb16, _ = small(torch.randn(2, 3, 16, 16, dtype=torch.bfloat16))
    assert emb16.dtype == torch.float32 and torch.isfinite(emb16).all()
    gray = sm.SentimentModel(
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), layers=["1"], dry_run_shape=(1, 16, 16)
    )
    assert gray.image_channels == 1 and gray(torch.randn(2, 1, 16, 16))[0].shape == (2, 136)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_images_on_another_device_are_named():
    m = sm.SentimentModel("small", num_classes=3, reduced_channels=2, dry_run_shape=(3, 8, 8))
    with pytest.raises(
        sm.SentimentMetricError, match=r"images is on cuda:0 but the model is on cpu"
    ):
        m(torch.randn(2, 3, 8, 8, device="cuda"))


def test_backbone_table_and_small() -> None:
    assert all(isinstance(spec, BackboneSpec) for spec in BACKBONES.values())
    assert {"googlenet", "resnet18", "resnet50", "small"} <= set(BACKBONES)
    torch.manual_seed(0)
    m = sm.SentimentModel("small", num_classes=3, reduced_channels=2, dry_run_shape=(3, 32, 32))
    assert m.layers == BACKBONES["small"].layers == ("layer1", "layer2", "layer3")
    assert m.layer_channels == (32, 64, 64) and m.pooled_features == 64
    emb, logits = m(torch.randn(2, 3, 32, 32))
    assert emb.shape == (2, 3 * 3) and logits.shape == (2, 3)
    assert isinstance(small_convnet(8), nn.Sequential)
    with pytest.raises(sm.SentimentMetricError, match="'small' has no pretrained weights"):
        sm.SentimentModel("small", weights="DEFAULT")


@pytest.mark.parametrize("embedding", ["sentiment", "fc"])
def test_non_finite_images_are_named(embedding):
    torch.manual_seed(0)
    m = sm.SentimentModel(
        tiny_backbone(),
        layers=["2", "4"],
        reduced_channels=3,
        embedding=embedding,
        pooled_layer="4",
    )
    assert m.validate and "validate=True" in repr(m)
    assert m.head is None or not m.head.validate  # the model checks its outputs once
    x = torch.randn(2, 3, 32, 32)
    x[1, 0, 3, 3] = float("nan")
    with pytest.raises(sm.SentimentMetricError, match=r"images must be finite, got 1 NaN"):
        m(x)
    x[1, 0, 3, 3] = float("inf")
    with pytest.raises(sm.SentimentMetricError, match=r"images .* 0 NaN and 1 Inf"):
        m(x)
    m.validate = False  # unchecked: no value is read, the NaN goes through
    emb, _ = m(x)
    assert not torch.isfinite(emb).all()


def test_non_finite_parameters_with_finite_images():
    torch.manual_seed(0)
    m = sm.SentimentModel(tiny_backbone(), layers=["2", "4"], reduced_channels=3)
    with torch.no_grad():
        m.classifier.weight[0, 0] = float("nan")
    with pytest.raises(sm.SentimentMetricError, match="images are finite but the model's"):
        m(torch.randn(2, 3, 32, 32))
    m2 = sm.SentimentModel(tiny_backbone(), layers=["2", "4"], reduced_channels=3, validate=False)
    m2.load_state_dict(m.state_dict())
    _, logits = m2(torch.randn(2, 3, 32, 32))
    assert torch.isnan(logits[:, 0]).all()
