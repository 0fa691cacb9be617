"""Wheel margins, similarities that cannot be satisfied by collapse, and the partial-swap warning
(issue 13); PML's keywords, ThresholdReducer/DivisorReducer on the fast path (issue 11); one
expression on both paths, checked indices (issue 10); against the float64 oracle."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.distances import (
    CosineSimilarity,
    DotProductSimilarity,
    LpDistance,
    SNRDistance,
)
from pytorch_metric_learning.reducers import (
    AvgNonZeroReducer,
    DivisorReducer,
    MeanReducer,
    MultipleReducers,
    SumReducer,
    ThresholdReducer,
)

import sentiment_metric as sm
from sentiment_metric.functional import mine_ranked_triplets, weighted_distances
from tests.conftest import TOLERANCES
from tests.oracle import NAMES, check_invariants, naive_loss, naive_terms, reduce_terms

TOL = TOLERANCES[torch.float64]


def _batch(b: int = 12, seed: int = 0, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 8, (b,), generator=g)


@pytest.mark.parametrize("wheel_margin", [0.05, 0.3])
@pytest.mark.parametrize("weighting", ["none", "inverse_wheel"])
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
def test_wheel_margin_exhaustive_matches_oracle(
    wheel_margin: float, weighting: str, cosine: bool, skip_level: str
) -> None:
    x, y = _batch(11, 3)
    kw = {"distance": CosineSimilarity()} if cosine else {}
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES,
        weighting=weighting,
        wheel_margin=wheel_margin,
        skip_level=skip_level,
        reducer=MeanReducer(),
        **kw,
    )
    want = naive_loss(
        x, y, weighting=weighting, wheel_margin=wheel_margin, skip_level=skip_level,
        reduction="mean", cosine=cosine,
    )  # fmt: skip
    torch.testing.assert_close(loss_fn(x, y), want, **TOL)


@pytest.mark.parametrize("reduction", ["avg_nonzero", "mean"])
def test_wheel_margin_given_tuples_match_oracle(reduction: str) -> None:
    x, y = _batch(10, 4)
    g = torch.Generator().manual_seed(1)
    a, p, n = (torch.randint(0, 10, (60,), generator=g) for _ in range(3))
    reducer = MeanReducer() if reduction == "mean" else None
    kw = {"reducer": reducer} if reducer is not None else {}
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, wheel_margin=0.25, **kw)
    triplets = list(zip(a.tolist(), p.tolist(), n.tolist()))
    want = naive_loss(x, y, triplets, wheel_margin=0.25, reduction=reduction)
    torch.testing.assert_close(loss_fn(x, y, (a, p, n)), want, **TOL)


def test_wheel_margin_ref_emb_and_gradcheck() -> None:
    x, y = _batch(6, 5)
    r, ry = _batch(7, 6)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, wheel_margin=0.2, weighting="none")
    want = naive_loss(x, y, ref_emb=r, ref_labels=ry, weighting="none", wheel_margin=0.2)
    torch.testing.assert_close(loss_fn(x, y, ref_emb=r, ref_labels=ry), want, **TOL)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, y), (x,))


def test_wheel_margin_is_margin_per_wheel_step() -> None:
    """One anchor, one positive, one relative two steps away: the margin is α1 + 2β."""
    names = list(sm.MIKELS_WHEEL.emotions)  # amusement, contentment, awe, ...
    y = torch.tensor([0, 0, 2])  # anchor + positive (amusement), relative: awe (2 steps)
    dist = torch.zeros(3, 3, dtype=torch.float64)
    rel = sm.MIKELS_WHEEL.relations(names)
    out = sm.functional.constraint_sums(
        dist, y, rel.level, margins=(0.2, 0.1), offset=0.5 * rel.dis.double()
    )
    # anchors 0 and 1 each: [0 - 0 + 0.2 + 0.5 * (3 - 1)]_+ = 1.2
    assert out.relative_sum.item() == pytest.approx(2.4)


def test_wheel_margin_setter_changes_what_is_computed() -> None:
    x, y = _batch(9, 7)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, weighting="none")
    before = loss_fn(x, y)
    loss_fn.wheel_margin = 0.4
    torch.testing.assert_close(
        loss_fn(x, y), naive_loss(x, y, weighting="none", wheel_margin=0.4), **TOL
    )
    assert not torch.allclose(before, loss_fn(x, y))
    assert "wheel_margin=0.4" in repr(loss_fn)
    with pytest.raises(sm.SentimentMetricError, match="wheel_margin"):
        loss_fn.wheel_margin = -1.0
    with pytest.raises(sm.SentimentMetricError, match="wheel_margin"):
        sm.SentimentSemiHardMiner(class_names=NAMES, wheel_margin=float("nan"))


@pytest.mark.parametrize("strategy", ["semihard", "hard"])
def test_miner_band_is_the_loss_hinge_with_wheel_margin(strategy: str) -> None:
    """The semi-hard band is read on the same q (θ·D - β·dis) as the loss's hinge."""
    x, y = _batch(24, 8)
    rel = sm.MIKELS_WHEEL.relations(NAMES)
    xn = torch.nn.functional.normalize(x, dim=1)
    dist = torch.cdist(xn, xn) ** 2
    offset = 0.3 * rel.dis.double()
    theta = 1.0 / rel.dis.double()
    out = mine_ranked_triplets(
        dist, y, level=rel.level, theta=theta, offset=offset, strategy=strategy, per_pair=2,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    q = weighted_distances(dist, y, theta=theta, offset=offset)
    check_invariants(
        out, q, y.tolist(), y.tolist(), strategy=strategy, per_pair=2, margins=(0.2, 0.1),
        inverted=False, exclude_self=True, theta=torch.ones(8, 8, dtype=torch.float64),
        level=rel.level,
    )  # fmt: skip


DISTANCES = {
    "lp2": lambda: LpDistance(power=2),
    "lp2_unnormalised": lambda: LpDistance(power=2, normalize_embeddings=False),
    "lp1": lambda: LpDistance(),
    "cosine": lambda: CosineSimilarity(),
    "dot_normalised": lambda: DotProductSimilarity(),
    "snr": lambda: SNRDistance(),
}


@pytest.mark.parametrize("name", list(DISTANCES))
@pytest.mark.parametrize("wheel_margin", [0.0, 0.2])
def test_collapsed_embeddings_are_never_a_minimum(name: str, wheel_margin: float) -> None:
    """Any PML distance or similarity, with the paper's θ = 1/dis: embeddings collapsed to one
    point (up to 1e-3 noise) give a loss of at least the smallest margin and a gradient."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 16, generator=g, dtype=torch.float64) * 3.0
    x = (base + 1e-3 * torch.randn(32, 16, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.arange(32) % 8
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, distance=DISTANCES[name](), wheel_margin=wheel_margin
    )
    loss = loss_fn(x, y)
    assert loss.item() >= 0.1 * 0.9  # the smaller margin, up to the 1e-3 noise
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_unbounded_similarity_with_non_uniform_theta_is_refused() -> None:
    dot = DotProductSimilarity(normalize_embeddings=False)
    for cls in (sm.SentimentConstraintLoss, sm.SentimentSemiHardMiner):
        with pytest.raises(sm.SentimentMetricError, match="weighting='none'"):
            cls(class_names=NAMES, distance=dot)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, distance=dot, weighting="none")
    x = torch.ones(16, 4, dtype=torch.float64) * 10.0  # collapsed, large norm
    assert loss_fn(x, torch.arange(16) % 8).item() == pytest.approx(0.2 + 0.1)


def test_pml_miner_tuples_warn_once_about_the_polarity_level() -> None:
    x, y = _batch(32, 9)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    tuples = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="all")(x, y)
    with pytest.warns(UserWarning, match="SentimentSemiHardMiner"):
        loss_fn(x, y, tuples)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_fn(x, y, tuples)  # once per instance
    pairs = pml_miners.PairMarginMiner(pos_margin=0.0, neg_margin=4.0)(x, y)
    with warnings.catch_warnings():  # pairs are allowed comparisons: every ranked triplet
        warnings.simplefilter("error")
        sm.SentimentConstraintLoss(class_names=NAMES, collect_stats=True)(x, y, pairs)


def test_sentiment_miner_tuples_do_not_warn() -> None:
    x, y = _batch(32, 10)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sm.SentimentConstraintLoss(class_names=NAMES)(x, y, miner(x, y))
        loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
        loss_fn(x, y, pml_miners.TripletMarginMiner(type_of_triplets="all")(x, y))


# ------------------------------------------------------------------ PML's keywords (issue 11)
@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (sm.SentimentConstraintLoss, {"margin": 0.2}, r"margins=\(α1, α2\)"),
        (sm.SentimentConstraintLoss, {"type_of_triplets": "semihard"}, "strategy="),
        (sm.SentimentConstraintLoss, {"triplets_per_anchor": 5}, "per_pair="),
        (sm.SentimentConstraintLoss, {"swap": True}, "none"),
        (sm.SentimentConstraintLoss, {"smooth_loss": True}, "none"),
        (sm.SentimentConstraintLoss, {"epsilon": 0.1}, "none"),
        (sm.SentimentConstraintLoss, {"pos_margin": 0.0}, "margins="),
        (sm.SentimentConstraintLoss, {"colect_stats": True}, "unexpected keyword.*colect"),
        (sm.SentimentConstraintLoss, {"distance": "cosine"}, "distance must be a PML"),
        (sm.SentimentConstraintLoss, {"reducer": "mean"}, "reducer must be a PML"),
        (sm.SentimentSemiHardMiner, {"margin": 0.2}, r"margins=\(α1, α2\)"),
        (sm.SentimentSemiHardMiner, {"type_of_triplets": "hard"}, "strategy="),
        (sm.SentimentSemiHardMiner, {"epsilon": 0.1}, "none"),
        (sm.SentimentSemiHardMiner, {"triplets_per_anchor": 2}, "per_pair="),
        (sm.SentimentSemiHardMiner, {"reducer": MeanReducer()}, "unexpected keyword"),
        (sm.SentimentSemiHardMiner, {"distance": "cosine"}, "distance must be a PML"),
    ],
)
def test_pml_keywords_name_our_equivalent(cls: type, kwargs: dict, match: str) -> None:
    with pytest.raises(sm.SentimentMetricError, match=match):
        cls(class_names=NAMES, **kwargs)


# ------------------------------------- ThresholdReducer and DivisorReducer, fast path (issue 11)
def _explicit(
    loss_fn: sm.SentimentConstraintLoss, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """The same loss over every ordered (a, c, f) given explicitly (each triplet once)."""
    w = sm.MIKELS_WHEEL
    b = len(y)
    idx = [
        (a, c, f)
        for a in range(b)
        for c in range(b)
        for f in range(b)
        if a not in (c, f) and w.level(NAMES[y[a]], NAMES[y[c]]) < w.level(NAMES[y[a]], NAMES[y[f]])
    ]
    cols = (
        [torch.tensor(v, dtype=torch.long) for v in zip(*idx)]
        if idx
        else [torch.zeros(0, dtype=torch.long)] * 3
    )
    return loss_fn(x, y, tuple(cols))


def _divisor_oracle(x: torch.Tensor, y: torch.Tensor, **kw: object) -> torch.Tensor:
    """Each sub-loss's sum divided by its number of triplets (0 for none)."""
    dist = torch.cdist(torch.nn.functional.normalize(x), torch.nn.functional.normalize(x)) ** 2
    theta = 1.0 / sm.MIKELS_WHEEL.relations(NAMES).dis.double()
    terms = naive_terms(dist, y, None, theta, False, str(kw.get("skip_level", "ignore")), True)
    return reduce_terms(terms, "mean")


@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_reducer_fast_path_matches_oracle_and_explicit(
    skip_level: str, seed: int
) -> None:
    x, y = _batch(10, seed)
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, reducer=ThresholdReducer(low=0.05, high=0.5), skip_level=skip_level
    )
    loss_fn.max_explicit_triplets = 0  # the fast path must not enumerate
    got = loss_fn(x, y)
    torch.testing.assert_close(
        got, naive_loss(x, y, reduction="threshold", skip_level=skip_level), **TOL
    )
    loss_fn.max_explicit_triplets = 1 << 24
    torch.testing.assert_close(got, _explicit(loss_fn, x, y), **TOL)


@pytest.mark.parametrize(
    ("low", "high"), [(None, 0.4), (-1.0, 0.3), (0.1, None), (0.0, 1e9), (-0.5, None), (0.3, 0.31)]
)
def test_threshold_bounds_zeros_and_gradients_match_explicit(
    low: float | None, high: float | None
) -> None:
    x, y = _batch(9, 4)
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, reducer=ThresholdReducer(low=low, high=high)
    )
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast, slow = loss_fn(xa, y), _explicit(loss_fn, xb, y)
    torch.testing.assert_close(fast, slow, **TOL)
    fast.backward()
    slow.backward()
    torch.testing.assert_close(xa.grad, xb.grad, **TOL)


def test_divisor_reducer_on_both_paths() -> None:
    x, y = _batch(10, 5)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=DivisorReducer())
    loss_fn.max_explicit_triplets = 0
    got = loss_fn(x, y)
    torch.testing.assert_close(got, _divisor_oracle(x, y), **TOL)
    loss_fn.max_explicit_triplets = 1 << 24
    torch.testing.assert_close(got, _explicit(loss_fn, x, y), **TOL)


def test_mixed_reducers_per_sub_loss() -> None:
    x, y = _batch(10, 6)
    red = MultipleReducers(
        {"relative_loss": ThresholdReducer(low=0.1), "negative_loss": SumReducer()}
    )
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=red)
    loss_fn.max_explicit_triplets = 0
    got = loss_fn(x, y)
    loss_fn.max_explicit_triplets = 1 << 24
    torch.testing.assert_close(got, _explicit(loss_fn, x, y), **TOL)


# ------------------------------------------------------------ one expression (issue 10, item 2)
def test_unnormalised_large_distances_same_on_both_paths() -> None:
    """Margins below float32's resolution of the distances count on both paths."""
    x = torch.tensor([[0.0], [0.0], [5000.0], [5000.0], [0.0], [5000.0], [0.0], [5000.0]])
    y = torch.tensor([0, 0, 1, 1, 4, 4, 0, 1])
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES,
        distance=LpDistance(power=2, normalize_embeddings=False),
        margins=(1, 0),
        weighting="none",
    )
    fast = loss_fn(x, y)
    assert float(fast) == float(_explicit(loss_fn, x, y)) == 25_000_000.0


@pytest.mark.filterwarnings("ignore:SentimentConstraintLoss got tuples")
@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, 1.0, -1.0, 3.0, 5000.0, -5000.0, 1e-3, 123.25]),
        min_size=4,
        max_size=9,
    ),
    labels=st.lists(st.integers(0, 7), min_size=9, max_size=9),
    margins=st.tuples(st.sampled_from([0.0, 0.2, 1.0, 3.0]), st.sampled_from([0.0, 0.1, 1.0])),
    reduction=st.sampled_from(["avg_nonzero", "mean", "sum"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_unnormalised_exhaustive_equals_explicit(
    values: list[float],
    labels: list[int],
    margins: tuple[float, float],
    reduction: str,
    dtype: torch.dtype,
) -> None:
    b = len(values)
    x = torch.tensor(values, dtype=dtype).view(b, 1).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y = torch.tensor(labels[:b])
    red = {"avg_nonzero": AvgNonZeroReducer, "mean": MeanReducer, "sum": SumReducer}[reduction]
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, distance=LpDistance(power=2, normalize_embeddings=False),
        margins=margins, weighting="none", reducer=red(),
    )  # fmt: skip
    fast, slow = loss_fn(x, y), _explicit(loss_fn, x2, y)
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-6)
    fast.backward()
    slow.backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("triplet", "match"),
    [
        ((-1, 2, 3), "negative index -1"),
        ((0, -16, 3), "negative index"),
        ((0, 2, 10), r"index 10, out of range \[0, 10\)"),
        ((10, 2, 3), "index 10"),
    ],
)
def test_indices_out_of_range_are_refused(triplet: tuple[int, int, int], match: str) -> None:
    x, y = _batch(10, 7)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    with pytest.raises(sm.SentimentMetricError, match=match):
        loss_fn(x, y, tuple(torch.tensor([v]) for v in triplet))
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([-1]))
    with pytest.raises(sm.SentimentMetricError, match=r"indices_tuple\[3\].*negative"):
        loss_fn(x, y, pairs)


def test_small_integer_labels_are_class_indices() -> None:
    x, y = _batch(10, 8)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    want = loss_fn(x, y)
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32):
        torch.testing.assert_close(loss_fn(x, y.to(dt)), want, **TOL)


FUSED_REDUCERS = [AvgNonZeroReducer, MeanReducer, SumReducer, DivisorReducer]


def _fused_and_general(
    loss_fn: sm.SentimentConstraintLoss, x: torch.Tensor, y: torch.Tensor, tup: object
) -> tuple[torch.Tensor, ...]:
    """Value and gradient of the fused path, then of the general one (fusion turned off)."""
    out = []
    for pairs in (loss_fn.max_fused_pairs, 0):
        loss_fn.max_fused_pairs, e = pairs, x.clone().requires_grad_(True)
        value = loss_fn(e, y, tup)
        value.backward()
        out += [value.detach(), e.grad]
    loss_fn.max_fused_pairs = type(loss_fn).max_fused_pairs
    return tuple(out)


@pytest.mark.parametrize("reducer", FUSED_REDUCERS)
@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
@pytest.mark.parametrize("weighting", ["inverse_wheel", "none"])
@pytest.mark.parametrize("given_tuples", [False, True])
def test_fused_path_equals_general_path_and_oracle(
    reducer: type, skip_level: str, weighting: str, given_tuples: bool
) -> None:
    # the default distance and an exact reducer take the fused function (issue 12): same
    # value and gradient as the general path, against the oracle too
    x, y = _batch(14, 21)
    g = torch.Generator().manual_seed(3)
    tup = tuple(torch.randint(0, 14, (60,), generator=g) for _ in range(3))
    kw = {"class_names": NAMES, "skip_level": skip_level, "weighting": weighting}
    loss_fn = sm.SentimentConstraintLoss(**kw, reducer=reducer())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused, g_fused, general, g_general = _fused_and_general(
            loss_fn, x, y, tup if given_tuples else None
        )
    torch.testing.assert_close(fused, general, **TOL)
    torch.testing.assert_close(g_fused, g_general, **TOL)
    red = {AvgNonZeroReducer: "avg_nonzero", SumReducer: "sum"}.get(reducer, "mean")
    trip = list(zip(*(t.tolist() for t in tup))) if given_tuples else None
    want = naive_loss(x, y, trip, skip_level=skip_level, weighting=weighting, reduction=red)
    torch.testing.assert_close(fused, want, **TOL)


def test_fused_path_float32_counts_the_same_triplets_and_tiny_rows() -> None:
    # float32: the same distances and hinge decisions as the general path; a row below
    # normalize's eps (no projection in its gradient) and a zero row
    x, y = _batch(40, 22, d=16)
    x = x.float()
    x[3], x[7] = 1e-14, 0.0
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    fused, g_fused, general, g_general = _fused_and_general(loss_fn, x, y, None)
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, general, rtol=0, atol=0)
    torch.testing.assert_close(g_fused, g_general, **TOLERANCES[torch.float32])


def test_fused_path_cache_follows_margins_and_buffers() -> None:
    x, y = _batch(10, 23)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    first = loss_fn(x, y)
    loss_fn.margins = (0.5, 0.3)
    torch.testing.assert_close(loss_fn(x, y), naive_loss(x, y, margins=(0.5, 0.3)), **TOL)
    loss_fn.margins = (0.2, 0.1)
    loss_fn.theta.mul_(2.0)  # an in-place change of the weights rebuilds the table
    want = naive_loss(x, y, weighting=loss_fn.theta.clone())
    torch.testing.assert_close(loss_fn(x, y), want, **TOL)
    loss_fn.theta.div_(2.0)
    torch.testing.assert_close(loss_fn(x, y), first, rtol=0, atol=0)
