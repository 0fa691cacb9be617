"""HierarchicalProxyLoss and HierarchicalAPLoss as PML losses: drop-in behaviour."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.reducers import SumReducer

import sentiment_metric as sm
import sentiment_metric.functional as F

NAMES = sm.MIKELS_WHEEL.emotions
PARITY = sm.LabelRelations.from_groups([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])


def _batch(b=16, d=8, c=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.arange(b) % c


def test_proxy_loss_is_the_mean_of_the_functional():
    loss_fn = sm.HierarchicalProxyLoss(embedding_size=8, class_names=NAMES, temperature=0.2)
    x, y = _batch()
    want = F.hierarchical_proxy_loss(x, y, loss_fn.centres, temperature=0.2).mean()
    torch.testing.assert_close(loss_fn(x, y), want)
    sums = sm.HierarchicalProxyLoss(8, class_names=NAMES, temperature=0.2, reducer=SumReducer())
    torch.testing.assert_close(sums(x, y), want * 16)


def test_proxy_centres_are_a_buffer_with_the_wheel_geometry():
    loss_fn = sm.HierarchicalProxyLoss(embedding_size=8, class_names=NAMES)
    assert not list(loss_fn.parameters())
    c = loss_fn.centres.double()
    torch.testing.assert_close(c @ c.T, F.hierarchy_similarity(loss_fn.relations.dis), atol=1e-6,
                               rtol=0)  # fmt: skip
    logits = loss_fn.get_logits(c.float())
    assert logits.argmax(1).tolist() == list(range(8))
    assert "embedding_size=8" in repr(loss_fn)


def test_proxy_loss_trains_to_the_centres():
    torch.manual_seed(0)
    loss_fn = sm.HierarchicalProxyLoss(embedding_size=12, relations=PARITY)
    x = torch.randn(40, 12, requires_grad=True)
    y = torch.arange(40) % 10
    opt = torch.optim.SGD([x], lr=5.0)
    for _ in range(200):
        opt.zero_grad()
        loss_fn(x, y).backward()
        opt.step()
    cos = torch.nn.functional.normalize(x.detach(), dim=1) @ loss_fn.centres.T
    assert (cos.argmax(1) == y).all()


def test_hap_loss_is_one_minus_the_mean_surrogate():
    loss_fn = sm.HierarchicalAPLoss(relations=PARITY, temperature=0.05)
    x, y = _batch(c=10)
    hap, ok = F.smooth_hierarchical_ap(x, y, PARITY.level, temperature=0.05)
    torch.testing.assert_close(loss_fn(x, y), (1 - hap[ok]).mean())


def test_hap_loss_with_ref_emb():
    loss_fn = sm.HierarchicalAPLoss(relations=PARITY)
    x, y = _batch(b=6, c=10, seed=1)
    r, ry = _batch(b=20, c=10, seed=2)
    hap, ok = F.smooth_hierarchical_ap(x, y, PARITY.level, ref_emb=r, ref_labels=ry)
    torch.testing.assert_close(loss_fn(x, y, ref_emb=r, ref_labels=ry), (1 - hap[ok]).mean())


def test_nothing_to_rank_is_zero_and_connected():
    x = torch.randn(1, 4, requires_grad=True)
    out = sm.HierarchicalAPLoss(class_names=NAMES)(x, torch.tensor([0]))
    assert float(out.detach()) == 0.0
    out.backward()
    assert x.grad is not None


def test_in_multitask_loss():
    loss = sm.MultiTaskSentimentLoss(
        omega=0.3, metric_loss=sm.HierarchicalProxyLoss(embedding_size=8, class_names=NAMES)
    )
    x, y = _batch()
    logits = torch.randn(16, 8, requires_grad=True)
    out = loss(x.requires_grad_(), logits, y)
    out.backward()
    assert torch.isfinite(out) and x.grad is not None


@pytest.mark.parametrize("cls", [sm.HierarchicalAPLoss, sm.HierarchicalProxyLoss])
def test_refuses_a_distance_and_pml_keywords(cls):
    args = {"embedding_size": 8} if cls is sm.HierarchicalProxyLoss else {}
    with pytest.raises(sm.SentimentMetricError, match="distance"):
        cls(class_names=NAMES, distance=CosineSimilarity(), **args)
    with pytest.raises(sm.SentimentMetricError, match="margin"):
        cls(class_names=NAMES, margin=0.1, **args)
    with pytest.raises(sm.SentimentMetricError, match="temperature"):
        cls(class_names=NAMES, temperature=0.0, **args)
    with pytest.raises(sm.SentimentMetricError, match="class_names"):
        cls(**args)
