"""The evaluation engine: every asked measure in one chunked pass over the queries.

Each chunk of queries is scored against every reference, ranked only as deep as the asked
measures need (:meth:`Measure.ranking_depth`) and reduced at once to per-query values by each
:class:`~sentiment_metric.functional.retrieval.Measure`'s function, so an ``N × N`` evaluation
never materialises ``N × N``. A query with ``R_q = 0`` ("lone": its label is absent from the
candidates) gets NaN and is left out of the means, as pytorch-metric-learning does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import torch

from ..._checks import check_embeddings, check_labels
from ...errors import SentimentMetricError
from .knn import (
    KnnFn,
    auto_chunk,
    check_distance,
    check_k,
    check_query_prefix,
    check_same_dim,
    external_rank,
)
from .ranking import MeasureInputs, Ranking
from .registry import MEASURES, Measure, measure
from .scoring import Distance, Scorer, rank_chunk
from .wheel_measures import wheel_relevance

if TYPE_CHECKING:
    from ...wheel import LabelRelations

__all__ = [
    "DEFAULT_WHEEL_K",
    "KSpec",
    "per_query_retrieval_metrics",
    "resolve_k",
    "resolve_reference",
    "resolve_wheel_k",
    "retrieval_metrics",
]

KSpec = int | Literal["max_bin_count"] | None
T = TypeVar("T")

DEFAULT_WHEEL_K = 10
"""The depth of the wheel measures when neither ``wheel_k`` nor an int ``k`` is given."""


def resolve_k(k: KSpec, max_bin_count: int, n_cand: int) -> int:
    """The integer depth for PML's ``k`` (``int``, ``None`` = all, ``"max_bin_count"``).

    Example:
        >>> from sentiment_metric.functional.retrieval import resolve_k
        >>> resolve_k(None, 4, 9), resolve_k("max_bin_count", 4, 9), resolve_k(3, 4, 9)
        (9, 4, 3)
    """
    if k is None:
        return n_cand
    if k == "max_bin_count":
        return max(1, min(max_bin_count, n_cand))
    return check_k(k, n_cand, "k")


def resolve_wheel_k(wheel_k: int | None, k: KSpec, n_cand: int) -> int:
    """The depth of the wheel measures (``polarity_precision_at_k``, ``wheel_ndcg_at_k``,
    ``mean_wheel_distance_at_k``): ``wheel_k`` when given, else PML's ``k`` when it is an int,
    else :data:`DEFAULT_WHEEL_K` (at most ``n_cand``). A depth that depends on the data
    (``k=None`` or ``"max_bin_count"``) never reaches them: their value at depth 1,200 would be
    another measure under the same name.

    Example:
        >>> from sentiment_metric.functional.retrieval import resolve_wheel_k
        >>> resolve_wheel_k(None, "max_bin_count", 5000), resolve_wheel_k(None, 5, 9)
        (10, 5)
        >>> resolve_wheel_k(3, None, 9), resolve_wheel_k(None, None, 4)
        (3, 4)
    """
    if wheel_k is not None:
        return check_k(wheel_k, n_cand, "wheel_k")
    if isinstance(k, int) and not isinstance(k, bool):
        return check_k(k, n_cand, "k")
    return max(1, min(DEFAULT_WHEEL_K, n_cand))


def resolve_reference(
    query: T,
    query_labels: T,
    reference: T | None,
    reference_labels: T | None,
    ref_includes_query: bool,
) -> tuple[T, T, bool]:
    """``(reference, reference_labels, ref_includes_query)``: without a reference, the
    queries themselves (PML's rule), each query left out of its own results.

    Example:
        >>> from sentiment_metric.functional.retrieval import resolve_reference
        >>> resolve_reference([1.0], [0], None, None, False)
        ([1.0], [0], True)
    """
    if reference is None:
        if reference_labels is not None:
            raise SentimentMetricError("reference_labels given without reference")
        return query, query_labels, True
    if reference_labels is None:
        raise SentimentMetricError("reference given without reference_labels")
    return reference, reference_labels, ref_includes_query


def per_query_retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_labels: torch.Tensor | None = None,
    *,
    relations: LabelRelations | None = None,
    metrics: Iterable[str] | None = None,
    k: KSpec = 10,
    wheel_k: int | None = None,
    ref_includes_query: bool = False,
    distance: Distance = "euclidean",
    knn_fn: KnnFn | None = None,
    chunk_size: int | None = None,
    validate: bool = True,
) -> dict[str, torch.Tensor]:
    """Per-query retrieval measures in one chunked pass over the queries.

    Each chunk is ranked only as deep as the asked measures need, in ``O(chunk · N)`` memory.
    The measures are the entries of :data:`~sentiment_metric.functional.retrieval.MEASURES`
    and ``precision_at_<n>``; ``anmrr`` is per query the NMRR of :func:`nmrr`. The positions
    the fixed-depth measures read are ranked as a float64 brute force would, ties by index
    (:mod:`~sentiment_metric.functional.retrieval.scoring`); no value depends on ``metrics``.

    .. math::

        \\bar m = \\frac{1}{|\\{q : R_q > 0\\}|} \\sum_{q : R_q > 0} m(q)

    Args:
        query: ``(M, D)`` query embeddings.
        query_labels: ``(M,)`` integer labels.
        reference: ``(N, D)``; ``None``: the queries (``ref_includes_query`` set).
        reference_labels: ``(N,)`` integer labels.
        relations: the :class:`~sentiment_metric.LabelRelations`; needed by the wheel
            measures (polarity, nDCG, wheel distance).
        metrics: names to compute (default :data:`RETRIEVAL_METRICS`).
        k: depth of ``mean_average_precision`` and ``mean_reciprocal_rank``: an int,
            ``None`` (all references) or ``"max_bin_count"`` (the largest ``R_q``), as in
            PML.
        wheel_k: depth of the wheel measures (``polarity_precision_at_k``,
            ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``); default: ``k`` when it is an
            int, else 10 (:func:`resolve_wheel_k`).
        ref_includes_query: the first ``M`` references are the queries; query ``i`` never
            retrieves reference ``i``.
        distance: ``"euclidean"`` (default; the ranking of faiss ``IndexFlatL2``),
            ``"cosine"`` or a callable ``(q (b, D), ref (N, D)) -> (b, N)`` distances.
        knn_fn: a PML-style kNN callable (e.g. faiss) instead of the built-in ranking; called
            per chunk with ``ref_includes_query=False`` (the query itself is removed here).
        chunk_size: queries per chunk (default: about 96 MB of working memory).
        validate: check values (finite embeddings, labels in range).

    Returns:
        name -> ``(M,)`` float64 tensor on the query's device; NaN for queries whose label is
        absent from the candidates (``R_q = 0``).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "awe", "fear"])
        >>> x = torch.tensor([[0.0], [0.1], [1.0], [1.1], [5.0], [5.1]])
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> out = sm.functional.per_query_retrieval_metrics(
        ...     x, y, relations=rel, k=1, metrics=["precision_at_1", "anmrr"])
        >>> out["precision_at_1"].tolist(), out["anmrr"].tolist()
        ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """
    ref, ref_labels, ref_includes_query = resolve_reference(
        query, query_labels, reference, reference_labels, ref_includes_query
    )
    measures = _measures(metrics)
    query, query_labels, ref, ref_labels = _checked_inputs(
        query, query_labels, ref, ref_labels, relations, validate
    )
    check_distance(distance)
    _check_relations(measures, relations)
    plan = _plan(query_labels, ref_labels, measures, relations, (k, wheel_k), ref_includes_query)
    out = {m.name: torch.full_like(query_labels, math.nan, dtype=torch.float64) for m in measures}
    if plan is not None:
        scorer = Scorer(ref.to(query.device), distance)
        _evaluate(out, measures, plan, scorer, query, query_labels, ref_labels, knn_fn, chunk_size)
    return out


def _measures(metrics: Iterable[str] | None) -> list[Measure]:
    """The :class:`Measure` of each name in ``metrics`` (default: every registry entry)."""
    if metrics is None:
        return list(MEASURES.values())
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Iterable):
        raise SentimentMetricError(
            f"metrics must be a list of measure names (or None for all), got {metrics!r}"
        )
    try:
        return [measure(n) for n in metrics]
    except SentimentMetricError as err:
        raise SentimentMetricError(f"metrics: {err}") from None


def _checked_inputs(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference: torch.Tensor,
    reference_labels: torch.Tensor,
    relations: LabelRelations | None,
    validate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embeddings checked, the labels checked and moved to the query's device."""
    from ...wheel import LabelRelations  # the label layer (no cycle: it imports no maths)

    if relations is not None and not isinstance(relations, LabelRelations):
        raise SentimentMetricError(
            "relations must be a sentiment_metric.LabelRelations (e.g. "
            f"sm.MIKELS_WHEEL.relations(class_names)) or None, got {type(relations).__name__}"
        )
    num_classes = relations.num_classes if relations is not None else None
    query = check_embeddings(query, "query", validate=validate, distances=True)
    reference = check_embeddings(reference, "reference", validate=validate, distances=True)
    check_same_dim(query, reference)
    query_labels, reference_labels = (
        check_labels(
            lab,
            num_classes,
            length=emb.shape[0],
            name=f"{length_name}_labels",
            length_name=length_name,
            validate=validate,
        ).to(query.device)
        for lab, emb, length_name in (
            (query_labels, query, "query"),
            (reference_labels, reference, "reference"),
        )
    )
    return query, query_labels, reference, reference_labels


def _check_relations(measures: Sequence[Measure], relations: LabelRelations | None) -> None:
    need = sorted({m.name for m in measures if m.needs_relations})
    if relations is None and need:
        raise SentimentMetricError(f"relations= is needed for {need}")


@dataclass(frozen=True)
class _Plan:
    """What the whole evaluation shares: ``R_q``, the depths, the wheel's matrices."""

    ref_includes_query: bool
    num_relevant: torch.Tensor  # (M,) R_q
    valid: torch.Tensor  # (M,) R_q > 0
    max_relevant: int  # GTM
    k: int  # PML's k resolved
    wheel_k: int  # the wheel measures' depth
    depth: int  # the ranking depth every asked measure is computed from
    exact_depth: int  # the positions ranked exactly as a float64 brute force
    candidate_counts: torch.Tensor  # (C, C): row = query label, candidates per class
    groups: torch.Tensor | None
    dis: torch.Tensor | None
    relevance: torch.Tensor | None


def _plan(
    query_labels: torch.Tensor,
    reference_labels: torch.Tensor,
    measures: Sequence[Measure],
    relations: LabelRelations | None,
    depths: tuple[KSpec, int | None],
    ref_includes_query: bool,
) -> _Plan | None:
    """The evaluation's plan; ``None`` when no query has a relevant reference (all NaN)."""
    m, n = query_labels.shape[0], reference_labels.shape[0]
    if ref_includes_query:
        check_query_prefix(m, n)
    c = relations.num_classes if relations is not None else None
    if c is None:
        c = int(max(int(query_labels.max()), int(reference_labels.max()))) + 1
    ref_counts = torch.bincount(reference_labels, minlength=c)[:c]
    num_rel = (ref_counts[query_labels] - int(ref_includes_query)).clamp(min=0)
    valid = num_rel > 0
    max_r = int(num_rel.max()) if bool(valid.any()) else 0
    n_cand = n - int(ref_includes_query)
    if n_cand < 1:
        raise SentimentMetricError(
            "the reference set has no candidate besides the queries themselves; nothing to retrieve"
        )
    k, wheel_k = depths
    num_k = resolve_k(k, max_r, n_cand)
    num_wheel_k = resolve_wheel_k(wheel_k, k, n_cand)
    for ms in measures:
        if isinstance(ms.depth, int):
            check_k(ms.depth, n_cand, ms.name)
    if max_r == 0 or m == 0:
        return None
    need = {ms.name: ms.ranking_depth(num_k, max_r, n_cand, num_wheel_k) for ms in measures}
    depth = max([1, *need.values()])
    # exact: the fixed depths (ints, wheel_k, an int k), not those that depend on the data
    fixed = [
        need[ms.name]
        for ms in measures
        if isinstance(ms.depth, int)
        or ms.depth == "wheel_k"
        or (ms.depth == "k" and isinstance(k, int))
    ]
    cand = ref_counts[None, :].expand(c, -1).clone()
    if ref_includes_query:
        cand -= torch.eye(c, dtype=cand.dtype, device=cand.device)
    device = query_labels.device
    return _Plan(
        ref_includes_query=ref_includes_query,
        num_relevant=num_rel,
        valid=valid,
        max_relevant=max_r,
        k=num_k,
        wheel_k=num_wheel_k,
        depth=min(depth, n_cand),
        exact_depth=min(max([1, *fixed]), depth, n_cand),
        candidate_counts=cand.clamp(min=0),
        groups=None if relations is None else relations.groups.to(device),
        dis=None if relations is None else relations.dis.to(device, torch.float64),
        relevance=(
            None
            if relations is None
            else wheel_relevance(relations.level, relations.dis).to(device)
        ),
    )


def _evaluate(
    out: dict[str, torch.Tensor],
    measures: Sequence[Measure],
    plan: _Plan,
    scorer: Scorer,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference_labels: torch.Tensor,
    knn_fn: KnnFn | None,
    chunk_size: int | None,
) -> None:
    """Fill ``out`` chunk by chunk: rank each chunk to ``plan.depth``, apply each measure."""
    m = query.shape[0]
    cs = chunk_size or auto_chunk(reference_labels.shape[0], m)
    with torch.no_grad():
        for s in range(0, m, cs):
            e = min(m, s + cs)
            self_index = (
                torch.arange(s, e, device=query.device) if plan.ref_includes_query else None
            )
            if knn_fn is None:
                _, idx = rank_chunk(scorer, query[s:e], plan.depth, self_index, plan.exact_depth)
            else:
                q = scorer.prepare(query[s:e])
                idx = external_rank(knn_fn, q, scorer.reference, plan.depth, self_index)
            ql = query_labels[s:e]
            ranking = Ranking(reference_labels[idx], ql)
            inputs = MeasureInputs(
                num_relevant=plan.num_relevant[s:e],
                k=plan.k,
                wheel_k=plan.wheel_k,
                gtm=plan.max_relevant,
                candidate_counts=plan.candidate_counts[ql],
                groups=plan.groups,
                dis=plan.dis,
                relevance=plan.relevance,
            )
            ok = plan.valid[s:e]
            for ms in measures:
                v = ms.fn(ranking, inputs)
                out[ms.name][s:e] = torch.where(ok, v, torch.full_like(v, math.nan))


def retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_labels: torch.Tensor | None = None,
    **kwargs: object,
) -> dict[str, float]:
    """Mean retrieval measures over the queries whose label has relevant references.

    The same arguments as :func:`per_query_retrieval_metrics`; each per-query measure is
    averaged over the queries with ``R_q > 0`` (NaN when there is none), and a measure that is
    undefined for some of them (``group_miss_share_at_k`` for a query without a wrong
    neighbour in its top ``wheel_k``) over those where it is defined.

    .. math::

        \\bar m = \\frac{1}{|\\{q : R_q > 0\\}|} \\sum_{q : R_q > 0} m(q)

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "awe", "fear"])
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [1.0], [1.1], [5.1]])
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> out = sm.functional.retrieval_metrics(x, y, relations=rel, k=1)
        >>> round(out["precision_at_1"], 4), round(out["mean_wheel_distance_at_k"], 4)
        (0.3333, 1.3333)
    """
    per_query = per_query_retrieval_metrics(
        query,
        query_labels,
        reference,
        reference_labels,
        **kwargs,  # type: ignore[arg-type]
    )
    res = {}
    for name, v in per_query.items():
        ok = ~torch.isnan(v)
        res[name] = float(v[ok].mean()) if bool(ok.any()) else math.nan
    return res
