"""Exact k nearest neighbours in chunks of queries, and the rules every kNN here shares.

Never more than a ``(chunk, N)`` block of distances: each chunk of queries is scored against
the whole reference set (:func:`~sentiment_metric.functional.distance.squared_euclidean`, the
cosine, or a callable), its own sample excluded
(:func:`~sentiment_metric.functional.distance.exclude_self`) and ranked with ``topk``.
:func:`drop_self` is the same exclusion for a kNN result computed elsewhere (faiss, a PML
``knn_func``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from ..._checks import check_embeddings
from ...errors import SentimentMetricError
from ..distance import exclude_self, squared_euclidean

__all__ = [
    "Distance",
    "KnnFn",
    "Scorer",
    "auto_chunk",
    "check_distance",
    "check_k",
    "check_query_prefix",
    "check_same_dim",
    "drop_self",
    "exact_knn",
    "external_rank",
    "rank_chunk",
]

Distance = Literal["euclidean", "cosine"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KnnFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]

_CHUNK_BYTES = 96 * 2**20  # working memory aimed at per chunk of queries


def auto_chunk(n_ref: int, depth: int, n_query: int) -> int:
    """Queries per chunk for about 96 MB of working memory (two ``(chunk, N)`` score
    buffers, the ranking, and a full sort when ``depth`` is over half of ``N``)."""
    per_row = 8 * n_ref + 48 * max(depth, 1) + 16 * n_ref * (depth * 2 > n_ref)
    return max(1, min(n_query, _CHUNK_BYTES // max(per_row, 1), 4096))


class Scorer:
    """Distances (smaller = closer) from chunks of queries to a fixed reference set.

    ``"euclidean"``: squared Euclidean distances; ``"cosine"``: minus the cosine similarity
    (:meth:`reported` gives the similarity back); a callable: its distances.

    Example:
        >>> import torch
        >>> s = Scorer(torch.tensor([[0.0], [2.0]]), "euclidean")
        >>> s(s.prepare(torch.tensor([[1.0]]))).tolist()
        [[1.0, 1.0]]
    """

    def __init__(self, reference: torch.Tensor, distance: Distance) -> None:
        self.distance = distance
        work = reference
        if work.dtype in (torch.float16, torch.bfloat16) and work.device.type == "cpu":
            work = work.float()
        if distance == "cosine":
            work = torch.nn.functional.normalize(work, dim=1)
        self.reference = work

    def prepare(self, query: torch.Tensor) -> torch.Tensor:
        """A chunk of queries in the reference's dtype and device (normalised for cosine)."""
        q = query.to(dtype=self.reference.dtype, device=self.reference.device)
        if self.distance == "cosine":
            q = torch.nn.functional.normalize(q, dim=1)
        return q

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """Ranking scores ``(b, N)``, smaller is closer."""
        if self.distance == "euclidean":
            return squared_euclidean(q, self.reference)
        if self.distance == "cosine":
            return -(q @ self.reference.T)
        return self.distance(q, self.reference)

    def reported(self, scores: torch.Tensor) -> torch.Tensor:
        """The values :func:`exact_knn` reports: similarities for cosine, else distances."""
        return -scores if self.distance == "cosine" else scores


def check_distance(distance: Distance) -> None:
    """``distance`` is ``"euclidean"``, ``"cosine"`` or a callable."""
    if not (callable(distance) or distance in ("euclidean", "cosine")):
        raise SentimentMetricError(
            f"distance must be 'euclidean', 'cosine' or a callable (query, reference) -> "
            f"(b, N) distances; got {distance!r}"
        )


def check_same_dim(query: torch.Tensor, reference: torch.Tensor) -> None:
    """``query`` and ``reference`` have the same embedding size."""
    if query.shape[1] != reference.shape[1]:
        raise SentimentMetricError(
            f"query and reference must have the same embedding size, got {query.shape[1]} "
            f"and {reference.shape[1]}"
        )


def check_query_prefix(num_query: int, num_reference: int) -> None:
    """With ``ref_includes_query`` the queries must fit as the first rows of the reference."""
    if num_query > num_reference:
        raise SentimentMetricError(
            f"ref_includes_query=True needs query ({num_query} rows) to be the first rows "
            f"of reference ({num_reference} rows)"
        )


def check_k(k: object, n_cand: int, name: str) -> int:
    """``k`` (called ``name``) as an int in ``[1, n_cand]``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SentimentMetricError(f"{name} must be an int >= 1, got {k!r}")
    if n_cand < 1:
        raise SentimentMetricError(
            "the reference set has no candidate besides the queries themselves "
            f"({n_cand} candidates); nothing to retrieve"
        )
    if k > n_cand:
        raise SentimentMetricError(
            f"{name}={k} is larger than the reference set: each query has only {n_cand} "
            "candidate reference(s)"
        )
    return k


def rank_chunk(
    scores: torch.Tensor, depth: int, self_index: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``depth`` smallest scores per row and their columns, sorted; the own column of
    each row (``self_index``, or ``None``) never among them."""
    scores = exclude_self(scores, self_index, math.inf)
    if depth * 2 > scores.shape[1]:
        vals, idx = torch.sort(scores, dim=1)
        return vals[:, :depth], idx[:, :depth]
    vals, idx = torch.topk(scores, depth, dim=1, largest=False, sorted=True)
    return vals, idx


def drop_self(
    indices: torch.Tensor, self_index: torch.Tensor, *values: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Remove each row's own column from a kNN result one column deeper than wanted.

    A row that does not hold its ``self_index`` loses its last (farthest) column instead
    (PML's rule). ``values`` (e.g. the distances) lose the same entries.

    Example:
        >>> import torch
        >>> drop_self(torch.tensor([[0, 2], [0, 2]]), torch.tensor([0, 1]))[0].tolist()
        [[2], [0]]
    """
    is_self = indices == self_index.to(indices.device)[:, None]
    is_self[~is_self.any(dim=1), -1] = True
    keep = ~is_self
    b, k = indices.shape[0], indices.shape[1] - 1
    return tuple(t[keep].view(b, k) for t in (indices, *values))


def external_rank(
    knn_fn: KnnFn,
    q: torch.Tensor,
    reference: torch.Tensor,
    depth: int,
    self_index: torch.Tensor | None,
) -> torch.Tensor:
    """The ``(b, depth)`` neighbour indices of a chunk from a PML-style ``knn_fn``."""
    extra = int(self_index is not None)
    _, idx = knn_fn(q, depth + extra, reference, False)
    idx = torch.as_tensor(idx).to(device=q.device, dtype=torch.int64)
    if self_index is None:
        return idx[:, :depth]
    return drop_self(idx, self_index)[0]


def exact_knn(
    query: torch.Tensor,
    reference: torch.Tensor | None,
    k: int,
    *,
    ref_includes_query: bool = False,
    distance: Distance = "euclidean",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours, computed in chunks of queries.

    Never holds more than ``(chunk_size, N)`` distances. With ``distance="euclidean"`` the
    distances are squared Euclidean (faiss ``IndexFlatL2`` and PML's ``FaissKNN``); with
    ``"cosine"`` the results are cosine *similarities*, largest first (PML's
    ``CustomKNN(CosineSimilarity())``). With ``ref_includes_query`` the query ``i`` is the
    reference ``i`` and is left out of its own neighbours.

    .. math::

        \\mathrm{NN}_k(q) = \\operatorname*{arg\\,min}_{S \\subset \\mathcal{R},\\,|S| = k}
        \\sum_{r \\in S} \\lVert q - r \\rVert_2^2

    Args:
        query: ``(M, D)`` query embeddings.
        reference: ``(N, D)`` reference embeddings (``None``: the queries, and
            ``ref_includes_query`` is set).
        k: number of neighbours (at most ``N``, or ``N - 1`` with ``ref_includes_query``).
        ref_includes_query: the first ``M`` references are the queries.
        distance: ``"euclidean"``, ``"cosine"`` or a callable ``(q (b, D), ref (N, D)) ->
            (b, N)`` distances (smaller is closer).
        chunk_size: queries per chunk (default: about 96 MB of working memory).

    Returns:
        ``(distances (M, k), indices (M, k))``, nearest first.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> d, i = sm.functional.exact_knn(x, None, 1)
        >>> i.flatten().tolist(), d.flatten().tolist()
        ([1, 0, 1], [1.0, 1.0, 4.0])
    """
    if reference is None:
        reference, ref_includes_query = query, True
    query = check_embeddings(query, "query", validate=False)
    reference = check_embeddings(reference, "reference", validate=False)
    check_same_dim(query, reference)
    check_distance(distance)
    check_k(k, reference.shape[0] - int(ref_includes_query), "k")
    if ref_includes_query:
        check_query_prefix(query.shape[0], reference.shape[0])
    scorer = Scorer(reference.to(query.device), distance)
    m = query.shape[0]
    cs = chunk_size or auto_chunk(reference.shape[0], k, m)
    out_d = torch.empty(m, k, dtype=scorer.reference.dtype, device=query.device)
    out_i = torch.empty(m, k, dtype=torch.int64, device=query.device)
    with torch.no_grad():
        for s in range(0, m, cs):
            e = min(m, s + cs)
            self_index = torch.arange(s, e, device=query.device) if ref_includes_query else None
            vals, idx = rank_chunk(scorer(scorer.prepare(query[s:e])), k, self_index)
            out_d[s:e] = scorer.reported(vals)
            out_i[s:e] = idx
    return out_d, out_i
