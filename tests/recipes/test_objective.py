"""The training objective: the loss with its parts, and the generators a resume restores."""

from __future__ import annotations

import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes.config import TrainConfig
from sentiment_metric.recipes.objective import build_objective

NAMES = list(sm.MIKELS_WHEEL.emotions)


@pytest.mark.parametrize("loss", ["softmax", "triplet", "softmax+triplet", "multitask"])
def test_objective_returns_loss_and_parts(loss: str) -> None:
    g = torch.Generator().manual_seed(0)
    emb, logits = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    labels = torch.arange(16) % 8
    objective = build_objective(TrainConfig(loss=loss, strategy="random"), NAMES)
    total, parts = objective(emb, logits, labels)
    assert set(parts) == {"classification", "metric", "total"}
    assert all(not v.requires_grad for v in parts.values())
    torch.testing.assert_close(parts["total"], total.detach())
    if loss == "softmax":
        assert float(parts["metric"]) == 0.0
    assert set(objective.generators) == ({"miner"} if loss == "multitask" else set())


def test_every_triplet_objective_passes_weighting_and_wheel_margin() -> None:
    """``strategy="none"``: no miner, the loss's exact path, with the configured constraints."""
    cfg = TrainConfig(loss="multitask", strategy="none", weighting="none", wheel_margin=0.3)
    objective = build_objective(cfg, NAMES)
    assert objective.multitask is not None and objective.multitask.miner is None
    assert objective.generators == {}
    metric = objective.multitask.metric_loss
    assert metric.weighting == "none" and metric.wheel_margin == 0.3
    g = torch.Generator().manual_seed(1)
    emb, logits = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    labels = torch.arange(16) % 8
    _, parts = objective(emb, logits, labels)
    want = sm.SentimentConstraintLoss(class_names=NAMES, weighting="none", wheel_margin=0.3)
    torch.testing.assert_close(parts["metric"], want(emb, labels))


def test_config_refuses_bad_constraint_options() -> None:
    with pytest.raises(sm.SentimentMetricError, match="weighting"):
        TrainConfig(weighting="wheel")
    with pytest.raises(sm.SentimentMetricError, match="wheel_margin"):
        TrainConfig(wheel_margin=-0.1)
    with pytest.raises(sm.SentimentMetricError, match="strategy"):
        TrainConfig(strategy="exhaustive")
