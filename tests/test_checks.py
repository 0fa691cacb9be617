"""The shared argument checks: every message names the argument, expectation and value."""

from __future__ import annotations

import pytest
import torch

from sentiment_metric import SentimentMetricError
from sentiment_metric._checks import (
    check_choice,
    check_embeddings,
    check_labels,
    check_margins,
    check_metric_inputs,
    check_nonnegative_float,
    check_positive_int,
    check_shape,
)


def test_error_is_value_error() -> None:
    assert issubclass(SentimentMetricError, ValueError)


def test_check_shape_messages() -> None:
    x = torch.zeros(2, 3)
    assert check_shape(x, ("B", 3), "x") is x
    with pytest.raises(SentimentMetricError, match=r"x must have shape \(B, 4\), got \(2, 3\)"):
        check_shape(x, ("B", 4), "x")
    with pytest.raises(SentimentMetricError, match=r"3-D.*2-D"):
        check_shape(x, ("B", "C", "H"), "x")
    with pytest.raises(SentimentMetricError, match="torch.Tensor, got list"):
        check_shape([1, 2], ("B",), "x")


def test_check_embeddings() -> None:
    with pytest.raises(SentimentMetricError, match="floating-point"):
        check_embeddings(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(SentimentMetricError, match="empty batch"):
        check_embeddings(torch.zeros(0, 3))
    with pytest.raises(SentimentMetricError, match="size 0"):
        check_embeddings(torch.zeros(2, 0))
    bad = torch.zeros(2, 3)
    bad[0, 0] = float("nan")
    bad[1, 1] = float("inf")
    with pytest.raises(SentimentMetricError, match="1 NaN and 1 Inf"):
        check_embeddings(bad)
    check_embeddings(bad, validate=False)  # value checks off


def test_check_labels() -> None:
    good = torch.tensor([0, 2, 1])
    assert check_labels(good, 3, length=3) is good
    with pytest.raises(SentimentMetricError, match="1-D"):
        check_labels(good[None], 3)
    with pytest.raises(SentimentMetricError, match="non-integer values such as"):
        check_labels(torch.tensor([0.5, 1.0]), 3)
    with pytest.raises(SentimentMetricError, match="non-integer"):
        check_labels(torch.tensor([0.0, float("nan")]), 3)
    with pytest.raises(SentimentMetricError, match="integer"):
        check_labels(good.bool(), 3)
    with pytest.raises(SentimentMetricError, match="meta device"):
        check_labels(torch.empty(3, dtype=torch.long, device="meta"), 3)
    with pytest.raises(
        SentimentMetricError, match=r"\[0, 1\] for 2 classes, got values in \[0, 2\]"
    ):
        check_labels(good, 2)
    with pytest.raises(SentimentMetricError, match="3 entries but embeddings has 4 rows"):
        check_labels(good, 3, length=4)
    check_labels(torch.tensor([-1]), 3, validate=False)


def test_scalar_checks() -> None:
    assert check_choice("a", ["a", "b"], "mode") == "a"
    with pytest.raises(SentimentMetricError, match="mode must be one of 'a', 'b'; got 'c'"):
        check_choice("c", ["a", "b"], "mode")
    assert check_positive_int(3, "n") == 3
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(SentimentMetricError, match="n must be an int >= 1"):
            check_positive_int(bad, "n")
    assert check_nonnegative_float(0, "m") == 0.0
    for bad_f in (-0.1, float("nan"), float("inf"), "x", None):
        with pytest.raises(SentimentMetricError, match="m must be"):
            check_nonnegative_float(bad_f, "m")


def test_check_margins() -> None:
    assert check_margins((0.2, 0.1)) == (0.2, 0.1)
    assert check_margins([0, 1]) == (0.0, 1.0)
    with pytest.raises(SentimentMetricError, match="2 values"):
        check_margins((0.2,))
    with pytest.raises(SentimentMetricError, match=r"margins\[1\]"):
        check_margins((0.2, -0.1))
    with pytest.raises(SentimentMetricError, match="pair"):
        check_margins(0.2)


INT_AND_FLOAT_DTYPES = [
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
]


@pytest.mark.parametrize("dtype", INT_AND_FLOAT_DTYPES)
def test_check_labels_reads_every_integer_and_whole_float_dtype_as_int64(
    dtype: torch.dtype,
) -> None:
    y = torch.tensor([0, 2, 1, 2])
    out = check_labels(y.to(dtype), 3, length=4)
    assert out.dtype == torch.int64 and torch.equal(out, y)  # uint8 never a bool mask
    assert check_labels(y.to(dtype), 3, validate=False).dtype == torch.int64


def test_check_metric_inputs_returns_int64_labels() -> None:
    emb = torch.zeros(3, 2)
    b = check_metric_inputs(
        emb, torch.tensor([0, 1, 1], dtype=torch.uint8), 2, emb, torch.tensor([1.0, 0.0, 0.0])
    )
    assert b.labels.tolist() == [0, 1, 1] and b.labels.dtype == torch.int64
    assert b.ref_labels is not None and b.ref_labels.dtype == torch.int64
    assert check_metric_inputs(emb, torch.tensor([0, 1, 1]), 2).embeddings is emb
    with pytest.raises(SentimentMetricError, match="ref_labels was given without ref_emb"):
        check_metric_inputs(emb, torch.tensor([0, 1, 1]), 2, None, torch.tensor([0]))


def test_meta_tensors_are_refused_by_name() -> None:
    with pytest.raises(SentimentMetricError, match="embeddings is on the meta device"):
        check_embeddings(torch.empty(2, 3, device="meta"), validate=False)
