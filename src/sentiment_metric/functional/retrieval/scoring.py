"""Scoring a chunk of queries and ranking it as a float64 brute force would.

A chunk of queries is scored against the whole reference set in float32
(:class:`Scorer`: one matrix product, squared Euclidean or cosine), and :func:`rank_chunk`
ranks it. The float32 scores are off by rounding, so two references closer than that can be
swapped; the first ``exact_depth`` positions of every ranking are therefore made exact:
every candidate within a safety margin ``ε`` of the ``exact_depth``-th float32 score is kept,
those whose float32 score lies within ``2ε`` of a neighbour's are re-scored in float64, and the
candidates are ordered by (score, index). The result is the ranking of a float64 brute force,
ties broken by the smaller index, whatever the chunk or the depth asked. Deeper positions keep
the float32 order (ties and near-ties there can swap; no measure of the registry reads them
one by one at a fixed depth).

The margin (``u = 2^-24``, ``D`` the embedding size, ``R`` the largest reference norm):

.. math::

    \\varepsilon(q) = 8 \\sqrt{D + 1}\\; u \\,(\\lVert q \\rVert + R)^2

about 60 times the largest float32 error of the distance measured on random data (rounding
errors add up like a random walk; the worst case ``D u`` needs adversarial inputs). Float64
inputs and callable distances are ranked by their own values (``ε = 0``), ties by index.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch

from ..distance import exclude_self, squared_euclidean

__all__ = ["Distance", "Scorer", "full_float32", "rank_chunk"]

Distance = Literal["euclidean", "cosine"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_U32 = 2.0**-24  # float32 unit roundoff
_KAPPA = 8.0  # the safety factor of the margin
_PAIR_BLOCK = 2**21  # float64 elements per block of re-scored pairs (16 MB)


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """A region where float32 matrix products are IEEE float32 (no TF32 / bf16 shortcut), so
    the margin holds on GPUs where ``torch.set_float32_matmul_precision("high")`` was set."""
    prev = torch.get_float32_matmul_precision()
    if prev == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(prev)


class Scorer:
    """Distances (smaller = closer) from chunks of queries to a fixed reference set.

    ``"euclidean"``: squared Euclidean distances; ``"cosine"``: minus the cosine similarity
    (:meth:`reported` gives the similarity back); a callable: its distances. Built-in
    distances score in float32 (float64 inputs: float64) and re-score in float64
    (:meth:`exact`); a callable scores as it computes (half on the CPU: in float32).

    Example:
        >>> import torch
        >>> s = Scorer(torch.tensor([[0.0], [2.0]]), "euclidean")
        >>> s(s.prepare(torch.tensor([[1.0]]))).tolist()
        [[1.0, 1.0]]
    """

    def __init__(self, reference: torch.Tensor, distance: Distance) -> None:
        self.distance = distance
        builtin = isinstance(distance, str)
        raw = reference
        if (builtin and raw.dtype != torch.float64) or (
            raw.dtype in (torch.float16, torch.bfloat16) and raw.device.type == "cpu"
        ):
            raw = raw.float()
        self.raw = raw
        self.reference = torch.nn.functional.normalize(raw, dim=1) if distance == "cosine" else raw
        self.rescores = builtin and raw.dtype != torch.float64
        self._ref_norm = 0.0
        if self.rescores and raw.shape[0] > 0:
            self._ref_norm = float(torch.linalg.vector_norm(self.reference, dim=1).max())

    def prepare(self, query: torch.Tensor) -> torch.Tensor:
        """A chunk of queries in the reference's dtype and device (normalised for cosine)."""
        q = query.to(dtype=self.reference.dtype, device=self.reference.device)
        if self.distance == "cosine":
            q = torch.nn.functional.normalize(q, dim=1)
        return q

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """Ranking scores ``(b, N)`` of prepared queries, smaller is closer."""
        with full_float32():
            if self.distance == "euclidean":
                return squared_euclidean(q, self.reference)
            if self.distance == "cosine":
                return -(q @ self.reference.T)
            return self.distance(q, self.reference)

    def reported(self, scores: torch.Tensor) -> torch.Tensor:
        """The values :func:`exact_knn` reports: similarities for cosine, else distances."""
        return -scores if self.distance == "cosine" else scores

    def tolerance(self, q: torch.Tensor) -> torch.Tensor:
        """``(b,)`` float64 margin ``ε`` of the scores of prepared queries (0: exact scores)."""
        if not self.rescores:
            return torch.zeros(q.shape[0], dtype=torch.float64, device=q.device)
        norm = torch.linalg.vector_norm(q.double(), dim=1)
        return _KAPPA * math.sqrt(q.shape[1] + 1) * _U32 * (norm + self._ref_norm) ** 2

    def exact(self, query: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Float64 scores ``(P,)`` of the pairs ``(query[rows[p]], reference[cols[p]])``, from
        a chunk of raw (unprepared) queries; in blocks of pairs. Built-in distances only."""
        out = torch.empty(cols.shape[0], dtype=torch.float64, device=cols.device)
        step = max(1, _PAIR_BLOCK // max(1, self.raw.shape[1]))
        for s in range(0, cols.shape[0], step):
            q = query[rows[s : s + step]].to(self.raw.device).double()
            r = self.raw[cols[s : s + step]].double()
            if self.distance == "euclidean":
                out[s : s + step] = ((q - r) ** 2).sum(dim=1)
            else:
                qn = torch.linalg.vector_norm(q, dim=1).clamp_min(1e-12)
                rn = torch.linalg.vector_norm(r, dim=1).clamp_min(1e-12)
                out[s : s + step] = -(q * r).sum(dim=1) / (qn * rn)
        return out

    def exact_rows(self, query: torch.Tensor) -> torch.Tensor:
        """``(r, N)`` float64 scores of raw query rows against every reference."""
        if not self.rescores:
            return self(self.prepare(query)).double()
        r, n = query.shape[0], self.raw.shape[0]
        rows = torch.arange(r, device=query.device).repeat_interleave(n)
        cols = torch.arange(n, device=query.device).repeat(r)
        return self.exact(query, rows, cols).view(r, n)


def _smallest(scores: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``width`` smallest scores per row and their columns, sorted."""
    if width * 2 > scores.shape[1]:
        vals, idx = torch.sort(scores, dim=1)
        return vals[:, :width], idx[:, :width]
    vals, idx = torch.topk(scores, width, dim=1, largest=False, sorted=True)
    return vals, idx


def _by_value_then_index(
    vals: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of ``(vals, idx)`` ordered by value, equal values by index."""
    o = idx.argsort(dim=1, stable=True)
    vals, idx = vals.gather(1, o), idx.gather(1, o)
    o = vals.argsort(dim=1, stable=True)
    return vals.gather(1, o), idx.gather(1, o)


def rank_chunk(
    scorer: Scorer,
    query: torch.Tensor,
    depth: int,
    self_index: torch.Tensor | None,
    exact_depth: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``depth`` closest references of a chunk of raw queries: ``(scores, columns)``.

    The first ``min(exact_depth, depth)`` positions (default: all ``depth``) are those of a
    float64 brute force with ties broken by the smaller index (see the module's text); the
    own column of each row (``self_index``, or ``None``) is never among them. The scores are
    float64 where re-scored, the float32 ones elsewhere.
    """
    q = scorer.prepare(query)
    scores = exclude_self(scorer(q), self_index, math.inf, validate=False)  # arange: in range
    n = scores.shape[1]
    e = depth if exact_depth is None else max(1, min(exact_depth, depth))
    width = min(n, max(depth, e + 8 + e // 4))
    vals, idx = _smallest(scores, width)
    vals = vals.double()
    eps = scorer.tolerance(q)
    bound = vals[:, e - 1] + 2 * eps
    inside = vals <= bound[:, None]
    c = max(e, int(inside.sum(dim=1).max()))
    pv, pi = vals[:, :c].clone(), idx[:, :c]
    if scorer.rescores:
        near = pv.diff(dim=1) <= 2 * eps[:, None]
        amb = torch.zeros_like(inside[:, :c])
        amb[:, 1:] |= near
        amb[:, :-1] |= near
        rows, cols = (amb & inside[:, :c]).nonzero(as_tuple=True)
        if rows.numel():
            pv[rows, cols] = scorer.exact(query, rows, pi[rows, cols])
    vals[:, :c], idx[:, :c] = _by_value_then_index(pv, pi)
    short = inside[:, -1] & (width < n)  # candidates may lie beyond the window
    if bool(short.any()):
        rows = short.nonzero(as_tuple=True)[0]
        full = scorer.exact_rows(query[rows])
        own = None if self_index is None else self_index[rows]
        full = exclude_self(full, own, math.inf, validate=False)
        fv, fi = torch.sort(full, dim=1, stable=True)
        vals[rows], idx[rows] = fv[:, :width], fi[:, :width]
    return vals[:, :depth], idx[:, :depth]
