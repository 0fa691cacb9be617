"""Exact k nearest neighbours in chunks of queries, and the rules every kNN here shares.

Never more than a ``(chunk, N)`` block of distances: each chunk of queries is scored against
the whole reference set (:func:`~sentiment_metric.functional.distance.squared_euclidean`, the
cosine, or a callable), its own sample excluded
(:func:`~sentiment_metric.functional.distance.exclude_self`) and ranked by
:func:`~sentiment_metric.functional.retrieval.scoring.rank_chunk` as a float64 brute force
would (float32 search, float64 re-scoring of the near-ties, ties by index).
:func:`drop_self` is the same exclusion for a kNN result computed elsewhere (faiss, a PML
``knn_func``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..._checks import check_embeddings
from ...errors import SentimentMetricError
from .scoring import Distance, Scorer, rank_chunk

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
]

KnnFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]

_CHUNK_BYTES = 96 * 2**20  # working memory aimed at per chunk of queries


def auto_chunk(n_ref: int, n_query: int) -> int:
    """Queries per chunk for about 96 MB of working memory (the ``(chunk, N)`` scores, their
    copy without the query itself, and a ranking as deep as ``N``), whatever the depth: the
    chunks, hence the float32 scores, are the same whichever measures are asked.

    Example:
        >>> auto_chunk(1000, 50), auto_chunk(10**6, 50)
        (50, 3)
    """
    return max(1, min(n_query, _CHUNK_BYTES // (32 * max(n_ref, 1)), 4096))


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


def _check_knn_indices(idx: Any, rows: int, k: int, r: int) -> torch.Tensor:
    """A custom kNN's indices: ``(rows, >= k)`` integers in ``[0, r)``; else a clear error
    (a raw IndexError, or a silently wrong ranking, otherwise)."""
    try:
        idx = torch.as_tensor(idx)
    except (TypeError, ValueError, RuntimeError) as err:
        raise SentimentMetricError(
            f"knn_fn must return (distances, indices), indices a ({rows}, {k}) integer "
            f"array; got {type(idx).__name__}"
        ) from err
    if idx.dim() != 2 or idx.shape[0] != rows or idx.shape[1] < k or idx.is_floating_point():
        raise SentimentMetricError(
            f"knn_fn must return indices of shape ({rows}, {k}) (integers, one row per query, "
            f"k = {k} columns), got shape {tuple(idx.shape)} and dtype {idx.dtype}"
        )
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= r):
        raise SentimentMetricError(
            f"knn_fn returned indices outside [0, {r}) (the reference has {r} rows): "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return idx


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
    idx = _check_knn_indices(idx, q.shape[0], depth + extra, reference.shape[0])
    idx = idx.to(device=q.device, dtype=torch.int64)
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
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours, computed in chunks of queries.

    Never holds more than ``(chunk_size, N)`` distances. With ``distance="euclidean"`` the
    distances are squared Euclidean (faiss ``IndexFlatL2`` and PML's ``FaissKNN``); with
    ``"cosine"`` the results are cosine *similarities*, largest first (PML's
    ``CustomKNN(CosineSimilarity())``). With ``ref_includes_query`` the query ``i`` is the
    reference ``i`` and is left out of its own neighbours.

    The ranking is that of a float64 brute force, ties broken by the smaller index, whatever
    the chunking: the search runs in float32 and the candidates closer to each other than
    float32 rounding can tell apart are re-scored in float64
    (:mod:`~sentiment_metric.functional.retrieval.scoring`). The reported distances are
    float64 re-scored values cast to the embeddings' dtype where re-scored.

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
        validate: refuse NaN/Inf in ``query`` and ``reference`` (one reduction each; a NaN
            would rank arbitrarily).

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
    query = check_embeddings(query, "query", validate=validate, distances=True)
    if reference is not query:
        reference = check_embeddings(reference, "reference", validate=validate, distances=True)
    check_same_dim(query, reference)
    check_distance(distance)
    check_k(k, reference.shape[0] - int(ref_includes_query), "k")
    if ref_includes_query:
        check_query_prefix(query.shape[0], reference.shape[0])
    scorer = Scorer(reference.to(query.device), distance)
    m = query.shape[0]
    cs = chunk_size or auto_chunk(reference.shape[0], m)
    out_d = torch.empty(m, k, dtype=scorer.reference.dtype, device=query.device)
    out_i = torch.empty(m, k, dtype=torch.int64, device=query.device)
    with torch.no_grad():
        for s in range(0, m, cs):
            e = min(m, s + cs)
            self_index = torch.arange(s, e, device=query.device) if ref_includes_query else None
            vals, idx = rank_chunk(scorer, query[s:e], k, self_index)
            out_d[s:e] = scorer.reported(vals).to(out_d.dtype)
            out_i[s:e] = idx
    return out_d, out_i
