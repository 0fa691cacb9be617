"""Tests of constraint.py, multitask.py and memory.py against the float64 oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.reducers import (
    AvgNonZeroReducer,
    ClassWeightedReducer,
    DoNothingReducer,
    MeanReducer,
    PerAnchorReducer,
    SumReducer,
    ThresholdReducer,
)
from pytorch_metric_learning.regularizers import LpRegularizer
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

import sentiment_metric as sm
from tests.conftest import MIKELS_FI_ORDER, TOLERANCES
from tests.opcount import top_level_aten_ops
from tests.oracle import NAMES, naive_loss

TOL = TOLERANCES[torch.float64]


def _batch(b: int = 10, seed: int = 0, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(
        0, 8, (b,), generator=g
    )


REDUCERS = {
    "avg_nonzero": AvgNonZeroReducer,
    "mean": MeanReducer,
    "sum": SumReducer,
    "threshold": lambda: ThresholdReducer(low=0.05, high=0.5),
}


@pytest.mark.parametrize("reduction", list(REDUCERS))
@pytest.mark.parametrize("cosine", [False, True])
def test_exhaustive_matches_naive(reduction: str, cosine: bool) -> None:
    x, y = _batch(9, 1)
    kw = {"distance": CosineSimilarity()} if cosine else {}
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=REDUCERS[reduction](), **kw)
    got = loss_fn(x, y)
    want = naive_loss(x, y, reduction=reduction, cosine=cosine)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize(
    "weighting", ["inverse_wheel", "none", torch.rand(8, 8, dtype=torch.float64) + 0.5]
)
@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
def test_weightings_and_skip_level_exhaustive(weighting: object, skip_level: str) -> None:
    x, y = _batch(9, 2)
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, weighting=weighting, skip_level=skip_level, reducer=MeanReducer()
    )
    want = naive_loss(x, y, weighting=weighting, skip_level=skip_level, reduction="mean")  # type: ignore[arg-type]
    torch.testing.assert_close(loss_fn(x, y), want, **TOL)


@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
@pytest.mark.parametrize("reduction", ["avg_nonzero", "mean", "sum"])
def test_given_triplets_swapped_and_skip_level(skip_level: str, reduction: str) -> None:
    x, y = _batch(12, 3)
    g = torch.Generator().manual_seed(4)
    a, p, n = (torch.randint(0, 12, (60,), generator=g) for _ in range(3))
    keep = (a != p) & (a != n)
    a, p, n = a[keep], p[keep], n[keep]
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES,
        skip_level=skip_level,
        reducer=REDUCERS[reduction](),
        collect_stats=True,
    )
    got = loss_fn(x, y, (a, p, n))
    trip = list(zip(a.tolist(), p.tolist(), n.tolist()))
    want = naive_loss(x, y, trip, skip_level=skip_level, reduction=reduction)
    torch.testing.assert_close(got, want, **TOL)
    # the stats count every kind of tuple
    w = sm.MIKELS_WHEEL
    lv = [
        sorted((w.level(NAMES[y[i]], NAMES[y[j]]), w.level(NAMES[y[i]], NAMES[y[k]])))
        for i, j, k in trip
    ]
    assert loss_fn.num_relative_triplets == lv.count([0, 1])
    assert loss_fn.num_negative_triplets == lv.count([1, 2])
    assert loss_fn.num_skip_level_triplets == lv.count([0, 2])
    assert loss_fn.num_equal_level_triplets == sum(u == v for u, v in lv)
    assert loss_fn.num_ranked_triplets == lv.count([0, 1]) + lv.count([1, 2])
    assert loss_fn.num_skip_level_triplets > 0 and loss_fn.num_swapped_triplets > 0


def test_swapped_tuple_is_read_by_level() -> None:
    x, y = _batch(10, 5)
    y = torch.tensor([0, 0, 1, 4, 0, 1, 4, 2, 3, 5])
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=SumReducer())
    a, c, f = torch.tensor([0, 2]), torch.tensor([1, 5]), torch.tensor([2, 3])
    torch.testing.assert_close(loss_fn(x, y, (a, c, f)), loss_fn(x, y, (a, f, c)), **TOL)


def test_exhaustive_equals_all_triplets_given() -> None:
    x, y = _batch(10, 6)
    b = len(y)
    idx = [(a, c, f) for a in range(b) for c in range(b) for f in range(b) if a not in (c, f)]
    t = tuple(torch.tensor(v) for v in zip(*idx))
    for skip in ("ignore", "sum_margins"):
        for red in (MeanReducer, AvgNonZeroReducer, SumReducer):
            loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level=skip, reducer=red())
            # t holds each triplet in both orders: the sum doubles, the means do not
            k = 2.0 if red is SumReducer else 1.0
            torch.testing.assert_close(k * loss_fn(x, y), loss_fn(x, y, t), **TOL)


@pytest.mark.parametrize("reduction", ["avg_nonzero", "mean", "sum"])
def test_ref_emb_matches_naive(reduction: str) -> None:
    x, y = _batch(5, 7)
    r, ry = _batch(8, 8)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=REDUCERS[reduction]())
    got = loss_fn(x, y, ref_emb=r, ref_labels=ry)
    want = naive_loss(x, y, ref_emb=r, ref_labels=ry, reduction=reduction)
    torch.testing.assert_close(got, want, **TOL)
    a, c, f = torch.tensor([0, 1, 2]), torch.tensor([0, 3, 5]), torch.tensor([7, 6, 1])
    got = loss_fn(x, y, (a, c, f), ref_emb=r, ref_labels=ry)
    trip = list(zip(a.tolist(), c.tolist(), f.tolist()))
    want = naive_loss(x, y, trip, ref_emb=r, ref_labels=ry, reduction=reduction)
    torch.testing.assert_close(got, want, **TOL)


def _pair_triplets(
    y: torch.Tensor, ry: torch.Tensor, pairs: tuple[torch.Tensor, ...], exclude_self: bool
) -> list[tuple[int, int, int]]:
    """Every (a, c, f) with level(a, c) < level(a, f) whose two pairs are given, by loops."""
    given = set(zip(pairs[0].tolist(), pairs[1].tolist()))
    given |= set(zip(pairs[2].tolist(), pairs[3].tolist()))
    lvl = sm.MIKELS_WHEEL.level
    out = []
    for a in range(len(y)):
        for c in range(len(ry)):
            for f in range(len(ry)):
                if (a, c) not in given or (a, f) not in given:
                    continue
                if exclude_self and a in (c, f):
                    continue
                if lvl(NAMES[y[a]], NAMES[ry[c]]) < lvl(NAMES[y[a]], NAMES[ry[f]]):
                    out.append((a, c, f))
    return out


@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
@pytest.mark.parametrize("reduction", ["avg_nonzero", "mean", "sum"])
def test_four_tuple_is_the_set_of_allowed_pairs(skip_level: str, reduction: str) -> None:
    # every ranked triplet whose two pairs are given (a PML pair miner's subset here),
    # polarity-level triplets included; never read as (a, p, r, n)
    x, y = _batch(12, 9)
    a1, p, a2, n = lmu.get_all_pairs_indices(y)
    g = torch.Generator().manual_seed(1)
    keep_p, keep_n = torch.rand(len(a1), generator=g) < 0.7, torch.rand(len(a2), generator=g) < 0.7
    pairs = (a1[keep_p], p[keep_p], a2[keep_n], n[keep_n])
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, skip_level=skip_level, reducer=REDUCERS[reduction]()
    )
    trip = _pair_triplets(y, y, pairs, exclude_self=True)
    assert any(sm.MIKELS_WHEEL.level(NAMES[y[a]], NAMES[y[c]]) == 1 for a, c, _ in trip)
    want = naive_loss(x, y, trip, skip_level=skip_level, reduction=reduction)
    torch.testing.assert_close(loss_fn(x, y, pairs), want, **TOL)
    # the explicit path (a reducer without exact sums) uses the same triplets
    out = sm.SentimentConstraintLoss(
        class_names=NAMES, skip_level=skip_level, reducer=DoNothingReducer()
    )(x, y, pairs)
    got = sum(v["losses"].sum() for v in out.values() if isinstance(v["losses"], torch.Tensor))
    want_sum = naive_loss(x, y, trip, skip_level=skip_level, reduction="sum")
    torch.testing.assert_close(got, want_sum, **TOL)


@pytest.mark.parametrize("reduction", ["avg_nonzero", "mean"])
def test_efficient_distributed_pairs_give_every_ranked_triplet_across_ranks(
    reduction: str,
) -> None:
    # DistributedLossWrapper(efficient=True) in a world of 2, simulated: the local batch
    # against the gathered one (local first), all pairs minus self as PML's get_indices_tuple
    # builds them: the exhaustive loss over local anchors x gathered refs, minus self-pairs
    x, y = _batch(9, 11)
    x2, y2 = _batch(9, 12)
    ref, ry = torch.cat([x, x2]), torch.cat([y, y2])
    b = len(y)
    pairs = lmu.get_all_pairs_indices(y, ry)
    pairs = lmu.remove_self_comparisons(pairs, torch.arange(b), len(ry))
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=REDUCERS[reduction]())
    got = loss_fn(x, y, pairs, ref, ry)
    exhaustive = loss_fn(x, y, ref_emb=ref, ref_labels=ry, self_index=torch.arange(b))
    torch.testing.assert_close(got, exhaustive, rtol=0, atol=0)
    trip = [(a, c, f) for a, c, f in naive_all_ref(y, ry) if c != a and f != a]
    want = naive_loss(x, y, trip, ref_emb=ref, ref_labels=ry, reduction=reduction)
    torch.testing.assert_close(got, want, **TOL)
    assert trip == _pair_triplets(y, ry, pairs, exclude_self=False)


def naive_all_ref(y: torch.Tensor, ry: torch.Tensor) -> list[tuple[int, int, int]]:
    """Every (a, c, f) with level(a, c) < level(a, f), by loops (no self-exclusion)."""
    lvl = sm.MIKELS_WHEEL.level
    return [
        (a, c, f)
        for a in range(len(y))
        for c in range(len(ry))
        for f in range(len(ry))
        if lvl(NAMES[y[a]], NAMES[ry[c]]) < lvl(NAMES[y[a]], NAMES[ry[f]])
    ]


def test_do_nothing_reducer_gives_per_triplet_losses() -> None:
    x, y = _batch(8, 10)
    out = sm.SentimentConstraintLoss(class_names=NAMES, reducer=DoNothingReducer())(x, y)
    assert set(out) == {"relative_loss", "negative_loss"}
    for v in out.values():
        if isinstance(v["losses"], torch.Tensor):
            assert v["reduction_type"] == "triplet" and len(v["indices"]) == 3
    total = sum(v["losses"].sum() for v in out.values() if isinstance(v["losses"], torch.Tensor))
    torch.testing.assert_close(total, naive_loss(x, y, reduction="sum"), **TOL)


def test_embedding_regularizer_is_added() -> None:
    x, y = _batch(8, 11)
    plain = sm.SentimentConstraintLoss(class_names=NAMES)(x, y)
    reg = sm.SentimentConstraintLoss(
        class_names=NAMES, embedding_regularizer=LpRegularizer(), embedding_reg_weight=0.5
    )(x, y)
    torch.testing.assert_close(reg - plain, 0.5 * x.norm(dim=1).mean(), **TOL)


@pytest.mark.parametrize("given_tuple", [False, True])
def test_gradcheck(given_tuple: bool) -> None:
    x, y = _batch(7, 12, d=3)
    x.requires_grad_(True)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
    t = None
    if given_tuple:
        t = (torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 0, 1]))
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, y, t), (x,), eps=1e-6, atol=1e-5)


def test_one_class_batch_is_zero_connected_and_zero_grad() -> None:
    x = torch.randn(6, 4, requires_grad=True)
    for t in (None, (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))):
        loss = sm.SentimentConstraintLoss(class_names=NAMES)(x, torch.full((6,), 2), t)
        assert loss.item() == 0.0 and loss.requires_grad
        (g,) = torch.autograd.grad(loss, x)
        assert torch.equal(g, torch.zeros_like(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs(dtype: torch.dtype) -> None:
    x, y = _batch(16, 13)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())
    ref = loss_fn(x, y)
    xh = x.to(dtype).requires_grad_(True)
    loss = loss_fn(xh, y)
    assert loss.dtype == dtype and torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref, **TOLERANCES[dtype])
    loss.backward()
    assert xh.grad is not None and torch.isfinite(xh.grad.float()).all()


def test_mikels_facts_via_the_loss_fi_alphabetical_order() -> None:
    # FI's folders sort alphabetically: label 1 is anger, label 0 amusement (neighbours on the
    # wheel, opposite polarity), label 5 excitement, label 6 fear (neighbours, opposite).
    w = sm.MIKELS_WHEEL
    assert w.steps("amusement", "anger") == 1 and w.steps("excitement", "fear") == 1
    assert {w.dis(a, b) for a in NAMES for b in NAMES} == {1, 2, 3, 4, 5}
    fi = sm.SentimentConstraintLoss(class_names=MIKELS_FI_ORDER)
    assert int(fi.level[0, 1]) == 2 and int(fi.level[5, 6]) == 2  # amusement/anger, excitement/fear
    assert int(fi.level[0, 3]) == 1  # amusement/contentment: same polarity
    assert fi.theta[0, 1].item() == pytest.approx(1 / 2)  # dis(amusement, anger) = 2
    assert fi.theta[0, 7].item() == pytest.approx(1 / 4)  # dis(amusement, sadness) = 1 + 3
    # the same batch, labelled in FI's order or the wheel's order, gives the same loss
    x, y_fi = _batch(16, 14)
    y_wheel = torch.tensor([NAMES.index(MIKELS_FI_ORDER[i]) for i in y_fi])
    wheel_loss = sm.SentimentConstraintLoss(class_names=NAMES)(x, y_wheel)
    torch.testing.assert_close(fi(x, y_fi), wheel_loss, **TOL)
    torch.testing.assert_close(fi(x, y_fi), naive_loss(x, y_fi, class_names=MIKELS_FI_ORDER), **TOL)


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 12),
    kind=st.sampled_from(["random", "one_class", "one_per_class", "absent"]),
    seed=st.integers(0, 2**16),
)
def test_invariants(b: int, kind: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 4, generator=g, dtype=torch.float64)
    if kind == "random":
        y = torch.randint(0, 8, (b,), generator=g)
    elif kind == "one_class":
        y = torch.full((b,), int(torch.randint(0, 8, (1,), generator=g)))
    elif kind == "one_per_class":
        y = torch.randperm(8, generator=g).repeat(2)[:b]
    else:  # only a few classes present
        y = torch.tensor([1, 6, 2]).repeat(b)[:b]
    perm = torch.randperm(b, generator=g)
    for red in (AvgNonZeroReducer(), MeanReducer()):
        loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=red)
        loss, lp = loss_fn(x, y), loss_fn(x[perm], y[perm])
        assert torch.isfinite(loss) and loss >= 0
        torch.testing.assert_close(loss, lp, rtol=1e-9, atol=1e-12)


def test_repr_and_recordables() -> None:
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, margins=(0.3, 0.15))
    r = repr(loss_fn)
    assert "margins=(0.3, 0.15)" in r and "weighting='inverse_wheel'" in r
    assert loss_fn.relative_margin == 0.3 and loss_fn.negative_margin == 0.15
    assert isinstance(loss_fn.distance, LpDistance) and loss_fn.distance.power == 2


# ---------------------------------------------------------------- bad input
def test_bad_inputs() -> None:
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    x, y = _batch(6, 15)
    E = sm.SentimentMetricError
    with pytest.raises(E, match="1-D"):
        loss_fn(x, y.view(2, 3))
    with pytest.raises(E, match=r"\[0, 7\]"):
        loss_fn(x, torch.tensor([0, 1, 2, 3, 4, 8]))
    with pytest.raises(E, match="integer"):
        loss_fn(x, y.float() + 0.5)
    with pytest.raises(E, match="6 rows"):
        loss_fn(x, y[:5])
    with pytest.raises(E, match="NaN"):
        loss_fn(torch.where(torch.arange(6)[:, None] == 2, float("nan"), x), y)
    with pytest.raises(E, match="Inf"):
        loss_fn(torch.where(torch.arange(6)[:, None] == 2, float("inf"), x), y)
    with pytest.raises(E, match="labels are required"):
        loss_fn(x)
    with pytest.raises(E, match="ref_labels"):
        loss_fn(x, y, ref_emb=x[:3])
    with pytest.raises(E, match="ref_emb has 2 rows|ref_labels has"):
        loss_fn(x, y, ref_emb=x[:3], ref_labels=y[:2])
    with pytest.raises(E, match="3-tuple"):
        loss_fn(x, y, (y, y))
    with pytest.raises(E, match="mismatched"):
        loss_fn(x, y, (y, y, y[:2]))
    with pytest.raises(E, match="integer index"):
        loss_fn(x, y, (y.float(), y, y))
    # validate=False skips the value-reading checks only
    sm.SentimentConstraintLoss(class_names=NAMES, validate=False)(
        torch.where(torch.arange(6)[:, None] == 2, float("nan"), x), y
    )


def test_bad_construction() -> None:
    E = sm.SentimentMetricError
    with pytest.raises(E, match="amusement") as err:
        sm.SentimentConstraintLoss(class_names=["amusement", "joy"])
    assert "sad" in str(err.value)  # lists the aliases too
    with pytest.raises(E, match="class_names"):
        sm.SentimentConstraintLoss()
    with pytest.raises(E, match="margins"):
        sm.SentimentConstraintLoss(class_names=NAMES, margins=(0.2, -0.1))
    with pytest.raises(E, match="2 values"):
        sm.SentimentConstraintLoss(class_names=NAMES, margins=(0.2,))
    with pytest.raises(E, match="'inverse_wheel', 'none'"):
        sm.SentimentConstraintLoss(class_names=NAMES, weighting="wheel")
    with pytest.raises(E, match=r"\(8, 8\)"):
        sm.SentimentConstraintLoss(class_names=NAMES, weighting=torch.ones(3, 3))
    with pytest.raises(E, match="'ignore', 'sum_margins'"):
        sm.SentimentConstraintLoss(class_names=NAMES, skip_level="drop")
    with pytest.raises(E, match="PerAnchorReducer"):
        sm.SentimentConstraintLoss(class_names=NAMES, reducer=PerAnchorReducer())


def test_fallback_refuses_too_many_triplets() -> None:
    loss_fn = sm.SentimentConstraintLoss(
        class_names=NAMES, reducer=ClassWeightedReducer(torch.ones(8))
    )
    loss_fn.max_explicit_triplets = 100
    x, y = _batch(12, 16)
    with pytest.raises(
        sm.SentimentMetricError, match="MeanReducer, AvgNonZeroReducer or SumReducer"
    ):
        loss_fn(x, y)


# ---------------------------------------------------------------- MultiTaskSentimentLoss
def test_multitask_formula_and_last_losses() -> None:
    x, y = _batch(12, 17)
    logits = torch.randn(12, 8, dtype=torch.float64, requires_grad=True)
    mt = sm.MultiTaskSentimentLoss(omega=0.3, class_names=NAMES)
    total = mt(x, logits, y)
    ce = torch.nn.functional.cross_entropy(logits, y)
    metric = naive_loss(x, y)
    torch.testing.assert_close(total, 0.7 * ce + 0.3 * metric, **TOL)
    assert set(mt.last_losses) == {"classification", "metric", "total"}
    assert all(not v.requires_grad for v in mt.last_losses.values())
    torch.testing.assert_close(mt.last_losses["metric"], metric, **TOL)
    total.backward()
    assert logits.grad is not None


def test_multitask_with_miner_and_custom_loss() -> None:
    from pytorch_metric_learning.miners import TripletMarginMiner

    x, y = _batch(12, 18)
    logits = torch.randn(12, 8, dtype=torch.float64)
    metric = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
    miner = TripletMarginMiner(margin=0.2, type_of_triplets="all")
    mt = sm.MultiTaskSentimentLoss(omega=1.0, metric_loss=metric, miner=miner)
    torch.testing.assert_close(mt(x, logits, y), metric(x, y, miner(x, y)), **TOL)


def test_multitask_bad_inputs() -> None:
    E = sm.SentimentMetricError
    with pytest.raises(E, match="omega"):
        sm.MultiTaskSentimentLoss(omega=1.5, class_names=NAMES)
    with pytest.raises(E, match="omega"):
        sm.MultiTaskSentimentLoss(omega=-0.1, class_names=NAMES)
    with pytest.raises(E, match="class_names"):
        sm.MultiTaskSentimentLoss()
    mt = sm.MultiTaskSentimentLoss(class_names=NAMES)
    x, y = _batch(6, 19)
    with pytest.raises(E, match="logits"):
        mt(x, torch.randn(6, 5), y)
    with pytest.raises(E, match="logits has 5 rows"):
        mt(x, torch.randn(5, 8), y)
    with pytest.raises(E, match="1-D"):
        mt(x, torch.randn(6, 8), y.view(3, 2))
    assert "omega=0.2" in repr(mt)


def test_device_matches_cpu(device: torch.device) -> None:
    x, y = _batch(24, 20)
    r, ry = _batch(16, 21)
    for t in (None, (torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8]))):
        loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
        want = loss_fn(x, y, t, ref_emb=r, ref_labels=ry)
        xd = x.to(device).requires_grad_(True)
        tt = None if t is None else tuple(i.to(device) for i in t)
        got = loss_fn.to(device)(
            xd, y.to(device), tt, ref_emb=r.to(device), ref_labels=ry.to(device)
        )
        got.backward()
        assert got.device.type == device.type and xd.grad is not None
        torch.testing.assert_close(got.cpu(), want, rtol=1e-9, atol=1e-12)


def test_loss_op_count_is_bounded() -> None:
    # issue 12: top-level aten ops of one forward + backward (eager, CPU) at B = 128: every
    # ranked triplet <= 60, the miner's triplets <= 51, miner + loss <= 80 (values checked)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(128, 680, generator=g).requires_grad_(True)
    y = torch.arange(128) % 8
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    tup = miner(emb.detach(), y)

    def step(*args: object) -> None:
        emb.grad = None
        loss_fn(emb, y, *args).backward()

    assert top_level_aten_ops(step) <= 60
    assert top_level_aten_ops(lambda: step(tup)) <= 51
    assert top_level_aten_ops(lambda: step(miner(emb, y))) <= 80


def test_mined_triplets_are_not_read_again_unless_changed() -> None:
    # the miner marks its output in range (no second host read in the loss); an in-place
    # change of a marked tensor drops the mark, and the loss checks the values again
    g = torch.Generator().manual_seed(1)
    emb, y = torch.randn(32, 8, generator=g), torch.arange(32) % 8
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES)
    a, c, f = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)(emb, y)
    unmarked = (a.clone(), c.clone(), f.clone())
    torch.testing.assert_close(loss_fn(emb, y, (a, c, f)), loss_fn(emb, y, unmarked))
    marked_ops = top_level_aten_ops(lambda: loss_fn(emb, y, (a, c, f)))
    assert marked_ops < top_level_aten_ops(lambda: loss_fn(emb, y, unmarked))
    f[0] = 32
    with pytest.raises(sm.SentimentMetricError, match=r"indices_tuple\[2\].*out of range"):
        loss_fn(emb, y, (a, c, f))
