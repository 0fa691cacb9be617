"""Retrieval measures: each against a brute-force numpy loop written from its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, ndcg_score

import sentiment_metric as sm
from sentiment_metric.functional import retrieval as R

from ..conftest import MIKELS_FI_ORDER
from ..oracle import naive_group_miss_share, naive_hierarchical_ap

REL = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER)
ALL = [*R.RETRIEVAL_METRICS, "precision_at_2", "precision_at_3"]


# ------------------------------------------------------------------ brute force (numpy, loops)
def brute_rankings(q, r, ref_includes_query):
    """For each query: candidate reference indices sorted by distance (float64)."""
    out = []
    for i in range(len(q)):
        d = [float(np.sum((q[i] - r[j]) ** 2)) for j in range(len(r))]
        cand = [j for j in range(len(r)) if not (ref_includes_query and j == i)]
        out.append(sorted(cand, key=lambda j: d[j]))
    return out


def brute_query(ranked, yq, k, ks, rel, gtm, cand_labels, wk=None):
    """All measures of one query from its ranked reference labels (explicit loops); the wheel
    measures at depth ``wk`` (default ``k``)."""
    wk = k if wk is None else wk
    n = len(ranked)
    h = [1 if y == yq else 0 for y in ranked]
    big_r = sum(h)
    if big_r == 0:
        return None
    res = {}

    def prec(m):
        return sum(h[:m]) / m

    res["precision_at_1"] = prec(1)
    for kk in ks:
        res[f"precision_at_{kk}"] = prec(kk)
    res["r_precision"] = sum(h[:big_r]) / big_r
    res["first_tier"] = res["r_precision"]
    res["second_tier"] = sum(h[: min(2 * big_r, n)]) / big_r
    res["mean_average_precision_at_r"] = sum(prec(i + 1) for i in range(big_r) if h[i]) / big_r
    res["mean_average_precision"] = sum(prec(i + 1) for i in range(k) if h[i]) / big_r
    rr = 0.0
    for i in range(k):
        if h[i]:
            rr = 1.0 / (i + 1)
            break
    res["mean_reciprocal_rank"] = rr
    groups = REL.groups.tolist()
    dis = REL.dis.tolist()
    level = REL.level.tolist()
    res["polarity_precision_at_k"] = sum(groups[y] == groups[yq] for y in ranked[:wk]) / wk
    res["mean_wheel_distance_at_k"] = sum(dis[yq][y] - 1 for y in ranked[:wk]) / wk

    def g(y):
        return 1.0 / dis[yq][y] if level[yq][y] <= 1 else 0.0

    dcg = sum(g(y) / math.log2(i + 2) for i, y in enumerate(ranked[:wk]))
    ideal = sorted((g(y) for y in cand_labels), reverse=True)
    idcg = sum(v / math.log2(i + 2) for i, v in enumerate(ideal[:wk]))
    res["wheel_ndcg_at_k"] = dcg / idcg
    # MPEG-7 ANMRR
    kq = min(4 * big_r, 2 * gtm)
    ranks = [i + 1 for i in range(n) if h[i]]
    star = [rk if rk <= kq else 1.25 * kq for rk in ranks]
    avr = sum(star) / big_r
    mrr = avr - 0.5 - big_r / 2
    res["anmrr"] = mrr / (1.25 * kq - 0.5 - big_r / 2)
    res["hierarchical_average_precision"] = naive_hierarchical_ap(ranked, yq, groups)
    res["group_miss_share_at_k"] = naive_group_miss_share(ranked, yq, groups, wk)
    return res


def wheel_depth(k, n_cand):
    """The wheel measures' depth without ``wheel_k``: an int ``k``, else 10 (capped)."""
    return k if isinstance(k, int) else min(10, n_cand)


def brute_all(q, yq, r, yr, ref_includes_query, k, ks, wk=None):
    rankings = brute_rankings(q, r, ref_includes_query)
    counts = []
    for i in range(len(q)):
        c = sum(1 for j in range(len(r)) if yr[j] == yq[i] and not (ref_includes_query and j == i))
        counts.append(c)
    gtm = max(counts)
    out = []
    for i, rank in enumerate(rankings):
        labels = [int(yr[j]) for j in rank]
        out.append(brute_query(labels, int(yq[i]), k, ks, REL, gtm, labels, wk))
    return out


def make_data(seed, m, n, ref_includes_query, n_labels=8, absent=()):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(m, 3))
    yq = rng.integers(0, n_labels, size=m)
    if ref_includes_query:
        extra = rng.normal(size=(n, 3))
        r = np.concatenate([q, extra])
        yr = np.concatenate([yq, rng.integers(0, n_labels, size=n)])
    else:
        r = rng.normal(size=(n, 3))
        pool = [c for c in range(n_labels) if c not in absent]
        yr = rng.choice(pool, size=n)
    return q, yq, r, yr


def compare(q, yq, r, yr, ref_includes_query, k, ks, chunk_size=None):
    n_cand = len(r) - int(ref_includes_query)
    kk = _resolve(k, q, yq, yr, ref_includes_query, n_cand)
    ref = brute_all(q, yq, r, yr, ref_includes_query, kk, ks, wheel_depth(k, n_cand))
    out = R.per_query_retrieval_metrics(
        torch.from_numpy(q),
        torch.from_numpy(yq),
        torch.from_numpy(r),
        torch.from_numpy(yr),
        relations=REL,
        metrics=list(R.RETRIEVAL_METRICS) + [f"precision_at_{kk}" for kk in ks],
        k=k,
        ref_includes_query=ref_includes_query,
        chunk_size=chunk_size,
    )
    for i, expect in enumerate(ref):
        for name, v in out.items():
            got = float(v[i])
            if expect is None:
                assert math.isnan(got), (name, i)
            else:
                assert got == pytest.approx(expect[name], rel=1e-9, abs=1e-12, nan_ok=True), (
                    name,
                    i,
                )


# ------------------------------------------------------------------ hand-made cases
def test_ranked_measures_hand_made():
    q = torch.tensor([0])
    ranked = torch.tensor([[1, 0, 2, 0, 0]])  # hits at ranks 2, 4, 5; R = 3
    r3 = torch.tensor([3])
    assert R.precision_at_k(ranked, q, 2).item() == 0.5
    assert R.r_precision(ranked, q, r3).item() == pytest.approx(1 / 3)
    assert R.tier_precision(ranked, q, r3, tier=2).item() == 1.0
    ap = (1 / 2 + 2 / 4 + 3 / 5) / 3
    assert R.average_precision(ranked, q, r3).item() == pytest.approx(ap)
    assert R.average_precision(ranked, q, r3, at_r=True).item() == pytest.approx((1 / 2) / 3)
    assert R.average_precision(ranked, q, r3, k=2).item() == pytest.approx((1 / 2) / 3)
    assert R.reciprocal_rank(ranked, q).item() == 0.5
    assert R.reciprocal_rank(ranked, q, k=1).item() == 0.0
    # NMRR with GTM = 3: K = min(12, 6) = 6, ranks 2, 4, 5 all within K
    avr = (2 + 4 + 5) / 3
    expect = (avr - 0.5 - 1.5) / (1.25 * 6 - 0.5 - 1.5)
    assert R.nmrr(ranked, q, r3, gtm=3).item() == pytest.approx(expect)
    # GTM = 1 would be inconsistent with R=3 but tests the cut: K = min(12, 2) = 2
    star = (2 + 2.5 + 2.5) / 3
    assert R.nmrr(ranked, q, r3, gtm=1).item() == pytest.approx(
        (star - 0.5 - 1.5) / (1.25 * 2 - 0.5 - 1.5)
    )


def test_wheel_measures_hand_made():
    rel = sm.MIKELS_WHEEL.relations(["amusement", "contentment", "awe", "fear", "anger"])
    g = R.wheel_relevance(rel.level, rel.dis)
    # amusement: same 1, contentment 1 step (1/2), awe 2 steps (1/3), fear/anger opposite 0
    assert g[0].tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.0, 0.0])
    # anger neighbours amusement on the wheel (dis 2) but is of the opposite polarity: 0
    assert rel.dis[0, 4].item() == 2.0 and g[0, 4].item() == 0.0
    q = torch.tensor([0])
    ranked = torch.tensor([[4, 1, 0]])
    assert R.polarity_precision_at_k(ranked, q, rel.groups, 3).item() == pytest.approx(2 / 3)
    assert R.mean_wheel_distance_at_k(ranked, q, rel.dis, 3).item() == pytest.approx(
        (1 + 1 + 0) / 3
    )
    counts = torch.tensor([1, 1, 0, 0, 1])
    dcg = 0 / math.log2(2) + 0.5 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 0.5 / math.log2(3) + 0 / math.log2(4)
    assert R.wheel_ndcg_at_k(ranked, q, g, 3, counts).item() == pytest.approx(dcg / idcg)


def test_wheel_order_and_classification_maths():
    order = R.wheel_order(MIKELS_FI_ORDER, REL.groups, sm.MIKELS_WHEEL.index)
    assert [MIKELS_FI_ORDER[i] for i in order] == list(sm.MIKELS_WHEEL.emotions)
    # names off the wheel: by group then label
    assert R.wheel_order(["x", "y", "z"], torch.tensor([1, 0, 1]), sm.MIKELS_WHEEL.index) == [
        1,
        0,
        2,
    ]
    assert R.wheel_order(None, torch.tensor([1, 0, 1])) == [1, 0, 2]
    preds, labels = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 3, 3])
    # FI order: amusement(+), anger(-), awe(+), contentment(+)
    assert R.polarity_accuracy(preds, labels, REL.groups) == 0.75
    # anger-amusement 1 step, awe-contentment 1 step
    assert R.mean_wheel_distance_of_errors(preds, labels, REL.dis) == 1.0
    assert R.mean_wheel_distance_of_errors(labels, labels, REL.dis) is None


# ------------------------------------------------------------------ brute force, drawn cases
@pytest.mark.parametrize("ref_includes_query", [False, True])
@pytest.mark.parametrize("k", [1, 4, "max_bin_count", None])
def test_engine_matches_brute_force(ref_includes_query, k):
    q, yq, r, yr = make_data(1, 14, 12, ref_includes_query, n_labels=4)
    compare(q, yq, r, yr, ref_includes_query, k, [2, 3], 5)


def _resolve(k, q, yq, yr, ref_includes_query, n):
    counts = [
        sum(1 for j in range(len(yr)) if yr[j] == yq[i] and not (ref_includes_query and j == i))
        for i in range(len(yq))
    ]
    if k is None:
        return n
    if k == "max_bin_count":
        return max(1, min(max(counts), n))
    return k


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    m=st.integers(1, 9),
    n=st.integers(2, 11),
    ref_includes_query=st.booleans(),
    n_labels=st.integers(1, 8),
    k=st.one_of(st.integers(1, 3), st.none(), st.just("max_bin_count")),
    chunk=st.integers(1, 4),
)
def test_engine_matches_brute_force_drawn(seed, m, n, ref_includes_query, n_labels, k, chunk):
    q, yq, r, yr = make_data(seed, m, n, ref_includes_query, n_labels=n_labels)
    n_cand = len(r) - int(ref_includes_query)

    def run() -> dict[str, torch.Tensor]:
        return R.per_query_retrieval_metrics(
            torch.from_numpy(q),
            torch.from_numpy(yq),
            torch.from_numpy(r),
            torch.from_numpy(yr),
            relations=REL,
            metrics=[*R.RETRIEVAL_METRICS, "precision_at_2"],
            k=k,
            ref_includes_query=ref_includes_query,
            chunk_size=chunk,
        )

    if (isinstance(k, int) and k > n_cand) or n_cand < 2:
        # deeper than the candidates (k, or precision@2): a clear error, never a wrong number
        with pytest.raises(sm.SentimentMetricError, match="larger than the reference set"):
            run()
        return
    kk = _resolve(k, q, yq, yr, ref_includes_query, n_cand)
    ref = brute_all(q, yq, r, yr, ref_includes_query, kk, [2], wheel_depth(k, n_cand))
    out = run()
    for i, expect in enumerate(ref):
        for name, v in out.items():
            if expect is None:
                assert math.isnan(float(v[i]))
            else:
                expected = pytest.approx(expect[name], rel=1e-9, abs=1e-12, nan_ok=True)
                assert float(v[i]) == expected, name


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(0, 7), min_size=1, max_size=12),
    yq=st.integers(0, 7),
    k=st.integers(1, 12),
)
def test_ranked_functions_drawn(labels, yq, k):
    """The public ranked-list functions against the brute force on drawn rankings."""
    k = min(k, len(labels))
    big_r = labels.count(yq)
    ranked = torch.tensor([labels])
    q = torch.tensor([yq])
    counts = torch.bincount(torch.tensor(labels), minlength=8)
    gain = R.wheel_relevance(REL.level, REL.dis)
    got = {
        "precision_at_1": R.precision_at_k(ranked, q, 1),
        "polarity_precision_at_k": R.polarity_precision_at_k(ranked, q, REL.groups, k),
        "mean_wheel_distance_at_k": R.mean_wheel_distance_at_k(ranked, q, REL.dis, k),
        "mean_reciprocal_rank": R.reciprocal_rank(ranked, q, k),
        "group_miss_share_at_k": R.group_miss_share_at_k(ranked, q, REL.groups, k),
        "hierarchical_average_precision": R.hierarchical_average_precision(ranked, q, REL.groups),
    }
    if big_r:
        rr = torch.tensor([big_r])
        got.update(
            {
                "r_precision": R.r_precision(ranked, q, rr),
                "second_tier": R.tier_precision(ranked, q, rr, tier=2),
                "mean_average_precision": R.average_precision(ranked, q, rr, k=k),
                "mean_average_precision_at_r": R.average_precision(ranked, q, rr, at_r=True),
                "anmrr": R.nmrr(ranked, q, rr, gtm=big_r),
                "wheel_ndcg_at_k": R.wheel_ndcg_at_k(ranked, q, gain, k, counts),
            }
        )
        expect = brute_query(labels, yq, k, [], REL, big_r, labels)
        assert expect is not None
        for name, v in got.items():
            assert float(v) == pytest.approx(expect[name], rel=1e-9, abs=1e-12, nan_ok=True), name
    else:
        assert math.isnan(float(R.r_precision(ranked, q, torch.tensor([0]))))


# ------------------------------------------------------------------ scikit-learn agreement
def test_agrees_with_sklearn_ndcg_and_average_precision():
    q, yq, r, yr = make_data(3, 10, 25, False, n_labels=8)
    qt, rt = torch.from_numpy(q), torch.from_numpy(r)
    gain = R.wheel_relevance(REL.level, REL.dis).numpy()
    dist = torch.cdist(qt, rt).numpy()
    for k in (1, 5, 25):
        out = R.per_query_retrieval_metrics(
            qt,
            torch.from_numpy(yq),
            rt,
            torch.from_numpy(yr),
            relations=REL,
            metrics=["wheel_ndcg_at_k", "mean_average_precision"],
            k=k,
        )
        for i in range(len(q)):
            if not (yr == yq[i]).any():
                continue
            true_rel = gain[yq[i], yr][None]
            sk = ndcg_score(true_rel, -dist[i][None], k=k)
            assert float(out["wheel_ndcg_at_k"][i]) == pytest.approx(sk, rel=1e-9)
            if k == 25:  # PML's mAP at full depth is the usual average precision
                ap = average_precision_score(yr == yq[i], -dist[i])
                assert float(out["mean_average_precision"][i]) == pytest.approx(ap, rel=1e-9)


# ------------------------------------------------------------------ behaviour
def _clustered(per_class=4, jitter=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(8).repeat(per_class)
    x = torch.nn.functional.one_hot(y, 8).double() + jitter * torch.randn(
        len(y), 8, generator=g, dtype=torch.float64
    )
    return x, y


def test_perfect_embedding_scores_one_and_anmrr_zero():
    x, y = _clustered()
    x = torch.cat([x, 2.0 * torch.nn.functional.one_hot(REL.groups[y], 2).double()], dim=1)
    out = R.retrieval_metrics(x, y, relations=REL, k=3, metrics=ALL)
    for name, v in out.items():
        if name == "group_miss_share_at_k":  # the top 3 hold no other class: nothing to grade
            assert math.isnan(v)
        elif name == "anmrr":
            assert v == pytest.approx(0.0, abs=1e-12)
        elif name == "mean_wheel_distance_at_k":
            assert v == pytest.approx(0.0, abs=1e-12)
        elif name == "precision_at_2" or name == "precision_at_3":
            assert v == 1.0
        else:
            assert v == pytest.approx(1.0), name


def test_opposite_polarity_first_scores_lower_than_neighbours_first():
    """Same-class item first in both; then wheel neighbours vs the opposite polarity."""
    rel = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
    # query amusement(0); references: amusement, contentment(1 step), awe, fear, sadness
    ref_labels = torch.tensor([0, 1, 2, 4, 5])
    query = torch.zeros(1, 1, dtype=torch.float64)
    good = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    bad = torch.tensor([[0.0], [3.0], [4.0], [1.0], [2.0]], dtype=torch.float64)
    kw = dict(
        relations=rel,
        k=3,
        metrics=["wheel_ndcg_at_k", "polarity_precision_at_k", "mean_wheel_distance_at_k", "anmrr"],
    )
    a = R.retrieval_metrics(query, torch.tensor([0]), good, ref_labels, **kw)
    b = R.retrieval_metrics(query, torch.tensor([0]), bad, ref_labels, **kw)
    assert a["wheel_ndcg_at_k"] > b["wheel_ndcg_at_k"]
    assert a["polarity_precision_at_k"] > b["polarity_precision_at_k"]
    assert a["mean_wheel_distance_at_k"] < b["mean_wheel_distance_at_k"]
    assert a["anmrr"] == b["anmrr"] == 0.0  # one relevant item, ranked first in both


def test_query_never_retrieves_itself():
    x = torch.tensor([[0.0], [10.0], [10.1]])
    y = torch.tensor([0, 1, 0])
    out = R.per_query_retrieval_metrics(x, y, relations=REL, metrics=["precision_at_1"], k=1)
    # without the self-exclusion each query would be its own hit
    assert out["precision_at_1"].tolist()[0] == 0.0
    _, idx = R.exact_knn(x, x, 2, ref_includes_query=True)
    assert all(i not in row for i, row in enumerate(idx.tolist()))


def test_absent_query_labels_are_nan_and_left_out():
    q = torch.tensor([[0.0], [1.0], [2.0]])
    yq = torch.tensor([0, 5, 0])
    r = torch.tensor([[0.1], [2.1], [5.0]])
    yr = torch.tensor([0, 1, 0])
    per = R.per_query_retrieval_metrics(q, yq, r, yr, relations=REL, k=1)
    assert all(math.isnan(float(v[1])) for v in per.values())
    means = R.retrieval_metrics(q, yq, r, yr, relations=REL, k=1)
    assert means["precision_at_1"] == 0.5  # queries 0 (hit) and 2 (miss) only
    none = R.retrieval_metrics(q[1:2], yq[1:2], r, yr, relations=REL, k=1)
    assert all(math.isnan(v) for v in none.values())


def test_self_is_the_only_one_of_its_class_is_lone():
    x = torch.tensor([[0.0], [1.0], [1.1]])
    y = torch.tensor([3, 1, 1])
    per = R.per_query_retrieval_metrics(x, y, relations=REL, k=1, metrics=["precision_at_1"])
    assert math.isnan(float(per["precision_at_1"][0]))
    assert per["precision_at_1"][1:].tolist() == [1.0, 1.0]


# ------------------------------------------------------------------ kNN
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("ref_includes_query", [False, True])
def test_chunked_knn_equals_dense(distance, ref_includes_query, device):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(37, 6, generator=g, dtype=torch.float64)
    r = torch.cat([q, torch.randn(20, 6, generator=g, dtype=torch.float64)])
    if not ref_includes_query:
        r = r[37:]
    q, r = q.to(device), r.to(device)
    if distance == "euclidean":
        dense = torch.cdist(q, r) ** 2
    else:
        dense = -(
            torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(r, dim=1).T
        )
    if ref_includes_query:
        dense[torch.arange(37), torch.arange(37)] = math.inf
    dv, di = torch.topk(dense, 5, dim=1, largest=False)
    for cs in (1, 4, 1000):
        d, i = R.exact_knn(
            q, r, 5, ref_includes_query=ref_includes_query, distance=distance, chunk_size=cs
        )
        assert torch.equal(i, di)
        expect = dv if distance == "euclidean" else -dv
        torch.testing.assert_close(d, expect, rtol=1e-9, atol=1e-9)


def test_external_knn_fn_matches_builtin():
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.inference import CustomKNN

    q, yq, r, yr = make_data(5, 12, 10, True, n_labels=4)
    args = [torch.from_numpy(a) for a in (q, yq, r, yr)]
    knn = CustomKNN(LpDistance(normalize_embeddings=False, power=2))
    a = R.per_query_retrieval_metrics(
        *args, relations=REL, metrics=ALL, k=3, ref_includes_query=True, chunk_size=5
    )
    b = R.per_query_retrieval_metrics(
        *args, relations=REL, metrics=ALL, k=3, ref_includes_query=True, chunk_size=5, knn_fn=knn
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], equal_nan=True)


def test_callable_distance():
    q, yq, r, yr = make_data(6, 8, 9, False, n_labels=3)
    args = [torch.from_numpy(a) for a in (q, yq, r, yr)]
    a = R.retrieval_metrics(*args, relations=REL, k=2)
    b = R.retrieval_metrics(*args, relations=REL, k=2, distance=lambda x, y: torch.cdist(x, y))
    assert a == pytest.approx(b, nan_ok=True)


# ------------------------------------------------------------------ bad input
def test_bad_inputs():
    x = torch.randn(5, 3)
    y = torch.tensor([0, 1, 0, 1, 2])
    err = sm.SentimentMetricError
    with pytest.raises(err, match="query_labels has 4 entries"):
        R.retrieval_metrics(x, y[:4], relations=REL)
    with pytest.raises(err, match="larger than the reference set"):
        R.retrieval_metrics(x, y, relations=REL, k=5)  # 4 candidates besides the query
    with pytest.raises(err, match="precision_at_9"):
        R.retrieval_metrics(x, y, relations=REL, k=2, metrics=["precision_at_9"])
    with pytest.raises(err, match="larger than the reference set"):
        R.exact_knn(x, x, 5, ref_includes_query=True)
    bad = x.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(err, match="NaN"):
        R.retrieval_metrics(bad, y, relations=REL, k=2)
    with pytest.raises(err, match="known: precision_at_1"):
        R.retrieval_metrics(x, y, relations=REL, k=2, metrics=["map@r"])
    with pytest.raises(err, match=r"must lie in \[0, 7\]"):
        R.retrieval_metrics(x, torch.tensor([0, 1, 9, 1, 2]), relations=REL, k=2)
    with pytest.raises(err, match="same embedding size"):
        R.retrieval_metrics(x, y, torch.randn(4, 2), y[:4], relations=REL, k=2)
    with pytest.raises(err, match="relations= is needed"):
        R.retrieval_metrics(x, y, k=2, metrics=["wheel_ndcg_at_k"])
    with pytest.raises(err, match="distance must be"):
        R.exact_knn(x, x, 2, distance="manhattan")  # type: ignore[arg-type]
    with pytest.raises(err, match="reference_labels"):
        R.retrieval_metrics(x, y, x, relations=REL)
    with pytest.raises(err, match="no candidate"):
        R.retrieval_metrics(x[:1], y[:1], relations=REL, k=1)
    with pytest.raises(err, match="deeper than the ranking"):
        R.precision_at_k(torch.tensor([[0, 1]]), torch.tensor([0]), 3)
    with pytest.raises(err, match="tier must be"):
        R.tier_precision(torch.tensor([[0, 1]]), torch.tensor([0]), torch.tensor([1]), tier=3)
    with pytest.raises(err, match="k must be"):
        R.retrieval_metrics(x, y, relations=REL, k=0)


def test_measure_arguments_are_checked_before_indexing():
    """Every argument a measure indexes with is refused by name, never a raw torch error."""
    err = sm.SentimentMetricError
    ranked, q = torch.tensor([[0, 1, 2], [2, 1, 0]]), torch.tensor([0, 2])
    with pytest.raises(err, match="num_relevant has 1 entries"):
        R.average_precision(ranked, q, torch.tensor([1]))
    with pytest.raises(err, match="num_relevant must hold counts >= 0"):
        R.r_precision(ranked, q, torch.tensor([-1, 1]))
    with pytest.raises(err, match="num_relevant must be an int >= 0"):
        R.nmrr(ranked, q, -1, gtm=2)
    with pytest.raises(err, match="num_relevant reaches 4 but ranked_labels holds only 3"):
        R.r_precision(ranked, q, torch.tensor([4, 1]))  # a truncated ranking: too low a value
    with pytest.raises(err, match="num_relevant reaches 4"):
        R.average_precision(ranked, q, torch.tensor([4, 1]), at_r=True)
    with pytest.raises(err, match=r"query_labels must lie in \[0, 2\]"):
        R.polarity_precision_at_k(ranked, torch.tensor([0, 3]), torch.tensor([0, 0, 1]), 2)
    with pytest.raises(err, match=r"ranked_labels must lie in \[0, 1\]"):
        R.mean_wheel_distance_at_k(ranked, torch.tensor([0, 1]), torch.ones(2, 2), 2)
    with pytest.raises(err, match=r"dis must be a square \(C, C\) matrix"):
        R.mean_wheel_distance_at_k(ranked, q, torch.ones(3, 4), 2)
    gain = torch.eye(3, dtype=torch.float64)
    with pytest.raises(err, match="relevance must be a square"):
        R.wheel_ndcg_at_k(ranked, q, gain[:2], 2, torch.ones(3))
    with pytest.raises(err, match="candidate_counts must have one count per class"):
        R.wheel_ndcg_at_k(ranked, q, gain, 2, torch.ones(2))
    with pytest.raises(err, match=r"candidate_counts must have shape \(2, C\)"):
        R.wheel_ndcg_at_k(ranked, q, gain, 2, torch.ones(3, 3))
    with pytest.raises(err, match="groups has 3 entries but class_names has 2"):
        R.wheel_order(["amusement", "awe"], torch.tensor([0, 0, 1]), sm.MIKELS_WHEEL.index)
    with pytest.raises(err, match="groups must have shape"):
        R.wheel_order(None, torch.zeros(2, 2))
    with pytest.raises(err, match=r"preds must lie in \[0, 1\]"):
        R.polarity_accuracy(torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(err, match=r"labels must lie in \[0, 2\]"):
        R.mean_wheel_distance_of_errors(
            torch.tensor([0, 1]), torch.tensor([0, -1]), REL.dis[:3, :3]
        )
    with pytest.raises(err, match="preds is empty"):
        R.polarity_accuracy(torch.tensor([], dtype=torch.long), torch.tensor([]), REL.groups)
    with pytest.raises(err, match="metrics: unknown retrieval metric 'nope'"):
        R.retrieval_metrics(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), metrics=["nope"])
    with pytest.raises(err, match="metrics must be a list"):
        R.retrieval_metrics(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), metrics="anmrr")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32, torch.float32])
def test_measures_read_any_label_dtype_as_class_indices(dtype):
    """``uint8`` ranked labels are class indices, never a boolean mask (issue 10)."""
    ranked, q = torch.tensor([[1, 2, 0], [0, 3, 3]]), torch.tensor([0, 3])
    groups, gain = REL.groups[:4], torch.eye(4, dtype=torch.float64)
    dis = REL.dis[:4, :4]
    for f in (
        lambda r, y: R.polarity_precision_at_k(r, y, groups, 3),
        lambda r, y: R.mean_wheel_distance_at_k(r, y, dis, 2),
        lambda r, y: R.wheel_ndcg_at_k(r, y, gain, 2, torch.ones(4)),
        lambda r, y: R.average_precision(r, y, torch.tensor([1, 2], dtype=dtype)),
        lambda r, y: R.r_precision(r, y, 1),
    ):
        assert torch.equal(f(ranked.to(dtype), q.to(dtype)), f(ranked, q))
    assert R.polarity_accuracy(q.to(dtype), q, groups) == 1.0


def test_exact_knn_refuses_non_finite_unless_told_not_to():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    bad = x.clone()
    bad[2, 0] = float("inf")
    with pytest.raises(sm.SentimentMetricError, match="query must be finite"):
        R.exact_knn(bad, None, 2)
    with pytest.raises(sm.SentimentMetricError, match="reference must be finite"):
        R.exact_knn(x, bad, 2)
    _, i = R.exact_knn(bad, None, 2, validate=False)  # the caller's promise: no check
    assert i.shape == (6, 2)
