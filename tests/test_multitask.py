"""MultiTaskSentimentLoss: its checks and its reading of the labels."""

from __future__ import annotations

import pytest
import torch

import sentiment_metric as sm
from sentiment_metric import SentimentMetricError

NAMES = sm.MIKELS_WHEEL.emotions


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 4, generator=g), torch.randn(16, 8, generator=g), torch.arange(16) % 8


def test_a_miner_name_is_refused_at_construction() -> None:
    with pytest.raises(SentimentMetricError, match="miner must be a PML miner module"):
        sm.MultiTaskSentimentLoss(class_names=NAMES, miner="semihard")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_logits_are_refused(bad: float) -> None:
    emb, logits, y = _batch()
    logits[3, 2] = bad
    with pytest.raises(SentimentMetricError, match="logits must be finite"):
        sm.MultiTaskSentimentLoss(class_names=NAMES)(emb, logits, y)


def test_validate_false_skips_the_value_checks() -> None:
    emb, logits, y = _batch()
    logits[0, 0] = float("nan")
    metric = sm.SentimentConstraintLoss(class_names=NAMES, validate=False)
    loss = sm.MultiTaskSentimentLoss(metric_loss=metric)
    assert not loss.validate
    assert torch.isnan(loss(emb, logits, y))  # the caller asked for no checks


@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]
)
def test_labels_of_any_integer_dtype_give_the_int64_result(dtype: torch.dtype) -> None:
    emb, logits, y = _batch()
    loss = sm.MultiTaskSentimentLoss(class_names=NAMES)
    ref = loss.parts(emb, logits, y)
    got = loss.parts(emb, logits, y.to(dtype))
    for a, b in zip(ref, got):
        assert torch.equal(a, b)


def test_logits_and_labels_checks_name_the_argument() -> None:
    emb, logits, y = _batch()
    loss = sm.MultiTaskSentimentLoss(class_names=NAMES)
    with pytest.raises(SentimentMetricError, match=r"logits must have shape \(B, 8\)"):
        loss(emb, logits[:, :5], y)
    with pytest.raises(SentimentMetricError, match="logits has 15 rows"):
        loss(emb, logits[:15], y)
    with pytest.raises(SentimentMetricError, match="logits must be floating point"):
        loss(emb, logits.long(), y)
    with pytest.raises(SentimentMetricError, match=r"labels must lie in \[0, 7\]"):
        loss(emb, logits, y - 1)
    with pytest.raises(SentimentMetricError, match="omega must lie in"):
        sm.MultiTaskSentimentLoss(omega=1.5, class_names=NAMES)
