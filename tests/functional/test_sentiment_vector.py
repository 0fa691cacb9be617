"""gram_matrix and sentiment_vector against per-sample float64 loops written from the formula."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
from sentiment_metric.functional import gram_matrix, sentiment_vector, sentiment_vector_size
from sentiment_metric.functional.sentiment_vector import _cached_layout
from tests.conftest import TOLERANCES

# ----------------------------------------------------------------------------- references


def naive_gram(x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Φ_ij = Σ_{h,w} F_ih w F_jhw, one sample and one entry at a time, in float64."""
    x = x.detach().double()
    b, c, h, w = x.shape
    out = torch.zeros(b, c, c, dtype=torch.float64)
    for n in range(b):
        for i in range(c):
            for j in range(c):
                s = 0.0
                for p in range(h):
                    for q in range(w):
                        s += float(x[n, i, p, q]) * float(x[n, j, p, q])
                out[n, i, j] = s / (h * w) if normalize else s
    return out


def naive_sentiment_vector(
    features: list[torch.Tensor],
    normalize_size: bool = False,
    layer_norm: bool = False,
    power_norm: bool = False,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Per sample: each Gram's upper triangle (row by row), the options, concatenated, L2."""
    b = features[0].shape[0]
    grams = [naive_gram(x, normalize_size) for x in features]
    rows = []
    for n in range(b):
        vec: list[float] = []
        for g in grams:
            c = g.shape[1]
            part = [float(g[n, i, j]) for i in range(c) for j in range(i, c)]
            if power_norm:
                part = [math.copysign(math.sqrt(abs(v) + eps), v) if v != 0 else 0.0 for v in part]
            if layer_norm:
                norm = math.sqrt(sum(v * v for v in part))
                part = [v / max(norm, eps) for v in part]
            vec += part
        norm = math.sqrt(sum(v * v for v in vec))
        rows.append([v / max(norm, eps) for v in vec])
    return torch.tensor(rows, dtype=torch.float64)


def _features(shapes: list[tuple[int, int, int, int]], seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in shapes]


# ----------------------------------------------------------------------------- gram_matrix


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 4, 1, 7)])
def test_gram_matches_naive_loop(shape, normalize):
    (x,) = _features([shape])
    got = gram_matrix(x, normalize=normalize)
    assert got.shape == (shape[0], shape[1], shape[1])
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, naive_gram(x, normalize), **TOLERANCES[torch.float64])


def test_gram_is_exactly_unscaled_by_default():
    x = torch.full((1, 2, 3, 4), 2.0)
    # every entry is Σ over 12 positions of 2·2 = 48; normalised: 4
    assert torch.equal(gram_matrix(x), torch.full((1, 2, 2), 48.0))
    assert torch.equal(gram_matrix(x, normalize=True), torch.full((1, 2, 2), 4.0))


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 3),
    c=st.integers(1, 6),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    normalize=st.booleans(),
)
def test_gram_symmetric_psd(b, c, h, w, seed, normalize):
    (x,) = _features([(b, c, h, w)], seed)
    g = gram_matrix(x, normalize=normalize)
    # symmetric up to rounding (BLAS may sum Φ_ij and Φ_ji in different orders)
    torch.testing.assert_close(g, g.transpose(1, 2), **TOLERANCES[torch.float64])
    eig = torch.linalg.eigvalsh(g)
    scale = g.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1.0)
    assert bool((eig >= -1e-10 * scale[:, None]).all()), eig


def test_gram_gradcheck():
    (x,) = _features([(2, 3, 2, 3)])
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))
    assert torch.autograd.gradcheck(lambda t: gram_matrix(t, normalize=True), (x,))


def test_gradgradcheck():
    # the symmetric backward (one bmm) is itself differentiable
    (x,) = _features([(2, 3, 2, 2)], seed=3)
    x.requires_grad_(True)
    assert torch.autograd.gradgradcheck(gram_matrix, (x,))
    assert torch.autograd.gradgradcheck(lambda t: sentiment_vector([t]), (x,))


def test_gram_channels_last_same_values_and_grads():
    (x,) = _features([(2, 5, 4, 3)], dtype=torch.float32)
    xc = x.to(memory_format=torch.channels_last).requires_grad_(True)
    x = x.clone().requires_grad_(True)
    assert xc.is_contiguous(memory_format=torch.channels_last)
    g, gc = gram_matrix(x), gram_matrix(xc)
    torch.testing.assert_close(gc, g, **TOLERANCES[torch.float32])
    (g * torch.arange(25.0).view(5, 5)).sum().backward()
    (gc * torch.arange(25.0).view(5, 5)).sum().backward()
    torch.testing.assert_close(xc.grad, x.grad, **TOLERANCES[torch.float32])


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_gram_float32_under_autocast_and_for_half_inputs(low):
    (x,) = _features([(2, 4, 6, 6)], dtype=torch.float32)
    ref = naive_gram(x).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(x)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, ref, **TOLERANCES[torch.float32])
    # low-precision input: up-cast, float32 result (no overflow of the H·W sum)
    big = torch.full((1, 2, 64, 64), 100.0, dtype=low)  # Σ = 4096 · 1e4 > float16's max
    out = gram_matrix(big)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out[0, 0, 0].item() == pytest.approx(4096 * 1e4)


def test_gram_any_device(device):
    (x,) = _features([(2, 3, 4, 4)], dtype=torch.float32)
    g = gram_matrix(x.to(device))
    assert g.device.type == device.type
    torch.testing.assert_close(g.cpu(), naive_gram(x).float(), **TOLERANCES[torch.float32])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.zeros(2, 3, 4), r"x must have shape \(B, C, H, W\) \(4-D\), got shape \(2, 3, 4\)"),
        (torch.zeros(2, 3, 4, 4, 1), r"4-D"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.long), "floating-point"),
        ([[1.0]], "torch.Tensor"),
    ],
)
def test_gram_bad_input(bad, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        gram_matrix(bad)


# ----------------------------------------------------------------------------- sentiment_vector

OPTION_SETS = [
    {},
    {"normalize_size": True},
    {"layer_norm": True},
    {"power_norm": True},
    {"normalize_size": True, "layer_norm": True, "power_norm": True},
]


@pytest.mark.parametrize("options", OPTION_SETS)
def test_sentiment_vector_matches_naive_loop(options):
    feats = _features([(3, 4, 5, 5), (3, 3, 2, 3), (3, 2, 1, 1)], seed=1)
    got = sentiment_vector(feats, **options)
    assert got.shape == (3, 10 + 6 + 3)
    torch.testing.assert_close(
        got, naive_sentiment_vector(feats, **options), **TOLERANCES[torch.float64]
    )


def test_sentiment_vector_triangle_order_is_row_major():
    # one sample, one layer: Φ = [[1, 2], [2, 4]] for F = [[1], [2]] -> triu (1, 2, 4) / ‖·‖
    x = torch.tensor([[[[1.0]], [[2.0]]]])
    v = sentiment_vector([x])
    torch.testing.assert_close(v, torch.tensor([[1.0, 2.0, 4.0]]) / math.sqrt(21.0))


@settings(max_examples=20, deadline=None)
@given(
    channels=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    b=st.integers(1, 3),
    hw=st.integers(1, 4),
    layer_norm=st.booleans(),
    power_norm=st.booleans(),
)
def test_sentiment_vector_size_and_unit_norm(channels, b, hw, layer_norm, power_norm):
    g = torch.Generator().manual_seed(len(channels) * 7 + b)
    # positive maps: never a zero Gram, so the norm is exactly 1
    feats = [torch.rand(b, c, hw, hw + 1, generator=g) + 0.1 for c in channels]
    v = sentiment_vector(feats, layer_norm=layer_norm, power_norm=power_norm)
    d = sum(c * (c + 1) // 2 for c in channels)
    assert v.shape == (b, d) == (b, sentiment_vector_size(channels))
    torch.testing.assert_close(v.norm(dim=1), torch.ones(b), **TOLERANCES[torch.float32])


@pytest.mark.parametrize("options", [OPTION_SETS[0], OPTION_SETS[-1]])
def test_sentiment_vector_gradcheck(options):
    feats = [f.requires_grad_(True) for f in _features([(2, 3, 2, 2), (2, 2, 1, 3)], seed=2)]
    assert torch.autograd.gradcheck(lambda a, b: sentiment_vector([a, b], **options), tuple(feats))


@pytest.mark.parametrize("options", OPTION_SETS)
def test_zero_features_give_a_finite_zero_vector(options):
    feats = [torch.zeros(2, 3, 4, 4, requires_grad=True), torch.zeros(2, 2, 2, 2)]
    v = sentiment_vector(feats, **options)
    assert torch.isfinite(v).all()
    assert torch.equal(v, torch.zeros(2, 6 + 3))  # documented: all-zero rows, norm 0
    v.sum().backward()
    assert torch.isfinite(feats[0].grad).all()
    # one zero sample among non-zero ones: only that row is zero
    x = torch.rand(3, 3, 2, 2) + 0.1
    x[1] = 0
    v = sentiment_vector([x], **options)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v.norm(dim=1), torch.tensor([1.0, 0.0, 1.0]))


def test_sentiment_vector_autocast_float32():
    feats = _features([(2, 4, 3, 3), (2, 3, 2, 2)], dtype=torch.float32)
    ref = naive_sentiment_vector(feats).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = sentiment_vector(feats)
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, ref, **TOLERANCES[torch.float32])
    v16 = sentiment_vector([f.half() for f in feats])
    assert v16.dtype == torch.float32
    torch.testing.assert_close(v16, ref, **TOLERANCES[torch.float16])


def test_sentiment_vector_channels_last():
    feats = _features([(2, 4, 3, 5), (2, 3, 2, 2)], dtype=torch.float32)
    cl = [f.to(memory_format=torch.channels_last) for f in feats]
    torch.testing.assert_close(sentiment_vector(cl), sentiment_vector(feats))


def test_triu_index_cache_survives_inference_mode():
    # The cached index is built under inference_mode first, then used where autograd saves it.
    _cached_layout.cache_clear()
    x = torch.rand(2, 7, 3, 3)
    with torch.inference_mode():
        v0 = sentiment_vector([x])
    xr = x.clone().requires_grad_(True)
    v = sentiment_vector([xr])
    v.sum().backward()
    torch.testing.assert_close(v.detach(), v0)
    assert xr.grad is not None and torch.isfinite(xr.grad).all()
    assert _cached_layout.cache_info().hits >= 1


def test_sentiment_vector_torch_compile():
    # fullgraph=True: no graph break (checks, cached indices, autocast region all trace).
    # aot_eager keeps the test fast; inductor compiles the same graph (checked by the benchmark
    # script and by hand: its C++ cold start costs ~20 s on two loaded cores).
    feats = _features([(2, 4, 3, 3), (2, 3, 2, 2)], dtype=torch.float32)
    compiled = torch.compile(
        lambda a, b: sentiment_vector([a, b], normalize_size=True, power_norm=True),
        fullgraph=True,
        backend="aot_eager",
    )
    torch.testing.assert_close(
        compiled(*feats), sentiment_vector(feats, normalize_size=True, power_norm=True)
    )


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "at least one feature map"),
        (torch.zeros(2, 3, 4, 4), r"list .* got Tensor of shape \(2, 3, 4, 4\)"),
        ([torch.zeros(2, 3, 4)], r"features\[0\] must have shape \(B, C, H, W\)"),
        ([torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4)], r"features\[1\] has 3"),
        ([torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.int32)], "floating"),
        (
            [torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.float64)],
            r"one dtype: features\[0\] is torch.float32, features\[1\] is torch.float64",
        ),
    ],
)
def test_sentiment_vector_bad_input(bad, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        sentiment_vector(bad)


@pytest.mark.parametrize("eps", [0, 0.0, -1e-12, float("nan"), float("inf"), "1e-12", None, True])
def test_sentiment_vector_bad_eps(eps):
    with pytest.raises(sm.SentimentMetricError, match="eps must be a finite float > 0"):
        sentiment_vector([torch.rand(2, 3, 4, 4)], eps=eps)


def test_half_and_float32_maps_mix():
    # float16/bfloat16 maps are computed in float32, so they may meet float32 maps
    feats = _features([(2, 4, 3, 3), (2, 3, 2, 2)], dtype=torch.float32)
    v = sentiment_vector([feats[0].half(), feats[1]])
    assert v.dtype == torch.float32
    torch.testing.assert_close(
        v, naive_sentiment_vector(feats).float(), **TOLERANCES[torch.float16]
    )


def _reference_vector(features: list[torch.Tensor], eps: float) -> torch.Tensor:
    """The same maths with autograd's own ops (Gram, triangle, F.normalize), for gradients."""
    parts = []
    for x in features:
        f = x.flatten(2)
        g = f @ f.transpose(1, 2)
        r, c = torch.triu_indices(g.shape[1], g.shape[1])
        parts.append(g[:, r, c])
    return torch.nn.functional.normalize(torch.cat(parts, dim=1), dim=1, eps=eps)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 0.0])
def test_gradient_equals_autograd_of_the_formula_also_below_the_eps_floor(scale):
    # scale 1e-3 with eps 1e-4: a row whose norm (~1e-5) is below the floor, where the
    # hand-written backward drops the projection term (F.normalize's gradient there: I / eps)
    g = torch.Generator().manual_seed(5)
    feats = [
        (torch.randn(3, 4, 3, 2, generator=g, dtype=torch.float64) * scale).requires_grad_(True),
        (torch.randn(3, 3, 2, 2, generator=g, dtype=torch.float64) * scale).requires_grad_(True),
    ]
    with torch.no_grad():
        feats[0][1].mul_(10.0)
        feats[1][1].mul_(10.0)  # sample 1 above the floor when scale = 1e-3
    eps = 1e-4
    weights = torch.randn(3, 16, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((sentiment_vector(feats, eps=eps) * weights).sum(), feats)
    ref = torch.autograd.grad((_reference_vector(feats, eps) * weights).sum(), feats)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])
    assert torch.autograd.gradcheck(lambda a, b: sentiment_vector([a, b], eps=eps), tuple(feats))
    assert torch.autograd.gradgradcheck(
        lambda a, b: sentiment_vector([a, b], eps=eps), tuple(feats)
    )


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_batch_sizes_share_nothing_wrong_in_the_index_cache(batch):
    # the gather indices depend on the batch size (cached per size): every size is exact
    feats = _features([(batch, 3, 2, 2), (batch, 3, 1, 3), (batch, 3, 2, 1)], seed=batch)
    torch.testing.assert_close(
        sentiment_vector(feats), naive_sentiment_vector(feats), **TOLERANCES[torch.float64]
    )


@pytest.mark.parametrize("channels", [(3, 3), (3, 2)])
def test_empty_batch(channels):
    feats = [torch.rand(0, c, 3, 2, requires_grad=True) for c in channels]
    v = sentiment_vector(feats)
    assert v.shape == (0, sentiment_vector_size(channels))
    v.sum().backward()
    assert feats[0].grad.shape == feats[0].shape


@pytest.mark.parametrize(
    ("channels", "match"),
    [
        ([-3], r"channels\[0\] must be an int >= 1, got -3"),
        ([4, 0], r"channels\[1\] must be an int >= 1, got 0"),
        ([2.5], r"channels\[0\] must be an int >= 1"),
        ([True], r"channels\[0\] must be an int >= 1"),
        ([], "channels must name at least one layer"),
        (16, "channels must be a sequence"),
        ("16", "channels must be a sequence"),
    ],
)
def test_sentiment_vector_size_refuses(channels, match):
    with pytest.raises(sm.SentimentMetricError, match=match):
        sentiment_vector_size(channels)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_sentiment_vector_non_finite_features_named(bad):
    x = torch.rand(2, 3, 4, 4)
    y = torch.rand(2, 2, 3, 3)
    y[1, 0, 2, 1] = bad
    with pytest.raises(sm.SentimentMetricError, match=r"features\[1\] must be finite"):
        sentiment_vector([x, y])
    out = sentiment_vector([x, y], validate=False)  # unchecked: the NaN goes through
    assert not torch.isfinite(out[1]).all() and torch.isfinite(out[0]).all()


def test_sentiment_vector_overflow_refused():
    x = torch.full((1, 2, 3, 3), 1e30)  # finite, but the Gram products overflow float32
    with pytest.raises(sm.SentimentMetricError, match="features are finite but .* overflow"):
        sentiment_vector([x])
    # float64 holds them: the same maps give a finite unit vector.
    v = sentiment_vector([x.double()])
    torch.testing.assert_close(v.norm(dim=1), torch.ones(1, dtype=torch.float64))


def test_sentiment_vector_norm_overflow_refused():
    # issue 18: finite Gram products whose norm overflows float32 gave all-zero rows (u / inf)
    # that the old check (a sum of the output) passed; the check now reads the norms.
    x = torch.full((1, 2, 3, 3), 3e9)
    assert torch.isfinite(gram_matrix(x)).all()
    with pytest.raises(sm.SentimentMetricError, match="features are finite but .* overflow"):
        sentiment_vector([x])
    assert (sentiment_vector([x], validate=False) == 0).all()  # unchecked: what it gave


@pytest.mark.parametrize("options", [{}, {"layer_norm": True, "power_norm": True}])
def test_validate_read_gives_the_unchecked_values_and_gradients(options):
    # issue 18: with every norm in range the checked path skips the floor and its backward
    # mask; with a floored row (all-zero maps) it floors as the unchecked path does. Both
    # agree with validate=False exactly, first and second order.
    g = torch.Generator().manual_seed(0)
    base = [torch.rand(3, 4, 5, 5, generator=g, dtype=torch.float64) - 0.3 for _ in range(2)]
    floored = [torch.cat([torch.zeros_like(x[:1]), x[1:]]) for x in base]
    for maps in (base, floored):
        maps = [x.clone().requires_grad_(True) for x in maps]
        w = torch.randn(3, 20, generator=g, dtype=torch.float64)
        got = []
        for validate in (True, False):
            v = sentiment_vector(maps, validate=validate, **options)
            (ga, gb) = torch.autograd.grad((v * w).sum(), maps, create_graph=True)
            (gga,) = torch.autograd.grad((ga * gb).sum(), maps[:1])
            got.append((v, ga, gb, gga))
        for a, b in zip(*got):  # (power_norm's second order at a zero row is NaN in both)
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    assert (sentiment_vector(floored)[0] == 0).all()
    assert torch.autograd.gradgradcheck(lambda a, b: sentiment_vector([a, b]), tuple(maps))


def test_sentiment_vector_validate_skipped_while_compiling():
    # fullgraph=True with validate=True (the default): the value read is not traced.
    compiled = torch.compile(lambda a: sentiment_vector([a]), fullgraph=True, backend="aot_eager")
    out = compiled(torch.full((2, 3, 2, 2), float("nan")))
    assert torch.isnan(out).all()
