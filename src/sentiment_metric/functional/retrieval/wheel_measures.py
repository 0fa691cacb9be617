"""Wheel-graded measures: graded relevance, polarity precision, wheel distance, wheel nDCG.

Per-query values from the ranked reference labels ``(B, L)`` and the wheel's matrices of a
:class:`~sentiment_metric.LabelRelations` (``groups``, ``level``, ``dis``). The ``*_of``
functions are the unchecked maths that the registry's measures call.
"""

from __future__ import annotations

import torch

from ..._checks import check_shape, check_tensor
from ...errors import SentimentMetricError
from .ranking import Ranking, check_depth, check_ranked, check_square, safe_div

__all__ = [
    "mean_wheel_distance_at_k",
    "ndcg_of",
    "polarity_of",
    "polarity_precision_at_k",
    "wheel_distance_of",
    "wheel_ndcg_at_k",
    "wheel_relevance",
]


def wheel_relevance(level: torch.Tensor, dis: torch.Tensor) -> torch.Tensor:
    """Graded relevance of a reference label to a query label, read off the wheel.

    Same emotion scores highest (1), other emotions of the same polarity score less the
    farther they are on the wheel, emotions of the opposite polarity score 0 (the lowest):

    .. math::

        \\mathrm{rel}(a, b) =
        \\begin{cases}
            1 / \\mathrm{dis}(a, b) & \\text{if } \\mathrm{level}(a, b) \\le 1
                \\quad (\\mathrm{dis}(a, a) = 1 \\Rightarrow \\mathrm{rel}(a, a) = 1) \\\\
            0 & \\text{if } \\mathrm{level}(a, b) = 2 \\text{ (opposite polarity)}
        \\end{cases}

    On Mikels' wheel that is 1 for the same emotion, 1/2, 1/3, 1/4 for a same-polarity emotion
    1, 2, 3 steps away, and 0 across polarity; for a plain two-level hierarchy
    (``dis = 1 + level``) it is 1, 1/2, 0. The weights are the paper's ``θ = 1 / dis``.

    Args:
        level: ``(C, C)`` integer matrix, 0 same, 1 same polarity, 2 opposite.
        dis: ``(C, C)`` wheel distances ``>= 1``.

    Returns:
        ``(C, C)`` float64 relevance, rows indexed by the query label.

    Example:
        >>> import sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "contentment", "awe", "anger"])
        >>> sm.functional.wheel_relevance(rel.level, rel.dis)[0].tolist()
        [1.0, 0.5, 0.3333333333333333, 0.0]
    """
    level = check_tensor(level, "level")
    dis = check_tensor(dis, "dis")
    if (
        level.dim() != 2
        or level.shape[0] != level.shape[1]
        or tuple(dis.shape) != tuple(level.shape)
    ):
        raise SentimentMetricError(
            f"level and dis must both be (C, C) matrices, got {tuple(level.shape)} and "
            f"{tuple(dis.shape)}"
        )
    rel = 1.0 / dis.to(torch.float64)
    return torch.where(level.to(rel.device) <= 1, rel, torch.zeros_like(rel))


def polarity_precision_at_k(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, groups: torch.Tensor, k: int
) -> torch.Tensor:
    """Share of the top ``k`` with the query's polarity.

    .. math::

        PP@k(q) = \\frac{1}{k} \\sum_{i=1}^{k} [g(y_{r_i}) = g(y_q)]

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= k``.
        query_labels: ``(B,)`` query labels.
        groups: ``(C,)`` polarity id of each class (``LabelRelations.groups``).
        k: the depth.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1])
        >>> sm.functional.polarity_precision_at_k(torch.tensor([[1, 2]]), torch.tensor([0]), g, 2)
        tensor([0.5000], dtype=torch.float64)
    """
    groups = check_shape(groups, ("C",), "groups")
    rk = Ranking(*check_ranked(ranked_labels, query_labels, groups.shape[0]))
    return polarity_of(rk, groups, check_depth(ranked_labels, k))


def polarity_of(rk: Ranking, groups: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`polarity_precision_at_k` of a :class:`Ranking`, unchecked."""
    g = groups.to(rk.ranked.device)
    same = g[rk.ranked[:, :k]] == g[rk.query][:, None]
    return same.sum(dim=1, dtype=torch.float64) / k


def mean_wheel_distance_at_k(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, dis: torch.Tensor, k: int
) -> torch.Tensor:
    """Mean wheel distance (in steps, ``dis − 1``) between the query and its top ``k``.

    .. math::

        \\bar d@k(q) = \\frac{1}{k} \\sum_{i=1}^{k} (\\mathrm{dis}(y_q, y_{r_i}) - 1)

    This is the "average hierarchical distance@k" of Bertinetto et al., "Making Better
    Mistakes" (CVPR 2020), with the wheel as the hierarchy; for a
    :meth:`~sentiment_metric.LabelRelations.from_groups` hierarchy without ``dis``,
    ``dis − 1`` is the level (0 same class, 1 same group, 2 across).

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= k``.
        query_labels: ``(B,)`` query labels.
        dis: ``(C, C)`` wheel distances.
        k: the depth.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "awe", "fear"])
        >>> sm.functional.mean_wheel_distance_at_k(torch.tensor([[0, 1, 2]]), torch.tensor([0]),
        ...                                        rel.dis, 3)
        tensor([2.], dtype=torch.float64)
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels, check_square(dis, "dis")))
    return wheel_distance_of(rk, dis, check_depth(ranked_labels, k))


def wheel_distance_of(rk: Ranking, dis: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`mean_wheel_distance_at_k` of a :class:`Ranking`, unchecked."""
    d = dis.to(device=rk.ranked.device, dtype=torch.float64)
    return (d[rk.query[:, None], rk.ranked[:, :k]] - 1.0).mean(dim=1)


def _ideal_dcg(relevance: torch.Tensor, counts: torch.Tensor, k: int) -> torch.Tensor:
    """``(B,)`` ideal DCG@k for query labels with relevance rows ``relevance (B, C)`` and
    available references per class ``counts (B, C)``."""
    rel_sorted, order = torch.sort(relevance, dim=1, descending=True)
    cnt = counts.to(torch.int64).gather(1, order)  # (B, C)
    end = torch.cumsum(cnt, dim=1)  # ranks (exclusive end) where each relevance block ends
    start = end - cnt
    # DCG of a block of ranks [s, e) (1-based s+1..e), clipped to k: rel * (H(e') - H(s'))
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=relevance.device))
    cdisc = torch.cat([torch.zeros(1, dtype=torch.float64, device=disc.device), disc.cumsum(0)])
    s = start.clamp(max=k)
    e = end.clamp(max=k)
    return (rel_sorted * (cdisc[e] - cdisc[s])).sum(dim=1)


def wheel_ndcg_at_k(
    ranked_labels: torch.Tensor,
    query_labels: torch.Tensor,
    relevance: torch.Tensor,
    k: int,
    candidate_counts: torch.Tensor,
) -> torch.Tensor:
    """nDCG at ``k`` with the wheel's graded relevance (:func:`wheel_relevance`).

    .. math::

        \\mathrm{DCG}@k(q) = \\sum_{i=1}^{k} \\frac{\\mathrm{rel}(y_q, y_{r_i})}{\\log_2(i + 1)},
        \\qquad
        \\mathrm{nDCG}@k(q) = \\frac{\\mathrm{DCG}@k(q)}{\\mathrm{IDCG}@k(q)}

    with linear gains (as scikit-learn's ``ndcg_score``) and ``IDCG@k`` the DCG of the
    candidate references sorted by decreasing relevance. ``rel`` is 1 for the same emotion,
    ``1/dis`` for another emotion of the same polarity and 0 across polarity.

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= k``.
        query_labels: ``(B,)`` query labels.
        relevance: ``(C, C)`` graded relevance, rows indexed by the query label.
        k: the depth.
        candidate_counts: ``(C,)`` or ``(B, C)``: how many candidate references each class
            has for the query (the query itself not counted), for the ideal ranking.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "contentment", "fear"])
        >>> g = sm.functional.wheel_relevance(rel.level, rel.dis)
        >>> r = torch.tensor([[1, 0, 2]])
        >>> v = sm.functional.wheel_ndcg_at_k(r, torch.tensor([0]), g, 2, torch.tensor([1, 1, 1]))
        >>> round(float(v), 4)
        0.8597
    """
    c = check_square(relevance, "relevance")
    rk = Ranking(*check_ranked(ranked_labels, query_labels, c))
    counts = check_tensor(candidate_counts, "candidate_counts")
    b = ranked_labels.shape[0]
    check_shape(counts, ("C",) if counts.dim() == 1 else (b, "C"), "candidate_counts")
    if counts.shape[-1] < c:
        raise SentimentMetricError(
            f"candidate_counts must have one count per class ({c} classes in relevance), "
            f"got shape {tuple(counts.shape)}"
        )
    counts = counts.to(ranked_labels.device)
    if counts.dim() == 1:
        counts = counts[None].expand(b, -1)
    return ndcg_of(rk, relevance, check_depth(ranked_labels, k), counts)


def ndcg_of(rk: Ranking, relevance: torch.Tensor, k: int, counts: torch.Tensor) -> torch.Tensor:
    """:func:`wheel_ndcg_at_k` of a :class:`Ranking` (``counts`` ``(B, C)``), unchecked."""
    rel = relevance.to(device=rk.ranked.device, dtype=torch.float64)
    kk = min(k, rk.depth)
    gains = rel[rk.query[:, None], rk.ranked[:, :kk]]
    disc = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64, device=gains.device))
    dcg = gains @ disc
    ideal = _ideal_dcg(rel[rk.query], counts, k)
    return safe_div(dcg, ideal)
