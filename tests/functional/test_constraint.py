"""Tests of functional/constraint.py against naive float64 loops written from the formula."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
import sentiment_metric.functional.constraint as fc
from sentiment_metric._checks import MAX_MAGNITUDE
from sentiment_metric.functional import (
    all_ranked_triplets,
    constraint_sums,
    level_masks,
    pair_levels,
    rank_triplets,
    sentiment_constraint_loss,
    triplet_constraint_losses,
    weighted_distances,
)
from tests.conftest import TOLERANCES
from tests.oracle import naive_terms, reduce_terms

REL = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
LEVEL = REL.level
A1, A2 = 0.2, 0.1


def _dist(x: torch.Tensor, ref: torch.Tensor | None = None, inverted: bool = False) -> torch.Tensor:
    xn = torch.nn.functional.normalize(x)
    rn = xn if ref is None else torch.nn.functional.normalize(ref)
    return xn @ rn.T if inverted else torch.cdist(xn, rn) ** 2


def _batch(b: int, seed: int, d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(
        0, 8, (b,), generator=g
    )


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
@pytest.mark.parametrize("weighting", ["inverse_wheel", "none", "tensor"])
def test_sums_match_naive_loop(inverted: bool, skip_level: str, weighting: str) -> None:
    x, y = _batch(11, 1)
    if weighting == "tensor":
        theta = torch.rand(8, 8, generator=torch.Generator().manual_seed(2)) + 0.5
    else:
        theta = REL.weights(weighting)
    dist = _dist(x, inverted=inverted)
    s = constraint_sums(
        dist, y, LEVEL, theta=theta, inverted=inverted, skip_level=skip_level, margins=(A1, A2)
    )
    terms = naive_terms(dist, y, None, theta, inverted, skip_level, exclude_self=True)
    for slot, (sm_, n, nz) in enumerate(
        [
            (s.relative_sum, s.relative_count, s.relative_nonzero),
            (s.negative_sum, s.negative_count, s.negative_nonzero),
        ]
    ):
        vals = [v for k, v in terms if k == slot]
        assert n.item() == len(vals)
        assert nz.item() == sum(int(v > 0) for v in vals)
        torch.testing.assert_close(sm_, torch.stack(vals).sum(), **TOLERANCES[torch.float64])
    for reduction in ("mean", "avg_nonzero", "sum"):
        got = sentiment_constraint_loss(
            dist,
            y,
            LEVEL,
            theta=theta,
            inverted=inverted,
            skip_level=skip_level,
            reduction=reduction,
        )
        torch.testing.assert_close(got, reduce_terms(terms, reduction), **TOLERANCES[torch.float64])


def test_gradient_matches_autograd_of_naive_loop() -> None:
    x, y = _batch(10, 3)
    x.requires_grad_(True)
    theta = REL.weights("inverse_wheel").double()
    s = constraint_sums(_dist(x), y, LEVEL, theta=theta, skip_level="sum_margins")
    g = torch.autograd.grad(s.relative_sum + 3 * s.negative_sum, x)[0]
    terms = naive_terms(_dist(x), y, None, theta, False, "sum_margins", True)
    ref = sum(v * (1 if k == 0 else 3) for k, v in terms)
    g_ref = torch.autograd.grad(ref, x)[0]
    assert g.abs().sum() > 0
    torch.testing.assert_close(g, g_ref, **TOLERANCES[torch.float64])


def test_ref_labels_and_self_index_match_naive() -> None:
    x, y = _batch(6, 4)
    r, ry = _batch(9, 5)
    theta = REL.weights("inverse_wheel").double()
    dist = _dist(x, r)
    s = constraint_sums(dist, y, LEVEL, ref_labels=ry, theta=theta)
    terms = naive_terms(dist, y, ry, theta, False, "ignore", exclude_self=False)
    assert s.relative_count + s.negative_count == len(terms)
    torch.testing.assert_close(
        s.relative_sum + s.negative_sum, sum(v for _, v in terms), **TOLERANCES[torch.float64]
    )
    # the batch given again as ref with explicit self_index == the default self-exclusion
    d2 = _dist(x)
    a = constraint_sums(d2, y, LEVEL, theta=theta)
    b = constraint_sums(d2, y, LEVEL, ref_labels=y, theta=theta, self_index=torch.arange(6))
    assert torch.equal(torch.stack(list(a)), torch.stack(list(b)))


def test_gradcheck() -> None:
    x, y = _batch(7, 6, d=3)
    x.requires_grad_(True)
    theta = REL.weights("inverse_wheel").double()

    def f(e: torch.Tensor) -> torch.Tensor:
        s = constraint_sums(_dist(e), y, LEVEL, theta=theta, skip_level="sum_margins")
        return s.relative_sum + 2 * s.negative_sum

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_triplet_losses_and_all_ranked_triplets_match_exhaustive() -> None:
    x, y = _batch(9, 7)
    theta = REL.weights("inverse_wheel").double()
    for inverted in (False, True):
        dist = _dist(x, inverted=inverted)
        t = all_ranked_triplets(y, LEVEL, include_skip_level=True)
        kinds = set(zip(t.closer_level.tolist(), t.farther_level.tolist()))
        assert kinds <= {(0, 1), (1, 2), (0, 2)}
        assert not bool((t.anchor == t.closer).any() | (t.anchor == t.farther).any())
        margin = torch.tensor(
            [
                {(0, 1): A1, (1, 2): A2, (0, 2): A1 + A2}[k]
                for k in zip(t.closer_level.tolist(), t.farther_level.tolist())
            ],
            dtype=torch.float64,
        )
        losses = triplet_constraint_losses(
            dist, y, t.anchor, t.closer, t.farther, margin, theta=theta, inverted=inverted
        )
        s = constraint_sums(
            dist, y, LEVEL, theta=theta, inverted=inverted, skip_level="sum_margins"
        )
        torch.testing.assert_close(
            losses.sum(), s.relative_sum + s.negative_sum, **TOLERANCES[torch.float64]
        )
        assert len(losses) == int(s.relative_count + s.negative_count)


def test_rank_triplets_swaps_by_level() -> None:
    y = torch.tensor([0, 0, 1, 4])  # amusement, amusement, contentment, fear
    t = rank_triplets(
        y, LEVEL, torch.tensor([0, 0, 0]), torch.tensor([2, 1, 3]), torch.tensor([1, 3, 2])
    )
    assert t.closer.tolist() == [1, 1, 2]
    assert t.farther.tolist() == [2, 3, 3]
    assert t.swapped.tolist() == [True, False, True]
    assert t.closer_level.tolist() == [0, 0, 1]
    assert t.farther_level.tolist() == [1, 2, 2]


def test_pair_levels_and_masks() -> None:
    y = torch.tensor([0, 0, 1, 4])
    lev = pair_levels(y, LEVEL)
    assert lev.dtype == torch.int8
    assert lev.diagonal().tolist() == [-1, -1, -1, -1]
    same, rel, neg = level_masks(y, LEVEL)
    assert same.tolist()[0] == [False, True, False, False]
    assert rel.tolist()[0] == [False, False, True, False]
    assert neg.tolist()[0] == [False, False, False, True]
    assert not bool((same & rel).any() | (rel & neg).any())
    # a separate reference set: no self-pairs unless named
    assert (pair_levels(y, LEVEL, ref_labels=y) >= 0).all()
    lev2 = pair_levels(y, LEVEL, ref_labels=y, self_index=torch.tensor([1, -1, 2, 3]))
    assert lev2[0, 1] == -1 and lev2[1].min() >= 0


def test_weighted_distances_orientation() -> None:
    d = torch.tensor([[0.3, 0.8]])
    y, ry = torch.tensor([0]), torch.tensor([0, 1])
    theta = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    assert weighted_distances(d, y, ry, theta).tolist() == [
        [pytest.approx(0.3), pytest.approx(0.4)]
    ]
    # a similarity: the weight multiplies the dissimilarity 1 - S
    assert weighted_distances(d, y, ry, theta, inverted=True).tolist() == [
        [pytest.approx(0.7), pytest.approx(0.1)]
    ]


def test_one_class_batch_is_zero_with_zero_grad() -> None:
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    loss = sentiment_constraint_loss(_dist(x), torch.full((6,), 3), LEVEL, reduction="mean")
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))


def test_ties_contribute_zero() -> None:
    # equal weighted distances with a zero margin: [0]_+ = 0, no gradient
    dist = torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1])
    s = constraint_sums(dist, y, LEVEL, margins=(0.0, 0.0))
    assert s.relative_sum.item() == 0.0 and s.relative_nonzero.item() == 0
    assert s.relative_count.item() == 2
    s.relative_sum.backward()
    assert torch.equal(dist.grad, torch.zeros_like(dist))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs(dtype: torch.dtype) -> None:
    x, y = _batch(16, 8)
    d64 = _dist(x)
    ref = sentiment_constraint_loss(d64, y, LEVEL, reduction="mean")
    d = d64.to(dtype).requires_grad_(True)
    loss = sentiment_constraint_loss(d, y, LEVEL, reduction="mean")
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref, **TOLERANCES[dtype])
    loss.backward()
    assert d.grad is not None and d.grad.dtype == dtype and torch.isfinite(d.grad.float()).all()


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 14),
    kind=st.sampled_from(["random", "one_class", "one_per_class", "two_classes"]),
    seed=st.integers(0, 2**16),
    inverted=st.booleans(),
)
def test_invariants(b: int, kind: str, seed: int, inverted: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 4, generator=g, dtype=torch.float64)
    if kind == "random":
        y = torch.randint(0, 8, (b,), generator=g)
    elif kind == "one_class":
        y = torch.full((b,), int(torch.randint(0, 8, (1,), generator=g)))
    elif kind == "one_per_class":
        y = torch.randperm(8, generator=g)[: min(b, 8)].repeat(b)[:b]
    else:
        y = torch.tensor([0, 5]).repeat(b)[:b]
    theta = REL.weights("inverse_wheel").double()
    perm = torch.randperm(b, generator=g)
    for reduction in ("mean", "avg_nonzero", "sum"):
        loss = sentiment_constraint_loss(
            _dist(x, inverted=inverted),
            y,
            LEVEL,
            theta=theta,
            inverted=inverted,
            reduction=reduction,
        )
        lp = sentiment_constraint_loss(
            _dist(x[perm], inverted=inverted),
            y[perm],
            LEVEL,
            theta=theta,
            inverted=inverted,
            reduction=reduction,
        )
        assert torch.isfinite(loss) and loss >= 0
        torch.testing.assert_close(loss, lp, rtol=1e-9, atol=1e-12)
        if kind == "one_class":
            assert loss == 0


def test_bad_inputs() -> None:
    d = torch.rand(4, 4)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(sm.SentimentMetricError, match="square"):
        constraint_sums(torch.rand(4, 5), y, LEVEL)
    with pytest.raises(sm.SentimentMetricError, match="reduction"):
        sentiment_constraint_loss(d, y, LEVEL, reduction="max")
    with pytest.raises(sm.SentimentMetricError, match="'ignore', 'sum_margins'"):
        constraint_sums(d, y, LEVEL, skip_level="drop")
    with pytest.raises(sm.SentimentMetricError, match=r"\[0, 7\]"):
        constraint_sums(d, torch.tensor([0, 1, 2, 8]), LEVEL)
    with pytest.raises(sm.SentimentMetricError, match="margins"):
        constraint_sums(d, y, LEVEL, margins=(0.1, -0.1))
    with pytest.raises(sm.SentimentMetricError, match="ref_labels"):
        constraint_sums(torch.rand(4, 3), y, LEVEL, ref_labels=torch.tensor([0, 1]))
    with pytest.raises(sm.SentimentMetricError, match="max_triplets"):
        all_ranked_triplets(y.repeat(3), LEVEL, max_triplets=10)


# ------------------------------------------------ bad indices and shapes (issue 10, item 12)
_D = torch.rand(4, 4, dtype=torch.float64)
_Y = torch.tensor([0, 1, 2, 3])
_I = torch.tensor([0, 1])
_E = sm.SentimentMetricError


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rank_triplets(_Y, LEVEL, _I, _I, torch.tensor([1, 9])), r"^y holds the index 9"),
        (lambda: rank_triplets(_Y, LEVEL, torch.tensor([-1, 0]), _I, _I), "anchors.*negative"),
        (lambda: rank_triplets(_Y, LEVEL, _I, _I, _I[:1]), "y has 1 entries"),
        (lambda: rank_triplets(_Y, LEVEL, _I.float(), _I, _I), "anchors must be a 1-D integer"),
        (lambda: rank_triplets(_Y, LEVEL.float(), _I, _I, _I), "level must be a square"),
        (lambda: rank_triplets(_Y + 8, LEVEL, _I, _I, _I), "labels"),
        (lambda: triplet_constraint_losses(_D, _Y, _I, _I, torch.tensor([0, 4]), 0.1), "farthers"),
        (
            lambda: triplet_constraint_losses(_D, _Y, _I, torch.tensor([-4, 0]), _I, 0.1),
            "closers.*negative",
        ),
        (lambda: triplet_constraint_losses(_D[0], _Y, _I, _I, _I, 0.1), "dist must have shape"),
        (lambda: triplet_constraint_losses(_D, _Y, _I, _I, _I, torch.ones(3)), "margins"),
        (
            lambda: triplet_constraint_losses(
                _D, _Y, _I, _I, _I, 0.1, theta=torch.ones(8, 8)[:, :3]
            ),
            "theta",
        ),
        (lambda: pair_levels(_Y, LEVEL[:3]), "level must be a square"),
        (lambda: pair_levels(_Y.view(2, 2), LEVEL), "labels must be 1-D"),
        (lambda: pair_levels(_Y, LEVEL, self_index=_I), "self_index has 2 entries"),
        (
            lambda: pair_levels(_Y, LEVEL, self_index=_I.float().repeat(2)),
            "self_index must hold integer",
        ),
        (lambda: level_masks(_Y + 8, LEVEL), r"labels.*\[0, 7\]"),
        (
            lambda: all_ranked_triplets(_Y, LEVEL, ref_labels=_Y.view(2, 2)),
            "ref_labels must be 1-D",
        ),
        (lambda: weighted_distances(_D[:, :3], _Y), "square"),
        (lambda: weighted_distances(_D, _Y[:3]), "labels has 3 entries"),
        (lambda: weighted_distances(_D, _Y, theta=torch.ones(3, 3)), r"labels.*\[0, 2\]"),
        (
            lambda: weighted_distances(_D, _Y, theta=torch.ones(8, 8), offset=torch.ones(7, 7)),
            "offset",
        ),
        (
            lambda: constraint_sums(_D.masked_fill(_D > 0.5, float("nan")), _Y, LEVEL),
            "dist must be finite",
        ),
        (
            lambda: constraint_sums(_D, _Y, LEVEL, theta=torch.full((8, 8), float("inf"))),
            "theta must be finite",
        ),
        (
            lambda: constraint_sums(_D, _Y, LEVEL, thresholds=((0.5, 0.1), (None, None))),
            "low < high",
        ),
        (lambda: sentiment_constraint_loss(_D, _Y, LEVEL, margins=(0.1, -1.0)), "margins"),
        (lambda: sentiment_constraint_loss(_D.long(), _Y, LEVEL), "floating-point"),
    ],
)
def test_functional_bad_inputs_name_the_argument(call: object, match: str) -> None:
    with pytest.raises(_E, match=match):
        call()  # type: ignore[operator]


def test_functional_validate_false_reads_no_values() -> None:
    bad = _D.masked_fill(_D > 0.5, float("nan"))
    s = constraint_sums(bad, _Y, LEVEL, validate=False)
    assert s.relative_count.item() == 0.0
    out = triplet_constraint_losses(_D, _Y, _I, _I, _I, 0.1, validate=False)
    assert out.shape == (2,)


def test_huge_margins_give_a_finite_loss_or_are_refused() -> None:
    x, y = _batch(10, 31)
    top = MAX_MAGNITUDE  # margins up to the limit: a finite loss
    loss = sentiment_constraint_loss(_dist(x.float()), y, LEVEL, margins=(top, top))
    assert torch.isfinite(loss)
    with pytest.raises(sm.SentimentMetricError, match=r"margins\[0\] must be at most"):
        sentiment_constraint_loss(_dist(x.float()), y, LEVEL, margins=(1e38, 1e38))


# ------------------------------------------------- weighted_distances: checks only with validate


def _wd_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _batch(16, 3)
    return _dist(x).float(), y


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_weighted_distances_refuses_non_finite_unless_told_not_to(bad: str) -> None:
    d, y = _wd_inputs()
    d[2, 5] = float(bad)
    theta = REL.weights("inverse_wheel")
    with pytest.raises(sm.SentimentMetricError, match="dist must be finite"):
        weighted_distances(d, y, theta=theta)
    out = weighted_distances(d, y, theta=theta, validate=False)  # the hot path reads nothing
    assert not bool(torch.isfinite(out[2, 5]))
    bad_theta = theta.clone()
    bad_theta[0, 1] = float(bad)
    with pytest.raises(sm.SentimentMetricError, match="theta must be finite"):
        weighted_distances(_wd_inputs()[0], y, theta=bad_theta)


def test_weighted_distances_meta_and_theta_of_the_wrong_size_are_named() -> None:
    d, y = _wd_inputs()
    with pytest.raises(sm.SentimentMetricError, match="dist is on the meta device"):
        weighted_distances(torch.empty(16, 16, device="meta"), y, theta=REL.weights())
    with pytest.raises(sm.SentimentMetricError, match=r"read from theta, of shape \(3, 3\)"):
        weighted_distances(d, y, theta=torch.ones(3, 3))
    with pytest.raises(sm.SentimentMetricError, match=r"ref_labels .*read from offset"):
        weighted_distances(d, y % 3, y, offset=torch.ones(3, 3))
    with pytest.raises(sm.SentimentMetricError, match="read from theta"):
        triplet_constraint_losses(
            d, y, y[:1] * 0, y[:1] * 0 + 1, y[:1] * 0 + 2, 0.1, theta=torch.ones(3, 3)
        )


def test_library_callers_never_validate_in_weighted_distances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loss and the miner check their inputs once: weighted_distances reads no value."""

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("weighted_distances validated on the hot path")

    monkeypatch.setattr(fc, "check_finite", refuse)
    x, y = _batch(32, 4)
    x = x.float()
    loss = sm.SentimentConstraintLoss(relations=REL, wheel_margin=0.1)
    miner = sm.SentimentSemiHardMiner(relations=REL, wheel_margin=0.1, collect_stats=True)
    assert bool(torch.isfinite(loss(x, y, miner(x, y))))
    assert bool(torch.isfinite(loss(x, y)))
    t = all_ranked_triplets(y, LEVEL)
    d = _dist(x)
    triplet_constraint_losses(d, y, t.anchor, t.closer, t.farther, 0.1, theta=REL.weights())
    with pytest.raises(AssertionError, match="hot path"):  # the switch is what is patched
        weighted_distances(d, y, theta=REL.weights())


def test_fused_functions_gradcheck() -> None:
    # the closed-form gradients of the fused exhaustive and given-triplet functions (float64)
    from sentiment_metric.functional._fused import (
        FusedExhaustive,
        FusedTriplets,
        fused_plane_table,
        pair_signs,
        self_eye,
    )

    g = torch.Generator().manual_seed(5)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7])
    theta = REL.weights("inverse_wheel").double()
    signs, pick = pair_signs(x.device)
    for skip in (False, True):
        table = fused_plane_table(LEVEL, theta, (A1, A2), skip)
        for kinds in (("avg_nonzero", "avg_nonzero"), ("mean", "sum")):
            for uniform in (False, True):
                t = fused_plane_table(LEVEL, torch.ones(8, 8), (A1, A2), skip) if uniform else table
                assert torch.autograd.gradcheck(
                    lambda e, t=t, k=kinds, u=uniform: FusedExhaustive.apply(
                        e, y, t, self_eye(9, e.device), k, u
                    ),
                    (x,),
                )
                a = torch.randint(0, 9, (30,), generator=g)
                xy = torch.randint(0, 9, (2, 30), generator=g)
                assert torch.autograd.gradcheck(
                    lambda e, t=t, k=kinds, u=uniform, a=a, xy=xy: FusedTriplets.apply(
                        e, y, a, xy, t, signs, pick, k, u
                    ),
                    (x,),
                )
