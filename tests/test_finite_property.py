"""The finiteness property (issue 19, issue 18 item 1): finite inputs that a public name
accepts give finite outputs (and finite gradients), or a :class:`SentimentMetricError`.

Hypothesis draws the values a sweep found dangerous: embeddings from ``1e-30`` to ``1e30``
(rows of very different scales in one batch), margins, weights and wheel margins up to past
the accepted limit, every strategy and reduction. A raw exception, a NaN or an Inf fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytorch_metric_learning.reducers import MeanReducer, SumReducer

import sentiment_metric as sm
import sentiment_metric.functional as F
from sentiment_metric import SentimentMetricError
from sentiment_metric._checks import check_norms

NAMES = sm.MIKELS_WHEEL.emotions
REL = sm.MIKELS_WHEEL.relations(NAMES)
C = len(NAMES)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scales = st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e17, 1e19, 1e30])
magnitudes = st.sampled_from([0.0, 1e-30, 0.1, 1.0, 1e6, 1e12, 1e13, 1e38])


@st.composite
def batches(draw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, D)`` finite embeddings, rows scaled independently, and labels."""
    b = draw(st.integers(2, 12))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    g = torch.Generator().manual_seed(seed)
    row_scale = torch.tensor([draw(scales) for _ in range(b)], dtype=torch.float64)
    emb = (torch.randn(b, d, generator=g, dtype=torch.float64) * row_scale[:, None]).to(dtype)
    labels = torch.randint(0, C, (b,), generator=g)
    return emb, labels


def _finite(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() or bool(torch.isfinite(x).all())
    if isinstance(x, (tuple, list)):
        return all(_finite(v) for v in x)
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, float):
        return x == x and abs(x) != float("inf")
    return True


def _finite_or_refused(call: Callable[[], Any]) -> Any:
    """The result of ``call`` when it is finite; ``None`` when it raised the library's error."""
    try:
        out = call()
    except SentimentMetricError:
        return None
    assert _finite(out), f"a finite input gave a non-finite output: {out!r}"
    return out


def _loss_and_grad(loss: Any, emb: torch.Tensor, labels: torch.Tensor, *extra: Any) -> Any:
    x = emb.clone().requires_grad_()
    value = loss(x, labels, *extra)
    value.backward()
    return value, x.grad


@SETTINGS
@given(
    batch=batches(),
    margins=st.tuples(magnitudes, magnitudes),
    weight=magnitudes,
    wheel_margin=magnitudes,
    skip_level=st.sampled_from(["ignore", "sum_margins"]),
    reducer=st.sampled_from([None, "mean", "sum"]),
    general=st.booleans(),
)
def test_the_loss_is_finite_or_refused(
    batch: tuple[torch.Tensor, torch.Tensor],
    margins: tuple[float, float],
    weight: float,
    wheel_margin: float,
    skip_level: str,
    reducer: str | None,
    general: bool,
) -> None:
    emb, labels = batch
    kw: dict[str, Any] = {}
    if reducer is not None:
        kw["reducer"] = MeanReducer() if reducer == "mean" else SumReducer()
    weighting = torch.full((C, C), weight if weight > 0 else 1.0) / REL.dis
    loss = _finite_or_refused(
        lambda: sm.SentimentConstraintLoss(
            class_names=NAMES,
            margins=margins,
            weighting=weighting,
            wheel_margin=wheel_margin,
            skip_level=skip_level,
            **kw,
        )
    )
    if loss is None:
        return
    if general:
        loss.max_fused_pairs = 0
    _finite_or_refused(lambda: _loss_and_grad(loss, emb, labels))


@SETTINGS
@given(
    batch=batches(),
    margins=st.tuples(magnitudes, magnitudes),
    strategy=st.sampled_from(["semihard", "hard", "random", "all"]),
    per_pair=st.sampled_from([1, 3, 10**6]),
)
def test_the_miner_and_the_loss_on_its_triplets_are_finite_or_refused(
    batch: tuple[torch.Tensor, torch.Tensor],
    margins: tuple[float, float],
    strategy: str,
    per_pair: int,
) -> None:
    emb, labels = batch
    miner = _finite_or_refused(
        lambda: sm.SentimentSemiHardMiner(
            class_names=NAMES, margins=margins, strategy=strategy, per_pair=per_pair, seed=0
        )
    )
    if miner is None:
        return
    mined = _finite_or_refused(lambda: miner(emb, labels))
    if mined is None:
        return
    for t in mined:
        assert bool(((t >= 0) & (t < emb.shape[0])).all())
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    _finite_or_refused(lambda: _loss_and_grad(loss, emb, labels, mined))


@SETTINGS
@given(batch=batches(), omega=st.sampled_from([0.0, 0.2, 1.0]))
def test_the_multitask_loss_and_the_memory_are_finite_or_refused(
    batch: tuple[torch.Tensor, torch.Tensor], omega: float
) -> None:
    emb, labels = batch
    logits = emb.new_zeros(emb.shape[0], C)
    multi = sm.MultiTaskSentimentLoss(class_names=NAMES, omega=omega)
    _finite_or_refused(lambda: multi(emb, logits, labels))
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    memory = sm.SentimentCrossBatchMemory(loss, embedding_size=emb.shape[1], memory_size=32)
    _finite_or_refused(lambda: _loss_and_grad(memory, emb, labels))


@SETTINGS
@given(batch=batches())
def test_retrieval_is_finite_or_refused(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """A measure is NaN where it is undefined for the batch (documented: no query with a
    relevant reference, ``group_miss_share_at_k`` with no miss); never Inf, never NaN from
    an overflow: the measures that are defined on a batch of one label are finite."""
    emb, labels = batch
    calc = sm.AffectiveAccuracyCalculator(
        class_names=NAMES, k=1, include=("precision_at_1", "wheel_ndcg_at_k")
    )
    for call in (lambda: F.retrieval_metrics(emb, labels, relations=REL, k=1),
                 lambda: calc.get_accuracy(emb, labels)):  # fmt: skip
        try:
            out = call()
        except SentimentMetricError:
            continue
        assert all(v != float("inf") and v != -float("inf") for v in out.values()), out
        if len(set(labels.tolist())) < len(labels):  # some query has a relevant reference
            assert out["precision_at_1"] == out["precision_at_1"], out  # not NaN


@SETTINGS
@given(
    batch=batches(),
    margin=st.sampled_from([0.0, 0.1, 1e12, 1e30, float("nan"), float("inf")]),
    theta=magnitudes,
)
def test_the_functional_constraints_are_finite_or_refused(
    batch: tuple[torch.Tensor, torch.Tensor], margin: float, theta: float
) -> None:
    emb, labels = batch
    try:  # the bound every entry point that forms distances applies
        check_norms(emb, "embeddings")
    except SentimentMetricError:
        return
    dist = F.squared_euclidean(emb)  # unchecked maths: finite within the bound
    assert _finite(dist), dist
    if float(dist.max()) * max(theta, 1.0) > torch.finfo(dist.dtype).max / 4:
        return  # θ·D itself past the dtype: the functions take a dist, not embeddings (the
        # residual of issue 19 item 3 for raw, unnormalised distances; see the CHANGELOG)
    b = emb.shape[0]
    a, x, y = torch.arange(b), torch.arange(b).roll(1), torch.arange(b).roll(2)
    t = torch.full((C, C), theta if theta > 0 else 1.0, dtype=torch.float64)
    _finite_or_refused(lambda: F.triplet_constraint_losses(dist, labels, a, x, y, margin, theta=t))
    _finite_or_refused(lambda: F.sentiment_constraint_loss(dist, labels, REL.level))
    _finite_or_refused(lambda: tuple(F.constraint_sums(dist, labels, REL.level, theta=t)))


@pytest.mark.parametrize("shape", [(2, 3, 0, 4), (2, 3, 4, 0), (0, 3, 4, 4)])
def test_gram_matrix_of_an_empty_map_is_finite_or_refused(shape: tuple[int, ...]) -> None:
    _finite_or_refused(lambda: F.gram_matrix(torch.zeros(shape)))
    _finite_or_refused(lambda: F.gram_matrix(torch.zeros(shape), normalize=True))
