"""SentimentCrossBatchMemory: its own checks, and the exact path against the memory."""

from __future__ import annotations

import pytest
import torch

import sentiment_metric as sm
from sentiment_metric import SentimentMetricError

NAMES = sm.MIKELS_WHEEL.emotions


def _xbm(memory_size: int = 32, **kw: object) -> sm.SentimentCrossBatchMemory:
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    return sm.SentimentCrossBatchMemory(loss, embedding_size=4, memory_size=memory_size, **kw)


def _batch(b: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(b)
    return torch.randn(b, 4, generator=g), torch.arange(b) % 8


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"memory_size": 0}, "memory_size must be an int >= 1, got 0"),
        ({"memory_size": 2.5}, "memory_size must be an int"),
        ({"embedding_size": 0}, "embedding_size must be an int >= 1"),
        ({"miner": "semihard"}, "miner must be a PML miner"),
    ],
)
def test_constructor_checks(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {
        "loss": sm.SentimentConstraintLoss(class_names=NAMES),
        "embedding_size": 4,
        "memory_size": 16,
    }
    args.update(kwargs)
    with pytest.raises(SentimentMetricError, match=fragment):
        sm.SentimentCrossBatchMemory(**args)  # type: ignore[arg-type]
    with pytest.raises(SentimentMetricError, match="loss must be a loss module"):
        sm.SentimentCrossBatchMemory("triplet", embedding_size=4)  # type: ignore[arg-type]


def test_call_checks_name_the_argument() -> None:
    emb, y = _batch()
    xbm = _xbm()
    with pytest.raises(SentimentMetricError, match="embedding_size=4 columns"):
        xbm(torch.randn(8, 5), y)
    with pytest.raises(SentimentMetricError, match="labels are required"):
        xbm(emb, None)  # type: ignore[arg-type]
    with pytest.raises(SentimentMetricError, match="labels has 7 entries"):
        xbm(emb, y[:7])
    with pytest.raises(SentimentMetricError, match="memory_size is 4"):
        _xbm(memory_size=4)(emb, y)
    with pytest.raises(SentimentMetricError, match="enqueue_mask must be a bool tensor"):
        xbm(emb, y, enqueue_mask=torch.ones(8, dtype=torch.long))
    with pytest.raises(SentimentMetricError, match=r"enqueue_mask must be .* shape \(8,\)"):
        xbm(emb, y, enqueue_mask=torch.ones(7, dtype=torch.bool))
    with pytest.raises(SentimentMetricError, match="enqueue_mask enqueues 8 rows"):
        _xbm(memory_size=4)(emb, y, enqueue_mask=torch.ones(8, dtype=torch.bool))
    with pytest.raises(SentimentMetricError, match="mutually exclusive"):
        xbm(emb, y, indices_tuple=(y, y, y), enqueue_mask=torch.ones(8, dtype=torch.bool))
    with pytest.raises(SentimentMetricError, match=r"labels must lie in \[0, 7\]"):
        xbm(emb, y + 1)
    assert xbm.queue_idx == 0  # nothing was enqueued by a refused call


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_any_integer_label_dtype_equals_int64(dtype: torch.dtype) -> None:
    emb, y = _batch()
    a, b = _xbm(), _xbm()
    for _ in range(3):
        la, lb = a(emb, y), b(emb, y.to(dtype))
        assert torch.equal(la, lb)
    assert b.label_memory.dtype == torch.int64


def test_enqueue_mask_path_is_finite() -> None:
    emb, y = _batch(16)
    mask = torch.arange(16) % 2 == 0
    out = _xbm()(emb, y, enqueue_mask=mask)
    assert torch.isfinite(out)
