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
