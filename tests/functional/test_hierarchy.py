"""The hierarchy-aware maths against naive float64 references written from the formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
import sentiment_metric.functional as F
import sentiment_metric.functional.hierarchy as H

WHEEL = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
PARITY = sm.LabelRelations.from_groups([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
RELATIONS = {"wheel": WHEEL, "parity": PARITY}


def _naive_smooth_hap(x, y, level, tau, ref=None, ref_y=None):
    """Explicit loops over queries, candidates and rivals, float64."""
    x = torch.nn.functional.normalize(x.double(), dim=1)
    own = ref is None
    r = x if own else torch.nn.functional.normalize(ref.double(), dim=1)
    ry = y if own else ref_y
    out, ok = [], []
    for q in range(len(x)):
        cands = [k for k in range(len(r)) if not (own and k == q)]
        s = {k: float(x[q] @ r[k]) for k in cands}
        rel = {k: (2 - int(level[y[q], ry[k]])) / 2 for k in cands}
        total = sum(rel.values())
        if total == 0:
            out.append(0.0)
            ok.append(False)
            continue
        acc = 0.0
        for k in cands:
            if rel[k] == 0:
                continue
            rank, h_rank = 1.0, rel[k]
            for j in cands:
                if j == k:
                    continue
                sig = 1.0 / (1.0 + math.exp(-(s[j] - s[k]) / tau))
                rank += sig
                h_rank += min(rel[k], rel[j]) * sig
            acc += h_rank / rank
        out.append(acc / total)
        ok.append(True)
    return torch.tensor(out, dtype=torch.float64), torch.tensor(ok)


@pytest.mark.parametrize("name", list(RELATIONS))
def test_centres_realise_the_hierarchy_similarity(name):
    rel = RELATIONS[name]
    c = F.hierarchical_centres(rel.dis, dim=24, seed=3)
    sim = F.hierarchy_similarity(rel.dis)
    torch.testing.assert_close(c @ c.T, sim, atol=1e-10, rtol=0)
    torch.testing.assert_close(c.norm(dim=1), torch.ones(rel.num_classes, dtype=torch.float64))


def test_similarity_formula():
    dis = WHEEL.dis.double()
    for i, j in itertools.product(range(8), repeat=2):
        assert float(F.hierarchy_similarity(WHEEL.dis)[i, j]) == pytest.approx(
            1 - (float(dis[i, j]) - 1) / 4
        )
    one = sm.LabelRelations.from_groups([0])
    assert F.hierarchy_similarity(one.dis).tolist() == [[1.0]]


def test_centres_need_enough_dimensions():
    with pytest.raises(sm.SentimentMetricError, match="dim=4 is too small.*5 dimensions"):
        F.hierarchical_centres(WHEEL.dis, dim=4)
    assert F.hierarchical_centres(WHEEL.dis, dim=5).shape == (8, 5)


def test_proxy_loss_matches_naive_cross_entropy():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 10, generator=g, dtype=torch.float64), torch.arange(12) % 10
    c = F.hierarchical_centres(PARITY.dis, dim=10)
    got = F.hierarchical_proxy_loss(x, y, c, temperature=0.2)
    for i in range(12):
        cos = [float(x[i] @ c[k]) / float(x[i].norm() * c[k].norm()) for k in range(10)]
        logz = math.log(sum(math.exp(v / 0.2) for v in cos))
        assert float(got[i]) == pytest.approx(logz - cos[int(y[i])] / 0.2, rel=1e-10)


def test_proxy_loss_gradcheck():
    x = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    c = F.hierarchical_centres(PARITY.dis, dim=10)
    assert torch.autograd.gradcheck(
        lambda e: F.hierarchical_proxy_loss(e, torch.tensor([0, 1, 2, 3, 4]), c), (x,)
    )


@pytest.mark.parametrize("name", list(RELATIONS))
@pytest.mark.parametrize("tau", [0.01, 0.3])
def test_smooth_hap_matches_naive(name, tau):
    rel = RELATIONS[name]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(14, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, rel.num_classes, (14,), generator=g)
    got, ok = F.smooth_hierarchical_ap(x, y, rel.level, temperature=tau)
    want, want_ok = _naive_smooth_hap(x, y, rel.level, tau)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    assert ok.tolist() == want_ok.tolist()


def test_smooth_hap_with_references_matches_naive():
    g = torch.Generator().manual_seed(2)
    x, r = torch.randn(5, 4, generator=g).double(), torch.randn(9, 4, generator=g).double()
    y, ry = torch.tensor([0, 1, 2, 3, 4]), torch.arange(9)
    got, ok = F.smooth_hierarchical_ap(x, y, PARITY.level, ref_emb=r, ref_labels=ry)
    want, want_ok = _naive_smooth_hap(x, y, PARITY.level, 0.01, r, ry)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    assert ok.tolist() == want_ok.tolist()


def test_smooth_hap_tends_to_the_exact_hap():
    """At a small temperature and well-separated similarities the surrogate is H-AP."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(20, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (20,), generator=g)
    got, _ = F.smooth_hierarchical_ap(x, y, PARITY.level, temperature=1e-7)
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = xn @ xn.T
    sim.fill_diagonal_(-math.inf)
    order = sim.argsort(dim=1, descending=True)[:, :-1]
    exact = F.hierarchical_average_precision(y[order], y, PARITY.groups)
    has = torch.isfinite(exact)
    torch.testing.assert_close(got[has], exact[has].double(), atol=1e-4, rtol=0)


def test_smooth_hap_chunked_equals_whole(monkeypatch):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(16, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 8, (16,), generator=g)
    whole, _ = F.smooth_hierarchical_ap(x, y, WHEEL.level, temperature=0.1)
    (gw,) = torch.autograd.grad(whole.sum(), x)
    monkeypatch.setattr(H, "_CHUNK_ELEMENTS", 3 * 16 * 16)
    chunked, _ = F.smooth_hierarchical_ap(x, y, WHEEL.level, temperature=0.1)
    (gc,) = torch.autograd.grad(chunked.sum(), x)
    torch.testing.assert_close(chunked, whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(gc, gw, atol=1e-12, rtol=0)


def test_smooth_hap_gradcheck():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(
        lambda e: F.smooth_hierarchical_ap(e, y, PARITY.level, temperature=0.2)[0], (x,)
    )


def test_expected_cost_predictions_matches_naive():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(30, 8, generator=g) * 2
    got = F.expected_cost_predictions(logits, WHEEL.dis)
    p = torch.softmax(logits.double(), dim=1)
    cost = 1 - F.hierarchy_similarity(WHEEL.dis)
    for i in range(30):
        risks = [sum(float(p[i, j] * cost[k, j]) for j in range(8)) for k in range(8)]
        assert int(got[i]) == min(range(8), key=risks.__getitem__)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 9), st.floats(6.0, 30.0))
def test_confident_predictions_are_kept(label, margin):
    """A class whose probability exceeds 1/2 has the least expected cost (cost in [0, 1])."""
    logits = torch.zeros(1, 10)
    logits[0, label] = margin
    assert int(F.expected_cost_predictions(logits, PARITY.dis)) == label


@pytest.mark.parametrize("name", list(RELATIONS))
def test_expected_cost_embedding_is_distance_plus_expected_cost(name):
    rel = RELATIONS[name]
    c = rel.num_classes
    g = torch.Generator().manual_seed(7)
    e, logits = torch.randn(9, 5, generator=g), torch.randn(9, c, generator=g)
    w = 1.7
    z = F.expected_cost_embedding(e, logits, rel.dis, w)
    en = torch.nn.functional.normalize(e.double(), dim=1)
    p = torch.softmax(logits.double(), dim=1)
    cost = 1 - F.hierarchy_similarity(rel.dis)
    for q, x in itertools.product(range(9), repeat=2):
        want = float((en[q] - en[x]).pow(2).sum()) + w * float(p[q] @ cost @ p[x])
        assert 2 + w - 2 * float(z[q] @ z[x]) == pytest.approx(want, abs=1e-10)


def test_zero_weight_is_cosine_retrieval():
    e, logits = torch.randn(6, 3), torch.randn(6, 10)
    z = F.expected_cost_embedding(e, logits, PARITY.dis, 0.0)
    torch.testing.assert_close(z[:, :3], torch.nn.functional.normalize(e.double(), dim=1))
    assert bool((z[:, 3:] == 0).all())
