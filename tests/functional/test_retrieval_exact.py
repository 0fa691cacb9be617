"""The exact kNN ranks like a float64 brute force (ties by index), whatever the chunks, the
depth or the measures asked; the wheel measures keep their own depth (``wheel_k``)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
from sentiment_metric.functional import retrieval as R
from sentiment_metric.functional.distance import squared_euclidean

from ..conftest import MIKELS_FI_ORDER

REL = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER)


def near_ties(seed, m=120, n=160, d=32, offset=30.0):
    """Float32 embeddings far from the origin, in clusters of 4 references ~1e-4 apart:
    float32 rounding of ``|q|² + |r|² - 2 q·r`` decides their order, float64 does not."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n // 4, d, generator=g)
    r = base.repeat_interleave(4, 0) + 1e-4 * torch.randn(n, d, generator=g)
    q = r[torch.randint(0, n, (m,), generator=g)] + 1e-2 * torch.randn(m, d, generator=g)
    y = torch.randint(0, 8, (n,), generator=g)
    yq = torch.randint(0, 8, (m,), generator=g)
    return (q + offset).float(), yq, (r + offset).float(), y


def brute(q, r, k, distance="euclidean", self_excluded=False):
    """Float64 brute force: every distance, sorted by (distance, index)."""
    q64, r64 = q.double(), r.double()
    if distance == "euclidean":
        d = ((q64[:, None, :] - r64[None, :, :]) ** 2).sum(-1)
    else:
        qn = torch.nn.functional.normalize(q64, dim=1)
        rn = torch.nn.functional.normalize(r64, dim=1)
        d = -(qn @ rn.T)
    if self_excluded:
        d[torch.arange(q.shape[0]), torch.arange(q.shape[0])] = float("inf")
    v, i = torch.sort(d, dim=1, stable=True)  # columns in index order: ties by index
    return v[:, :k], i[:, :k]


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("ref_includes_query", [False, True])
def test_exact_knn_ranks_like_a_float64_brute_force(distance, ref_includes_query):
    q, _, r, _ = near_ties(0)
    if ref_includes_query:
        r = torch.cat([q, r])
    _, expect = brute(q, r, 6, distance, ref_includes_query)
    # the data are hard: a float32 ranking gets most rows wrong
    s32 = (
        squared_euclidean(q, r)
        if distance == "euclidean"
        else -(torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(r, dim=1).T)
    )
    if ref_includes_query:
        s32[torch.arange(len(q)), torch.arange(len(q))] = float("inf")
    assert (s32.topk(6, largest=False).indices != expect).any(dim=1).sum() > len(q) // 2
    for cs in (1, 7, None):
        d, i = R.exact_knn(
            q, r, 6, ref_includes_query=ref_includes_query, distance=distance, chunk_size=cs
        )
        assert torch.equal(i, expect), cs
        assert d.dtype == torch.float32


def test_exact_knn_reports_float64_rescored_distances():
    q, _, r, _ = near_ties(1, m=20)
    v, _ = brute(q, r, 4)
    d, _ = R.exact_knn(q, r, 4)
    torch.testing.assert_close(d.double(), v, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_ties_are_broken_by_the_smaller_index(dtype):
    # 30 copies of one point: more tied candidates than the search window holds
    g = torch.Generator().manual_seed(2)
    r = torch.cat([torch.randn(5, 3, generator=g) + 5, torch.zeros(30, 3), torch.ones(4, 3)])
    q = torch.zeros(3, 3) + 1e-3
    for k in (1, 3, 25, 30):
        _, i = R.exact_knn(q.to(dtype), r.to(dtype), k)
        assert i.tolist() == [list(range(5, 5 + k))] * 3, k
    _, i = R.exact_knn(q, r, 3, distance=lambda a, b: torch.cdist(a, b))  # a callable too
    assert i.tolist() == [[5, 6, 7]] * 3


def test_half_inputs_rank_like_their_float64_values():
    q, _, r, _ = near_ties(3, m=30, offset=0.0)
    q, r = q.half(), r.half()
    _, expect = brute(q, r, 5)
    assert torch.equal(R.exact_knn(q, r, 5)[1], expect)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 20),
    chunk=st.integers(1, 50),
    offset=st.sampled_from([0.0, 10.0, 100.0]),
    distance=st.sampled_from(["euclidean", "cosine"]),
)
def test_exact_knn_drawn(seed, k, chunk, offset, distance):
    q, _, r, _ = near_ties(seed, m=40, n=80, d=16, offset=offset)
    _, expect = brute(q, r, k, distance)
    _, got = R.exact_knn(q, r, k, distance=distance, chunk_size=chunk)
    assert torch.equal(got, expect)


def test_engine_top_positions_match_the_float64_brute_force():
    q, yq, r, yr = near_ties(4)
    _, ranked = brute(q, r, 10)
    labels = yr[ranked]
    names = ["precision_at_1", "precision_at_3", "polarity_precision_at_k"]
    names += ["mean_wheel_distance_at_k", "mean_reciprocal_rank"]
    out = R.per_query_retrieval_metrics(
        q, yq, r, yr, relations=REL, metrics=names, k=10, wheel_k=5, chunk_size=9
    )
    ok = ~torch.isnan(out["precision_at_1"])
    expect = {
        "precision_at_1": R.precision_at_k(labels, yq, 1),
        "precision_at_3": R.precision_at_k(labels, yq, 3),
        "polarity_precision_at_k": R.polarity_precision_at_k(labels, yq, REL.groups, 5),
        "mean_wheel_distance_at_k": R.mean_wheel_distance_at_k(labels, yq, REL.dis, 5),
        "mean_reciprocal_rank": R.reciprocal_rank(labels, yq, 10),
    }
    for name, v in expect.items():
        torch.testing.assert_close(out[name][ok], v.double()[ok], msg=name)


def test_no_value_depends_on_the_measures_asked():
    q, yq, r, yr = near_ties(5, m=200, n=240)
    r, yr = torch.cat([q, r]), torch.cat([yq, yr])
    sets = [
        ["precision_at_1"],
        ["precision_at_1", "anmrr"],
        ["precision_at_1", "second_tier", "wheel_ndcg_at_k"],
        list(R.RETRIEVAL_METRICS),
    ]
    p1 = set()
    for metrics in sets:
        for k in (1, 10, None, "max_bin_count"):
            out = R.retrieval_metrics(
                q, yq, r, yr, relations=REL, metrics=metrics, k=k, ref_includes_query=True
            )
            p1.add(out["precision_at_1"])
    _, top = brute(q, r, 1, self_excluded=True)
    assert p1 == {float((yr[top[:, 0]] == yq).double().mean())}


# ------------------------------------------------------------------ the wheel measures' depth
WHEEL = ["polarity_precision_at_k", "wheel_ndcg_at_k", "mean_wheel_distance_at_k"]


def test_wheel_measures_keep_their_depth_whatever_k():
    q, yq, r, yr = near_ties(6, m=60, n=400)
    at = {
        wk: R.retrieval_metrics(q, yq, r, yr, relations=REL, metrics=WHEEL, k=wk) for wk in (5, 10)
    }
    for k in (None, "max_bin_count"):  # data-dependent depths: the wheel measures stay at 10
        got = R.retrieval_metrics(q, yq, r, yr, relations=REL, metrics=WHEEL, k=k)
        assert got == at[10], k
    got = R.retrieval_metrics(
        q, yq, r, yr, relations=REL, metrics=WHEEL, k="max_bin_count", wheel_k=5
    )
    assert got == at[5]
    got = R.retrieval_metrics(q, yq, r, yr, relations=REL, metrics=WHEEL, k=40, wheel_k=10)
    assert got == at[10]
    # an int k still sets them when wheel_k is not given (k is the depth the user chose)
    assert R.retrieval_metrics(q, yq, r, yr, relations=REL, metrics=WHEEL, k=5) == at[5]


def test_resolve_wheel_k_and_bad_wheel_k():
    assert R.resolve_wheel_k(None, "max_bin_count", 5000) == R.engine.DEFAULT_WHEEL_K == 10
    assert R.resolve_wheel_k(None, None, 3) == 3  # at most the candidates
    assert R.resolve_wheel_k(7, None, 30) == 7
    assert R.resolve_wheel_k(None, 4, 30) == 4
    q, yq, r, yr = near_ties(7, m=5, n=8)
    for bad, match in (
        (0, "wheel_k must be an int >= 1"),
        (True, "wheel_k must be an int"),
        ("10", "wheel_k must be an int"),
        (9, "wheel_k=9 is larger"),
    ):
        with pytest.raises(sm.SentimentMetricError, match=match):
            R.retrieval_metrics(q, yq, r, yr, relations=REL, metrics=WHEEL, k=None, wheel_k=bad)
