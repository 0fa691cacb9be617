"""AffectiveAccuracyCalculator (a PML AccuracyCalculator) and classification_report."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

import sentiment_metric as sm
from sentiment_metric import retrieval as M
from sentiment_metric.functional import retrieval as R

FI = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
PML_SHARED = [
    "precision_at_1",
    "r_precision",
    "mean_average_precision_at_r",
    "mean_average_precision",
    "mean_reciprocal_rank",
]
HAS_FAISS = M.knn.faiss_available()


def data(seed=0, m=40, extra=15, n_labels=8, ref_includes_query=True, absent=()):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(m, 4, generator=g, dtype=torch.float64)
    yq = torch.randint(0, n_labels, (m,), generator=g)
    r = torch.randn(extra, 4, generator=g, dtype=torch.float64)
    pool = torch.tensor([c for c in range(n_labels) if c not in absent])
    yr = pool[torch.randint(0, len(pool), (extra,), generator=g)]
    if ref_includes_query:
        r, yr = torch.cat([q, r]), torch.cat([yq, yr])
    return q, yq, r, yr


def pml(k, **kw):
    knn = CustomKNN(LpDistance(normalize_embeddings=False, power=2))
    return AccuracyCalculator(
        include=tuple(PML_SHARED), k=k, knn_func=knn, device=torch.device("cpu"), **kw
    )


@pytest.mark.parametrize("ref_includes_query", [True, False])
@pytest.mark.parametrize("k", [None, "max_bin_count", 14])
def test_agrees_with_pml_where_definitions_coincide(ref_includes_query, k):
    q, yq, r, yr = data(ref_includes_query=ref_includes_query, absent=(7,))
    ours = sm.AffectiveAccuracyCalculator(class_names=FI, k=k, include=PML_SHARED, chunk_size=7)
    a = ours.get_accuracy(q, yq, r, yr, ref_includes_query)
    b = pml(k).get_accuracy(q, yq, r, yr, ref_includes_query)
    assert set(a) == set(PML_SHARED)
    for name in PML_SHARED:  # PML's MRR goes through float32
        assert a[name] == pytest.approx(b[name], rel=1e-6), name


def test_per_class_and_avg_of_avgs_follow_pml():
    q, yq, _, _ = data(seed=2, m=50, n_labels=5)
    for kw in ({"avg_of_avgs": True}, {"return_per_class": True}):
        ours = sm.AffectiveAccuracyCalculator(
            class_names=FI, k="max_bin_count", include=PML_SHARED, **kw
        )
        a = ours.get_accuracy(q, yq)
        b = pml("max_bin_count", **kw).get_accuracy(q, yq)
        for name in PML_SHARED:
            assert np.allclose(a[name], b[name], rtol=1e-6), name
    assert sm.AffectiveAccuracyCalculator(class_names=FI, avg_of_avgs=True).description() == (
        "avg_of_avgs"
    )


def test_r_metrics_exact_whatever_k():
    """PML truncates R-precision and MAP@R at k; ours are computed to R whatever k."""
    q, yq, _, _ = data(seed=4, m=60, n_labels=3)
    deep = sm.AffectiveAccuracyCalculator(class_names=FI, k=None).get_accuracy(q, yq)
    shallow = sm.AffectiveAccuracyCalculator(class_names=FI, k=2).get_accuracy(q, yq)
    for name in (
        "r_precision",
        "mean_average_precision_at_r",
        "first_tier",
        "second_tier",
        "anmrr",
    ):
        assert deep[name] == shallow[name]


def test_values_equal_the_functional_engine_and_keys():
    q, yq, r, yr = data(seed=1)
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=5, precision_at_ks=(1, 5, 10))
    got = calc.get_accuracy(q, yq, r, yr, True)
    assert {"NMI", "AMI"} <= set(got)  # PML's default set: clustering included
    got = {n: v for n, v in got.items() if n not in ("NMI", "AMI")}
    names = [*R.RETRIEVAL_METRICS, "precision_at_5", "precision_at_10"]
    expect = R.retrieval_metrics(
        q, yq, r, yr, relations=calc.relations, k=5, metrics=names, ref_includes_query=True
    )
    assert set(got) == set(names)
    for name in names:
        assert got[name] == pytest.approx(expect[name], rel=1e-12), name
    assert got["first_tier"] == got["r_precision"]


def test_include_exclude_and_unknown_names():
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, include=["anmrr", "precision_at_5"])
    assert calc.get_curr_metrics() == ["anmrr", "precision_at_5"]
    q, yq, _, _ = data()
    assert set(calc.get_accuracy(q, yq, exclude=["anmrr"])) == {"precision_at_5"}
    with pytest.raises(sm.SentimentMetricError, match="known: .*wheel_ndcg_at_k"):
        sm.AffectiveAccuracyCalculator(class_names=FI, include=["wheel_ndcg"])
    with pytest.raises(sm.SentimentMetricError, match="unknown metric name.*exclude"):
        sm.AffectiveAccuracyCalculator(class_names=FI, exclude=["map"])
    with pytest.raises(sm.SentimentMetricError, match="known"):
        sm.AffectiveAccuracyCalculator(class_names=FI).get_accuracy(q, yq, include=["nope"])
    assert isinstance(sm.AffectiveAccuracyCalculator(class_names=FI), AccuracyCalculator)


def test_ref_includes_query_never_counts_self():
    x = torch.tensor([[0.0], [5.0], [5.1], [0.2]])
    y = torch.tensor([0, 1, 1, 2])
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=1, include=["precision_at_1"])
    # query 0 and 3 are lone (own class only themselves); 1 and 2 find each other
    assert calc.get_accuracy(x, y)["precision_at_1"] == 1.0
    y2 = torch.tensor([0, 1, 1, 0])
    assert calc.get_accuracy(x, y2)["precision_at_1"] == 1.0
    far = torch.tensor([[0.0], [5.0], [5.1], [9.0]])
    assert calc.get_accuracy(far, y2)["precision_at_1"] == 0.5


def test_lone_queries_like_pml(caplog):
    q, yq, r, yr = data(seed=3, ref_includes_query=False, absent=(0, 1, 2))
    ours = sm.AffectiveAccuracyCalculator(class_names=FI, k="max_bin_count", include=PML_SHARED)
    a = ours.get_accuracy(q, yq, r, yr)
    b = pml("max_bin_count").get_accuracy(q, yq, r, yr)
    for name in PML_SHARED:
        assert a[name] == pytest.approx(b[name], rel=1e-6)
    only_lone = yq < 3
    with caplog.at_level(logging.WARNING):
        c = ours.get_accuracy(q[only_lone], yq[only_lone], r, yr)
    assert all(math.isnan(v) for v in c.values())
    assert "None of the query labels" in caplog.text


def test_perfect_embedding_and_opposite_polarity_first():
    y = torch.arange(8).repeat(5)
    x = torch.nn.functional.one_hot(y, 8).double()
    x = x + 0.01 * torch.randn(
        len(y), 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    acc = sm.AffectiveAccuracyCalculator(class_names=FI, k=4, precision_at_ks=(1, 4)).get_accuracy(
        x, y
    )
    assert acc["anmrr"] == pytest.approx(0.0, abs=1e-12)
    assert acc["mean_wheel_distance_at_k"] == 0.0
    assert math.isnan(acc["group_miss_share_at_k"])  # no other class in any top 4
    # one-hot classes ignore polarity: same-polarity classes are no nearer than the others
    assert 0.0 < acc["hierarchical_average_precision"] < 1.0
    assert all(
        v == pytest.approx(1.0)
        for n, v in acc.items()
        if n
        not in (
            "anmrr",
            "mean_wheel_distance_at_k",
            "group_miss_share_at_k",
            "hierarchical_average_precision",
            "NMI",  # k-means: own test
            "AMI",
        )
    )
    # on a line: amusement(0) then its wheel neighbours, or then the opposite polarity
    labels = torch.tensor([0, 0, 3, 2, 6, 7])  # FI: amusement x2, contentment, awe, fear, sadness
    near = torch.tensor([[0.0], [0.1], [1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    far = torch.tensor([[0.0], [0.1], [3.0], [4.0], [1.0], [2.0]], dtype=torch.float64)
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=3, precision_at_ks=())
    a = calc.get_accuracy(near[:1], labels[:1], near, labels, True)
    b = calc.get_accuracy(far[:1], labels[:1], far, labels, True)
    assert a["wheel_ndcg_at_k"] > b["wheel_ndcg_at_k"]
    assert a["polarity_precision_at_k"] > b["polarity_precision_at_k"]
    assert a["mean_wheel_distance_at_k"] < b["mean_wheel_distance_at_k"]


def test_distances_and_knn_backends_agree():
    q, yq, r, yr = data(seed=5, m=30, n_labels=4)
    base = sm.AffectiveAccuracyCalculator(class_names=FI, k=4).get_accuracy(q, yq, r, yr, True)
    custom = sm.AffectiveAccuracyCalculator(
        class_names=FI, k=4, knn_func=CustomKNN(LpDistance(normalize_embeddings=False))
    ).get_accuracy(q, yq, r, yr, True)
    assert custom == pytest.approx(base)
    lp = sm.AffectiveAccuracyCalculator(
        class_names=FI, k=4, distance=LpDistance(normalize_embeddings=False)
    ).get_accuracy(q, yq, r, yr, True)
    assert lp == pytest.approx(base)
    cos = sm.AffectiveAccuracyCalculator(class_names=FI, k=4, distance="cosine")
    cos_pml = sm.AffectiveAccuracyCalculator(class_names=FI, k=4, distance=CosineSimilarity())
    assert cos.get_accuracy(q, yq, r, yr, True) == pytest.approx(
        cos_pml.get_accuracy(q, yq, r, yr, True)
    )
    if HAS_FAISS:
        fa = sm.AffectiveAccuracyCalculator(class_names=FI, k=4, knn="faiss")
        assert fa.get_accuracy(q, yq, r, yr, True) == pytest.approx(base)
        fc = sm.AffectiveAccuracyCalculator(class_names=FI, k=4, knn="faiss", distance="cosine")
        assert fc.get_accuracy(q, yq, r, yr, True) == pytest.approx(
            cos.get_accuracy(q, yq, r, yr, True)
        )


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_faiss_index_follows_in_place_changes():
    knn = M.FaissFlatKNN()
    r = torch.tensor([[0.0], [1.0], [3.0]])
    q = torch.tensor([[2.9]])
    assert knn(q, 1, r)[1].item() == 2
    r[0, 0] = 2.95
    assert knn(q, 1, r)[1].item() == 0
    knn.reset()
    assert "FaissFlatKNN" in repr(knn)


def test_runs_without_faiss(monkeypatch):
    monkeypatch.setattr(M.knn, "faiss_available", lambda: False)
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=2, include=["precision_at_1", "NMI"])
    q, yq, _, _ = data(seed=6, m=24, n_labels=3)
    out = calc.get_accuracy(q.float(), yq)
    assert 0.0 <= out["NMI"] <= 1.0 and 0.0 <= out["precision_at_1"] <= 1.0
    with pytest.raises(sm.SentimentMetricError, match="pip install faiss-cpu"):
        sm.AffectiveAccuracyCalculator(class_names=FI, knn="faiss")


def test_torch_knn_is_a_pml_knn_func():
    q, yq, r, yr = data(seed=7, m=20, n_labels=4)
    ours = AccuracyCalculator(
        include=tuple(PML_SHARED),
        k=3,
        knn_func=M.TorchKNN(chunk_size=3),
        device=torch.device("cpu"),
    )
    theirs = pml(3)
    assert ours.get_accuracy(q, yq, r, yr, True) == pytest.approx(
        theirs.get_accuracy(q, yq, r, yr, True)
    )


def test_subclass_knn_metric_gets_knn_labels():
    class WithCustom(sm.AffectiveAccuracyCalculator):
        def requires_knn(self):
            return [*super().requires_knn(), "first_neighbour_is_class_0"]

        def calculate_first_neighbour_is_class_0(self, knn_labels, **kwargs):
            return float((knn_labels[:, 0] == 0).double().mean())

    x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    y = torch.tensor([0, 0, 1, 1])
    calc = WithCustom(class_names=FI, k=1, include=["first_neighbour_is_class_0"])
    assert calc.get_accuracy(x, y) == {"first_neighbour_is_class_0": 0.5}


def test_pml_tester_takes_it():
    from pytorch_metric_learning import testers

    g = torch.Generator().manual_seed(0)
    y = torch.arange(8).repeat(4)
    x = torch.nn.functional.one_hot(y, 8).float() + 0.01 * torch.randn(32, 8, generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    calc = sm.AffectiveAccuracyCalculator(
        class_names=FI, k=3, include=["precision_at_1", "wheel_ndcg_at_k"]
    )
    tester = testers.GlobalEmbeddingSpaceTester(
        accuracy_calculator=calc, dataloader_num_workers=0, data_device=torch.device("cpu")
    )
    acc = tester.test({"val": ds}, 0, torch.nn.Identity())
    assert acc["val"]["precision_at_1_level0"] == 1.0
    assert acc["val"]["wheel_ndcg_at_k_level0"] == pytest.approx(1.0)


def test_numpy_inputs_and_repr():
    q, yq, _, _ = data(seed=8, m=16, n_labels=3)
    calc = sm.AffectiveAccuracyCalculator(relations=sm.MIKELS_WHEEL.relations(FI), k=2)
    a = calc.get_accuracy(q.numpy(), yq.numpy())
    b = calc.get_accuracy(q, yq)
    assert a == pytest.approx(b, nan_ok=True)
    assert "k=2" in repr(calc) and "TorchKNN" in repr(M.TorchKNN())


def test_calculator_bad_inputs():
    err = sm.SentimentMetricError
    q, yq, r, yr = data(m=6, extra=0, n_labels=2)
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=2, precision_at_ks=(1,))
    with pytest.raises(err, match="query_labels has 5 entries"):
        calc.get_accuracy(q, yq[:5])
    with pytest.raises(err, match="reference_labels has 5 entries"):
        calc.get_accuracy(q, yq, r, yr[:5])
    with pytest.raises(err, match="larger than the reference set"):
        sm.AffectiveAccuracyCalculator(class_names=FI, k=6).get_accuracy(q, yq)
    with pytest.raises(err, match="precision_at_10"):
        sm.AffectiveAccuracyCalculator(class_names=FI, k=1).get_accuracy(q, yq)
    bad = q.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(err, match="NaN"):
        calc.get_accuracy(bad, yq)
    with pytest.raises(err, match=r"must lie in \[0, 7\]"):
        calc.get_accuracy(q, torch.tensor([0, 1, 2, 3, 4, 8]))
    with pytest.raises(err, match="first len\\(query\\) rows"):
        calc.get_accuracy(q, yq, r.flip(0), yr, True)
    with pytest.raises(err, match="integer class indices"):
        calc.get_accuracy(q, yq.float() + 0.5)
    with pytest.raises(err, match="k must be"):
        sm.AffectiveAccuracyCalculator(class_names=FI, k=0)
    with pytest.raises(err, match="knn must be one of"):
        sm.AffectiveAccuracyCalculator(class_names=FI, knn="annoy")
    with pytest.raises(err, match="distance must be one of"):
        sm.AffectiveAccuracyCalculator(class_names=FI, distance="l1")
    with pytest.raises(err, match="precision_at_ks"):
        sm.AffectiveAccuracyCalculator(class_names=FI, precision_at_ks=(0,))
    with pytest.raises(err, match="mutually exclusive"):
        sm.AffectiveAccuracyCalculator(class_names=FI, avg_of_avgs=True, return_per_class=True)
    with pytest.raises(err, match="class_names= .* or relations="):
        sm.AffectiveAccuracyCalculator()


# ------------------------------------------------------------------ classification_report
def test_classification_report_values():
    from sklearn.metrics import f1_score

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 8, (60,), generator=g)
    logits = torch.randn(60, 8, generator=g)
    preds = logits.argmax(1)
    rep = sm.classification_report(logits, labels, class_names=FI)
    assert rep == sm.classification_report(preds, labels, class_names=FI)
    json.dumps(rep, allow_nan=False)
    rel = sm.MIKELS_WHEEL.relations(FI)
    assert rep["accuracy"] == pytest.approx(float((preds == labels).double().mean()))
    pol = [int(rel.groups[p] == rel.groups[t]) for p, t in zip(preds.tolist(), labels.tolist())]
    assert rep["polarity_accuracy"] == pytest.approx(sum(pol) / 60)
    errs = [rel.dis[p, t].item() - 1 for p, t in zip(preds.tolist(), labels.tolist()) if p != t]
    assert rep["mean_wheel_distance_of_errors"] == pytest.approx(sum(errs) / len(errs))
    f1 = f1_score(labels.numpy(), preds.numpy(), labels=range(8), average=None, zero_division=0)
    assert [rep["per_class"][n]["f1"] for n in FI] == pytest.approx(list(f1))
    assert sum(v["support"] for v in rep["per_class"].values()) == 60
    assert rep["confusion_order"] == list(sm.MIKELS_WHEEL.emotions)
    order = rep["confusion_order_labels"]
    cm = rep["confusion_matrix"]
    for i, t in enumerate(order):
        for j, p in enumerate(order):
            assert cm[i][j] == int(((labels == t) & (preds == p)).sum())


def test_classification_report_perfect_and_groups():
    rel = sm.LabelRelations.from_groups([1, 0, 1], class_names=["a", "b", "c"])
    y = torch.tensor([0, 1, 2, 2])
    rep = sm.classification_report(y.numpy(), y.tolist(), relations=rel)
    assert rep["accuracy"] == 1.0 and rep["mean_wheel_distance_of_errors"] is None
    assert rep["confusion_order"] == ["b", "a", "c"]  # by group, then label
    json.dumps(rep, allow_nan=False)


def test_classification_report_bad_inputs():
    err = sm.SentimentMetricError
    y = torch.tensor([0, 1, 2])
    with pytest.raises(err, match=r"shape \(B, 8\)"):
        sm.classification_report(torch.randn(3, 5), y, class_names=FI)
    with pytest.raises(err, match="must match"):
        sm.classification_report(torch.randn(4, 8), y, class_names=FI)
    with pytest.raises(err, match=r"must lie in \[0, 7\]"):
        sm.classification_report(torch.tensor([0, 9, 1]), y, class_names=FI)
    with pytest.raises(err, match=r"must lie in \[0, 7\]"):
        sm.classification_report(y, torch.tensor([0, 1, 8]), class_names=FI)
    bad = torch.randn(3, 8)
    bad[0, 0] = float("nan")
    with pytest.raises(err, match="NaN"):
        sm.classification_report(bad, y, class_names=FI)
    with pytest.raises(err, match="logits or"):
        sm.classification_report(torch.randn(3, 8, 1), y, class_names=FI)
    with pytest.raises(err, match="empty"):
        sm.classification_report(
            torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), class_names=FI
        )


# ------------------------------------------------------------------ issue 11: PML's k, NMI/AMI
WHEEL_MEASURES = ["polarity_precision_at_k", "wheel_ndcg_at_k", "mean_wheel_distance_at_k"]


def clustered(seed=0, n=400, d=16):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(8).repeat_interleave(n // 8)
    x = torch.randn(8, d, generator=g)[y] + 1.5 * torch.randn(n, d, generator=g)
    return x, y


def test_wheel_measures_keep_their_depth_under_pml_k():
    x, y = clustered()
    ten = sm.AffectiveAccuracyCalculator(class_names=FI, k=10, include=WHEEL_MEASURES)
    expect = ten.get_accuracy(x, y)
    for k in ("max_bin_count", None):  # PML's data-dependent depths never reach them
        calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=k, include=WHEEL_MEASURES)
        assert calc.get_accuracy(x, y) == expect, k
    deep = sm.AffectiveAccuracyCalculator(class_names=FI, k=None, wheel_k=49)
    at49 = sm.AffectiveAccuracyCalculator(class_names=FI, k=49, include=WHEEL_MEASURES)
    got = deep.get_accuracy(x, y)
    assert {n: got[n] for n in WHEEL_MEASURES} == at49.get_accuracy(x, y)
    assert got["polarity_precision_at_k"] < expect["polarity_precision_at_k"]
    assert "wheel_k=49" in repr(deep)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(sm.SentimentMetricError, match="wheel_k"):
            sm.AffectiveAccuracyCalculator(class_names=FI, wheel_k=bad)


def test_precision_at_1_does_not_depend_on_include():
    g = torch.Generator().manual_seed(3)
    # clusters of near-duplicates far from the origin: float32 rounding alone orders them
    base = torch.randn(60, 32, generator=g).repeat_interleave(4, 0)
    x = (base + 1e-4 * torch.randn(240, 32, generator=g) + 30.0).float()
    y = torch.randint(0, 8, (240,), generator=g)
    d = ((x.double()[:, None] - x.double()[None]) ** 2).sum(-1)
    d.fill_diagonal_(math.inf)
    expect = float((y[d.argmin(dim=1)] == y).double().mean())
    got = set()
    for include in ([], ["precision_at_1"], ["precision_at_1", "anmrr"], PML_SHARED):
        for k in (1, 10, "max_bin_count", None):
            calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=k, include=include)
            got.add(calc.get_accuracy(x, y)["precision_at_1"])
    assert got == {expect}


@pytest.mark.parametrize("faiss", [False, True])
def test_nmi_ami_by_default_with_or_without_faiss(monkeypatch, faiss):
    if faiss and not HAS_FAISS:
        pytest.skip("faiss not installed")
    monkeypatch.setattr(M.knn, "faiss_available", lambda: faiss)
    x, y = clustered(1, n=800)
    out = sm.AffectiveAccuracyCalculator(class_names=FI).get_accuracy(x, y)
    assert {"NMI", "AMI"} <= set(out)
    assert 0.3 < out["AMI"] <= out["NMI"] <= 1.0
    out = sm.AffectiveAccuracyCalculator(class_names=FI, exclude=["NMI", "AMI"]).get_accuracy(x, y)
    assert "NMI" not in out


def test_nmi_ami_in_pml_tester_output_without_faiss(monkeypatch):
    from pytorch_metric_learning import testers

    monkeypatch.setattr(M.knn, "faiss_available", lambda: False)
    x, y = clustered(2, n=160)
    dataset = torch.utils.data.TensorDataset(x, y)
    tester = testers.GlobalEmbeddingSpaceTester(
        accuracy_calculator=sm.AffectiveAccuracyCalculator(class_names=FI),
        dataloader_num_workers=0,
        batch_size=64,
    )
    acc = tester.test({"val": dataset}, 0, torch.nn.Identity())["val"]
    assert {"NMI_level0", "AMI_level0", "wheel_ndcg_at_k_level0"} <= set(acc)


def test_calculator_half_precision_is_computed_in_float32():
    q, yq, _, _ = data(m=24)
    calc = sm.AffectiveAccuracyCalculator(class_names=FI, k=3, exclude=("NMI", "AMI"))
    for dtype in (torch.bfloat16, torch.float16):
        x = q.to(dtype)
        got = calc.get_accuracy(x, yq)
        assert got == calc.get_accuracy(x.float(), yq), dtype
    # NMI/AMI: PML's k-means reads numpy, which has no bfloat16
    both = sm.AffectiveAccuracyCalculator(class_names=FI, k=3, include=("NMI", "AMI"))
    assert all(math.isfinite(v) for v in both.get_accuracy(q.bfloat16(), yq).values())


def test_calculator_device_is_checked_at_construction():
    with pytest.raises(sm.SentimentMetricError, match="device must be None .*'cuda:1'.*'gpu'"):
        sm.AffectiveAccuracyCalculator(class_names=FI, device="gpu")
    assert sm.AffectiveAccuracyCalculator(class_names=FI, device="cpu").device == torch.device(
        "cpu"
    )
    if not torch.cuda.is_available():
        with pytest.raises(sm.SentimentMetricError, match="torch.cuda.is_available"):
            sm.AffectiveAccuracyCalculator(class_names=FI, device="cuda:0")
