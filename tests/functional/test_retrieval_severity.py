"""Measures of mistake severity: H-AP and the group-miss shares against the naive float64
references of tests/oracle.py, their invariants, and how the engine and the calculator average
a measure that is undefined for some queries."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
from sentiment_metric.functional import retrieval as R

from ..oracle import naive_group_miss_share, naive_hierarchical_ap

MIKELS = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)


@st.composite
def rankings(draw: st.DrawFn) -> tuple[list[int], int, list[int]]:
    """A ranked list of labels, a query label and a group per class (any partition)."""
    c = draw(st.integers(1, 6))
    groups = draw(st.lists(st.integers(0, 2), min_size=c, max_size=c))
    ranked = draw(st.lists(st.integers(0, c - 1), min_size=1, max_size=14))
    return ranked, draw(st.integers(0, c - 1)), groups


def _hap(ranked: list[int], yq: int, groups: list[int]) -> float:
    return float(
        R.hierarchical_average_precision(
            torch.tensor([ranked]), torch.tensor([yq]), torch.tensor(groups)
        )
    )


# ------------------------------------------------------------------ against the formula
def test_hierarchical_ap_hand_made():
    g = [0, 0, 1]  # classes 0 and 1 share a group
    # query 0, ranking: class 1 (rel 1/2), class 2 (0), class 0 (1), class 1 (1/2)
    # H-rank: 1/2; -; 1 + min(1, 1/2) = 3/2; 1/2 + 1/2 + 1/2 = 3/2; Σ rel = 2
    expect = (0.5 / 1 + 1.5 / 3 + 1.5 / 4) / 2
    assert _hap([1, 2, 0, 1], 0, g) == pytest.approx(expect, rel=1e-15)
    assert naive_hierarchical_ap([1, 2, 0, 1], 0, g) == pytest.approx(expect, rel=1e-15)
    assert math.isnan(_hap([2, 2], 0, g))  # no reference of the query's group


@settings(max_examples=60, deadline=None)
@given(rankings())
def test_hierarchical_ap_equals_the_naive_loops(case):
    ranked, yq, groups = case
    want = naive_hierarchical_ap(ranked, yq, groups)
    assert _hap(ranked, yq, groups) == pytest.approx(want, rel=1e-12, abs=1e-15, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(rankings(), st.integers(1, 14))
def test_group_miss_share_equals_the_naive_loops(case, k):
    ranked, yq, groups = case
    k = min(k, len(ranked))
    got = R.group_miss_share_at_k(
        torch.tensor([ranked]), torch.tensor([yq]), torch.tensor(groups), k
    )
    want = naive_group_miss_share(ranked, yq, groups, k)
    assert float(got) == pytest.approx(want, rel=1e-15, nan_ok=True)


# ------------------------------------------------------------------ invariants
@settings(max_examples=60, deadline=None)
@given(rankings())
def test_hierarchical_ap_is_ap_without_same_group_classes(case):
    """With relevance 0/1 only (every class its own group) H-AP is AP over the ranking."""
    ranked, yq, groups = case
    own = list(range(len(groups)))
    hits = ranked.count(yq)
    ap = R.average_precision(torch.tensor([ranked]), torch.tensor([yq]), torch.tensor([hits]))
    assert _hap(ranked, yq, own) == pytest.approx(float(ap), rel=1e-12, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(rankings(), st.randoms(use_true_random=False))
def test_hierarchical_ap_is_one_exactly_for_relevance_order(case, rnd):
    ranked, yq, groups = case
    if not any(groups[y] == groups[yq] for y in ranked):
        return

    def level(y: int) -> int:
        return 0 if y == yq else (1 if groups[y] == groups[yq] else 2)

    best = sorted(ranked, key=level)
    assert _hap(best, yq, groups) == pytest.approx(1.0, rel=1e-15)
    shuffled = list(ranked)
    rnd.shuffle(shuffled)
    got = _hap(shuffled, yq, groups)
    assert 0.0 < got <= 1.0 + 1e-15
    if [level(y) for y in shuffled] != [level(y) for y in best]:
        assert got < 1.0


@settings(max_examples=60, deadline=None)
@given(rankings(), st.integers(1, 14))
def test_group_miss_share_from_precision_and_polarity_precision(case, k):
    """GMS@k · (1 − P@k) = 1 − PP@k: the wrong neighbours across polarity, two ways."""
    ranked, yq, groups = case
    k = min(k, len(ranked))
    r, q, g = torch.tensor([ranked]), torch.tensor([yq]), torch.tensor(groups)
    gms = float(R.group_miss_share_at_k(r, q, g, k))
    p, pp = float(R.precision_at_k(r, q, k)), float(R.polarity_precision_at_k(r, q, g, k))
    if p == 1.0:
        assert math.isnan(gms)
    else:
        assert 0.0 <= gms <= 1.0
        assert gms * (1 - p) == pytest.approx(1 - pp, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=20),
    st.lists(st.integers(0, 2), min_size=6, max_size=6),
)
def test_group_miss_share_of_errors_equals_the_naive_loop(pairs, groups):
    preds = torch.tensor([p for p, _ in pairs])
    labels = torch.tensor([y for _, y in pairs])
    got = R.group_miss_share_of_errors(preds, labels, torch.tensor(groups))
    wrong = [(p, y) for p, y in pairs if p != y]
    if not wrong:
        assert got is None
        return
    want = sum(1 for p, y in wrong if groups[p] != groups[y]) / len(wrong)
    assert got == pytest.approx(want, rel=1e-15)
    # the classification report carries it, computed the same way
    names = [f"c{i}" for i in range(6)]
    rel = sm.LabelRelations.from_groups(groups, class_names=names)
    rep = sm.classification_report(preds, labels, relations=rel)
    assert rep["group_miss_share_of_errors"] == got


# ------------------------------------------------------------------ engine and calculator
def _circle(per_class: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mikels' emotions in wheel order on a circle, some noise: wrong neighbours for some
    queries (26 of 40 have none in their top 4; anger's five queries all have none)."""
    y = torch.arange(8).repeat(per_class)
    gen = torch.Generator().manual_seed(0)
    angle = y * (2 * math.pi / 8) + 0.2 * torch.randn(len(y), generator=gen, dtype=torch.float64)
    return torch.stack([angle.cos(), angle.sin()], dim=1), y


def test_engine_values_are_the_functions_on_its_ranking():
    x, y = _circle()
    out = R.per_query_retrieval_metrics(
        x,
        y,
        relations=MIKELS,
        k=4,
        metrics=["hierarchical_average_precision", "group_miss_share_at_k"],
    )
    _, idx = R.exact_knn(x, None, len(y) - 1, ref_includes_query=True)
    ranked = y[idx]
    hap = R.hierarchical_average_precision(ranked, y, MIKELS.groups)
    gms = R.group_miss_share_at_k(ranked, y, MIKELS.groups, 4)
    torch.testing.assert_close(out["hierarchical_average_precision"], hap, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["group_miss_share_at_k"], gms, equal_nan=True)
    assert bool(gms.isnan().any()) and not bool(gms.isnan().all())  # both cases present


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_full_depth_does_not_depend_on_the_chunks(chunk):
    x, y = _circle()
    kw = dict(relations=MIKELS, metrics=["hierarchical_average_precision"])
    whole = R.per_query_retrieval_metrics(x, y, chunk_size=len(y), **kw)
    parts = R.per_query_retrieval_metrics(x, y, chunk_size=chunk, **kw)
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)


def test_undefined_queries_are_left_out_of_every_mean():
    x, y = _circle()
    names = ["group_miss_share_at_k"]
    per = R.per_query_retrieval_metrics(x, y, relations=MIKELS, k=4, metrics=names)[names[0]]
    defined = ~per.isnan()
    mean = R.retrieval_metrics(x, y, relations=MIKELS, k=4, metrics=names)[names[0]]
    assert mean == pytest.approx(float(per[defined].mean()), rel=1e-15)

    def calc(**kw):
        c = sm.AffectiveAccuracyCalculator(relations=MIKELS, k=4, include=names, **kw)
        return c.get_accuracy(x, y)[names[0]]

    assert calc() == pytest.approx(mean, rel=1e-15)
    per_class = [float(per[(y == c) & defined].mean()) for c in range(8)]
    assert math.isnan(per_class[7])  # a class without a defined query: NaN, left out below
    assert calc(return_per_class=True) == pytest.approx(per_class, rel=1e-15, nan_ok=True)
    kept = [v for v in per_class if not math.isnan(v)]
    assert calc(avg_of_avgs=True) == pytest.approx(sum(kept) / len(kept), rel=1e-15)


def test_calculator_computes_them_by_default_and_when_asked():
    x, y = _circle()
    calc = sm.AffectiveAccuracyCalculator(relations=MIKELS, k=4, exclude=("NMI", "AMI"))
    default = calc.get_accuracy(x, y)
    assert {"hierarchical_average_precision", "group_miss_share_at_k"} <= set(default)
    asked = sm.AffectiveAccuracyCalculator(
        relations=MIKELS, k=4, include=("hierarchical_average_precision", "group_miss_share_at_k")
    ).get_accuracy(x, y)
    assert asked == {n: default[n] for n in asked} and len(asked) == 2
    assert 0.0 < asked["hierarchical_average_precision"] < 1.0
    assert 0.0 <= asked["group_miss_share_at_k"] <= 1.0


def test_hierarchical_ap_prefers_the_polarity_aware_embedding():
    """Same classes, same class-level order; only where the other classes sit differs."""
    y = torch.arange(8).repeat(4)
    gen = torch.Generator().manual_seed(1)
    noise = 0.01 * torch.randn(len(y), 10, generator=gen, dtype=torch.float64)
    flat = torch.nn.functional.one_hot(y, 8).double()
    by_group = torch.nn.functional.one_hot(MIKELS.groups[y], 2).double()
    aware = torch.cat([flat, by_group], dim=1) + noise
    blind = torch.cat([flat, torch.zeros_like(by_group)], dim=1) + noise
    kw = dict(relations=MIKELS, k=3, metrics=["hierarchical_average_precision", "precision_at_3"])
    a, b = R.retrieval_metrics(aware, y, **kw), R.retrieval_metrics(blind, y, **kw)
    assert a["precision_at_3"] == b["precision_at_3"] == 1.0
    assert a["hierarchical_average_precision"] == pytest.approx(1.0)
    assert b["hierarchical_average_precision"] < 0.9
