"""Wheel margins, similarities that cannot be satisfied by collapse, and the partial-swap warning
(issue 13), against the float64 oracle."""

from __future__ import annotations

import warnings

import pytest
import torch
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.distances import (
    CosineSimilarity,
    DotProductSimilarity,
    LpDistance,
    SNRDistance,
)
from pytorch_metric_learning.reducers import MeanReducer

import sentiment_metric as sm
from sentiment_metric.functional import mine_ranked_triplets, weighted_distances
from tests.conftest import TOLERANCES
from tests.oracle import NAMES, check_invariants, naive_loss

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
    with pytest.warns(UserWarning, match="efficient=False"):
        sm.SentimentConstraintLoss(class_names=NAMES)(x, y, pairs)


def test_sentiment_miner_tuples_do_not_warn() -> None:
    x, y = _batch(32, 10)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sm.SentimentConstraintLoss(class_names=NAMES)(x, y, miner(x, y))
        loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
        loss_fn(x, y, pml_miners.TripletMarginMiner(type_of_triplets="all")(x, y))
