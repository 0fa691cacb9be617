"""Tests of functional/distance.py and distance.py: the one squared distance, self-exclusion."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance

from sentiment_metric.distance import SquaredEuclideanDistance
from sentiment_metric.errors import SentimentMetricError
from sentiment_metric.functional import exclude_self, squared_euclidean

from ..conftest import TOLERANCES


def _naive(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    out = torch.empty(q.shape[0], r.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        for j in range(r.shape[0]):
            out[i, j] = ((q[i].double() - r[j].double()) ** 2).sum()
    return out


def test_squared_euclidean_matches_naive(device: torch.device, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(7, 5, generator=g), torch.randn(4, 5, generator=g)
    q, r = q.to(device, dtype), r.to(device, dtype)
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(
        squared_euclidean(q, r).cpu().double(), _naive(q.cpu(), r.cpu()), **tol
    )
    self_d = squared_euclidean(q)
    assert self_d.dtype == dtype and bool((self_d >= 0).all())
    assert torch.equal(self_d.diagonal(), torch.zeros(7, dtype=dtype, device=device))
    torch.testing.assert_close(self_d.cpu().double(), _naive(q.cpu(), q.cpu()), **tol)


def test_squared_euclidean_gradients_and_half() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: squared_euclidean(a), (x,))
    assert torch.autograd.gradcheck(lambda a, b: squared_euclidean(a, b), (x, ref))
    h = x.detach().to(torch.bfloat16)
    assert squared_euclidean(h).dtype == torch.bfloat16


def test_exclude_self(dtype: torch.dtype) -> None:
    s = torch.arange(12, dtype=dtype).view(3, 4)
    out = exclude_self(s, torch.tensor([1, -1, 3]), float("inf"))
    assert out[0, 1] == float("inf") and out[2, 3] == float("inf")
    assert torch.equal(out[1], s[1]) and out.isinf().sum() == 2
    assert torch.equal(s, torch.arange(12, dtype=dtype).view(3, 4))  # input untouched
    assert exclude_self(s, None, 0.0) is s
    unchecked = exclude_self(s, torch.tensor([7, 4, -2]), 0.0, validate=False)
    assert unchecked.equal(s)  # out of range, unchecked: kept
    lev = exclude_self(torch.zeros(2, 2, dtype=torch.int8), torch.tensor([0, 1]), -1)
    assert lev.dtype == torch.int8 and lev.tolist() == [[-1, 0], [0, -1]]


@pytest.mark.parametrize("with_ref", [False, True])
def test_pml_distance_agrees_with_lp_distance(with_ref: bool) -> None:
    g = torch.Generator().manual_seed(2)
    x, r = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g)
    ours, pml = SquaredEuclideanDistance(), LpDistance(power=2)
    args = (x, r) if with_ref else (x,)
    torch.testing.assert_close(ours(*args), pml(*args), **TOLERANCES[torch.float32])
    with pytest.raises(ValueError, match="power=2 fixed"):
        SquaredEuclideanDistance(power=1)


@pytest.mark.parametrize(
    ("self_index", "match"),
    [
        (torch.tensor([0, 4, 1]), r"self_index .* \[0, 4\) or -1.* got 4 at row 1"),
        (torch.tensor([0, -2, 1]), r"self_index .* got -2 at row 1 .*do not wrap"),
        (torch.tensor([0, 1]), r"self_index must have shape \(3\)"),
        (torch.tensor([[0, 1, 2]]), r"self_index must have shape"),
        (torch.tensor([0.0, 1.0, 2.0]), r"self_index must hold integer .*float32"),
        (torch.tensor([True, False, True]), r"self_index must hold integer .*bool"),
    ],
)
def test_exclude_self_refuses(self_index: torch.Tensor, match: str) -> None:
    with pytest.raises(SentimentMetricError, match=match):
        exclude_self(torch.zeros(3, 4), self_index, 0.0)


def test_exclude_self_edges() -> None:
    with pytest.raises(SentimentMetricError, match="scores must have shape"):
        exclude_self(torch.zeros(4), torch.tensor([0]), 0.0)
    empty_ref = torch.zeros(2, 0)
    assert exclude_self(empty_ref, torch.tensor([-1, -1]), 0.0) is empty_ref
    with pytest.raises(SentimentMetricError, match="self_index"):
        exclude_self(empty_ref, torch.tensor([0, -1]), 0.0)
    none = torch.zeros(0, 3)
    assert exclude_self(none, torch.zeros(0, dtype=torch.long), 0.0).shape == (0, 3)
    for dt in (torch.int8, torch.int16, torch.int32, torch.uint8):  # every integer dtype
        out = exclude_self(torch.zeros(2, 2), torch.tensor([1, 0], dtype=dt), 1.0)
        assert out.tolist() == [[0.0, 1.0], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("query", "ref", "match"),
    [
        (torch.zeros(3, 4), torch.zeros(2, 5), r"ref must have the width D of query.*D = 4.*D = 5"),
        (torch.zeros(3, 4, 1), None, r"query must have shape \(Q, D\)"),
        (torch.zeros(3, 4), torch.zeros(4), r"ref must have shape \(R, D\)"),
        ([[0.0]], None, r"query must be a torch.Tensor"),
    ],
)
def test_squared_euclidean_refuses(query: object, ref: object, match: str) -> None:
    with pytest.raises(SentimentMetricError, match=match):
        squared_euclidean(query, ref)  # type: ignore[arg-type]
