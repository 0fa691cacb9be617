"""Tests of sentiment_vector.py: GramSentimentVector against a naive loop, options, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend

import sentiment_metric as sm
from tests.conftest import TOLERANCES
from tests.opcount import top_level_aten_ops


def naive_head(head: sm.GramSentimentVector, features: list[torch.Tensor]) -> torch.Tensor:
    """1×1 conv + ReLU written per position, Gram and triangle per sample, in float64."""
    rows = []
    for n in range(features[0].shape[0]):
        vec: list[torch.Tensor] = []
        for x, conv in zip(features, head.reducers):
            w = conv.weight.detach().double()[:, :, 0, 0]  # (N', C)
            bias = conv.bias.detach().double()
            f = x[n].double().flatten(1)  # (C, M)
            red = torch.relu(w @ f + bias[:, None])  # (N', M)
            k = red.shape[0]
            for i in range(k):
                for j in range(i, k):
                    vec.append((red[i] * red[j]).sum())
        v = torch.stack(vec)
        rows.append(v / v.norm())
    return torch.stack(rows)


@pytest.fixture
def feats() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, 6, 5, 5, generator=g), torch.randn(3, 10, 3, 2, generator=g)]


def test_head_matches_naive(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    out = head(feats)
    assert head.out_features == 12 and out.shape == (3, 12)
    torch.testing.assert_close(out.double(), naive_head(head, feats), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_head_paper_size_and_repr():
    head = sm.GramSentimentVector(in_channels=[480, 832, 1024], reduced_channels=16)
    assert head.out_features == 3 * 136
    text = repr(head)
    for part in (
        "in_channels=(480, 832, 1024)",
        "reduced_channels=16",
        "out_features=408",
        "activation=ReLU",
        "layer_norm=False",
    ):
        assert part in text
    assert len(head.reducers) == 3 and head.reducers[2].in_channels == 1024


def test_head_options_pass_through(feats):
    torch.manual_seed(0)
    kw = {"normalize_size": True, "layer_norm": True, "power_norm": True}
    head = sm.GramSentimentVector([6, 10], reduced_channels=3, **kw)
    reduced = [torch.relu(c(x)) for x, c in zip(feats, head.reducers)]
    torch.testing.assert_close(head(feats), sm.functional.sentiment_vector(reduced, **kw))
    # layer_norm: each of the two layers' parts has norm 1/sqrt(2) after the final L2
    out = head(feats)
    torch.testing.assert_close(out[:, :6].norm(dim=1), torch.full((3,), 2**-0.5))


def test_head_activation_choices(feats):
    a = sm.GramSentimentVector([6, 10], 3, activation=None)
    assert all(isinstance(m, nn.Identity) for m in a.activations)
    b = sm.GramSentimentVector([6, 10], 3, activation=nn.LeakyReLU(0.3))
    assert b.activations[0] is not b.activations[1]
    assert b.activations[1].negative_slope == 0.3
    c = sm.GramSentimentVector(6, 3, activation=lambda: nn.GELU())
    assert isinstance(c.activations[0], nn.GELU) and c.in_channels == (6,)
    assert "activation=LeakyReLU" in repr(b)


def test_head_device_dtype_and_gradcheck(feats, device):
    head = sm.GramSentimentVector([6, 10], reduced_channels=2, dtype=torch.float64, device=device)
    assert head.reducers[0].weight.dtype == torch.float64
    assert head.reducers[0].weight.device.type == device.type
    small = [f[:2, :, :2, :2].double().to(device).requires_grad_(True) for f in feats]
    assert torch.autograd.gradcheck(lambda a, b: head([a, b]), tuple(small))


def test_head_zero_features_finite():
    head = sm.GramSentimentVector([4], reduced_channels=3)
    with torch.no_grad():
        head.reducers[0].bias.fill_(-10.0)  # everything below the ReLU's threshold
    x = torch.zeros(2, 4, 3, 3, requires_grad=True)
    out = head([x])
    assert torch.equal(out, torch.zeros(2, 6))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_head_autocast_and_channels_last(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    ref = head(feats)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(feats)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, **TOLERANCES[torch.bfloat16])
    cl = [f.to(memory_format=torch.channels_last) for f in feats]
    torch.testing.assert_close(head(cl), ref)


def test_head_torch_compile(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    compiled = torch.compile(head, backend="aot_eager", fullgraph=True)
    out = compiled(feats)
    out.sum().backward()
    torch.testing.assert_close(out, head(feats))
    assert head.reducers[0].weight.grad is not None


@pytest.mark.parametrize(
    ("features", "match"),
    [
        (lambda f: f[:1], r"must hold 2 feature map\(s\) \(in_channels=\(6, 10\)\), got 1"),
        (lambda f: [*f, f[0]], r"must hold 2 .* got 3"),
        (
            lambda f: [f[0], f[1][:, :7]],
            r"expected \(6, 10\), got \(6, 7\) \(layer 1: expected 10, got 7\)",
        ),
        (
            lambda f: [f[1], f[0]],
            r"layer 0: expected 6, got 10; layer 1: expected 10, got 6",
        ),
        (lambda f: [f[0], f[1][:, :, 0]], r"features\[1\] must have shape \(B, C, H, W\)"),
        (lambda f: f[0], "must be a list of 2 tensors"),
        (lambda f: [f[0].long(), f[1]], "floating-point"),
        (lambda f: [f[0], f[1].to(torch.uint8)], r"features\[1\] must be a floating-point"),
        (
            lambda f: [f[0], f[1].double()],
            r"features\[1\] has dtype torch.float64 but the parameters of the head are "
            r"torch.float32",
        ),
        (lambda f: [f[0].half(), f[1]], r"features\[0\] has dtype torch.float16"),
        (lambda f: [f[0], f[1][:2]], r"features\[1\] has 2"),
    ],
)
def test_head_bad_features(feats, features, match):
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    with pytest.raises(sm.SentimentMetricError, match=match):
        head(features(feats))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"in_channels": [6], "reduced_channels": 0},
            r"reduced_channels must be an int >= 1, got 0",
        ),
        ({"in_channels": [6], "reduced_channels": 2.5}, "reduced_channels"),
        ({"in_channels": []}, "at least one layer"),
        ({"in_channels": [6, 0]}, r"in_channels\[1\] must be an int >= 1"),
        ({"in_channels": "480"}, "list of channel counts"),
        ({"in_channels": [6], "activation": 3}, "activation must be"),
        ({"in_channels": [6], "activation": lambda: 3}, "returned int"),
    ],
)
def test_head_bad_arguments(kwargs, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        sm.GramSentimentVector(**kwargs)


def test_head_unusual_but_legitimate_maps(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    ones = [f[:, :, :1, :1] for f in feats]  # 1×1 maps: one position per Gram
    torch.testing.assert_close(head(ones).double(), naive_head(head, ones), rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed dtypes are autocast's business
        out = head([feats[0].bfloat16(), feats[1]])
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    head64 = sm.GramSentimentVector([6, 10], reduced_channels=3, dtype=torch.float64)
    feats64 = [f.double() for f in feats]
    torch.testing.assert_close(head64(feats64), naive_head(head64, feats64))


def test_head_op_count_at_googlenet_taps():
    # issue 12: forward + backward of the head at three taps in at most 40 top-level ops
    # (was 79): per layer a conv, an activation and one Gram product each way; one gather each
    # way and a fused L2 normalisation for all layers.
    # issue 18: with the defaults a user gets (validate=True), not one op more: the check's
    # read of the row norms replaces the floor's clamp and its backward mask.
    torch.manual_seed(0)
    head = sm.GramSentimentVector([48, 83, 102], reduced_channels=16)
    feats = [torch.randn(2, c, s, s, requires_grad=True) for c, s in [(48, 8), (83, 4), (102, 2)]]
    grad = torch.randn(2, head.out_features)

    def step(through_sum: bool = False) -> None:
        head.zero_grad(set_to_none=True)
        for f in feats:
            f.grad = None
        out = head(feats)
        if through_sum:
            out.sum().backward()  # + the sum, autograd's ones_like and its expand
        else:
            out.backward(grad)

    checked = top_level_aten_ops(step)
    assert checked <= 40
    assert top_level_aten_ops(lambda: step(through_sum=True)) == checked + 3
    head.validate = False
    assert top_level_aten_ops(step) == checked


def test_head_validate_read_changes_no_value_or_gradient(feats):
    # issue 18: the check's path (no floor, no backward mask) equals the unchecked one.
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3, dtype=torch.float64)
    xs = [f.double().requires_grad_(True) for f in feats]
    weights = torch.randn(xs[0].shape[0], head.out_features, dtype=torch.float64)
    results = []
    for validate in (True, False):
        head.validate = validate
        out = head(xs)
        results.append((out, *torch.autograd.grad((out * weights).sum(), xs)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    head.validate = True
    assert torch.autograd.gradcheck(lambda a, b: head([a, b]), tuple(xs))
    assert torch.autograd.gradgradcheck(lambda a, b: head([a, b]), tuple(xs))


def test_head_compiles_fullgraph_with_dynamic_batch(feats):
    # fullgraph=True: a graph break would raise. aot_eager keeps the test fast (inductor
    # compiles the same graph; its C++ cold start costs ~20 s on two loaded cores).
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3, layer_norm=True)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(head, backend=counter, fullgraph=True, dynamic=True)
    for b in (7, 9, 11):  # sizes no other dimension has (dynamo's duck sizing)
        batch = [torch.randn(b, *f.shape[1:], requires_grad=True) for f in feats]
        out = compiled(batch)
        torch.testing.assert_close(out, head(batch))
        (g,) = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out)).sum(), batch[:1])
        (ref,) = torch.autograd.grad(
            (head(batch) * torch.arange(out.numel()).view_as(out)).sum(), batch[:1]
        )
        torch.testing.assert_close(g, ref)
    assert counter.frame_count == 1  # one graph for every batch size


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_head_cuda_graph_capture():
    # A fixed-shape training step of the head captured in one CUDA graph and replayed.
    torch.manual_seed(0)
    dev = torch.device("cuda")
    head = sm.GramSentimentVector([32, 64], reduced_channels=8).to(dev)
    static = [torch.randn(4, 32, 14, 14, device=dev), torch.randn(4, 64, 7, 7, device=dev)]
    grad = torch.randn(4, head.out_features, device=dev)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up (fills the index cache) outside the capture
        for _ in range(3):
            head.zero_grad(set_to_none=True)
            head(static).backward(grad)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    head.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        out = head(static)
        out.backward(grad)
    new = [torch.randn_like(x) for x in static]
    for x, n in zip(static, new):
        x.copy_(n)
    graph.replay()
    torch.cuda.synchronize()
    ref_head = copy.deepcopy(head)
    ref_head.zero_grad(set_to_none=True)
    ref = ref_head(new)
    ref.backward(grad)
    torch.testing.assert_close(out, ref)
    w, w_ref = head.reducers[0].weight.grad, ref_head.reducers[0].weight.grad
    torch.testing.assert_close(w, w_ref)


def test_head_non_finite_features_named(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3)
    assert "validate=True" in repr(head)
    bad = [feats[0], feats[1].clone()]
    bad[1][2, 4, 1, 0] = float("nan")
    with pytest.raises(sm.SentimentMetricError, match=r"features\[1\] must be finite, got 1 NaN"):
        head(bad)
    bad[1][2, 4, 1, 0] = float("inf")
    with pytest.raises(sm.SentimentMetricError, match=r"features\[1\] .* 0 NaN and 1 Inf"):
        head(bad)
    head.validate = False  # unchecked: the NaN or Inf reaches the output, nothing is read
    assert not torch.isfinite(head(bad)[2]).all()


def test_head_non_finite_parameters_reported(feats):
    torch.manual_seed(0)
    head = sm.GramSentimentVector([6, 10], reduced_channels=3, validate=True)
    with torch.no_grad():
        head.reducers[0].weight[0, 0] = float("nan")
    with pytest.raises(sm.SentimentMetricError, match="features are finite but the head's"):
        head(feats)
    off = sm.GramSentimentVector([6, 10], reduced_channels=3, validate=False)
    off.load_state_dict(head.state_dict())
    assert torch.isnan(off(feats)).all()
