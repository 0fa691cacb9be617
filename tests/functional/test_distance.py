"""Tests of functional/distance.py and distance.py: the one squared distance, self-exclusion."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance

from sentiment_metric.distance import SquaredEuclideanDistance
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
    assert exclude_self(s, torch.tensor([7, 4, -2]), 0.0).equal(s)  # out of range: kept
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
