"""Ranked-list measures on labels alone: precision, R-precision, tiers, AP, RR, NMRR.

Per-query values from the labels of the references in rank order, ``ranked_labels`` of shape
``(B, L)`` (the query itself already removed). Notation: hits ``h_i = [y_{r_i} = y_q]``,
``R_q`` relevant references; a query with ``R_q = 0`` gets NaN where a measure divides by it.
The ``*_of`` functions are the unchecked maths that the registry's measures call.
"""

from __future__ import annotations

import torch

from ..._checks import check_positive_int
from ...errors import SentimentMetricError
from .ranking import Ranking, check_depth, check_num_relevant, check_ranked, safe_div

__all__ = [
    "average_precision",
    "average_precision_of",
    "nmrr",
    "nmrr_of",
    "precision_at_k",
    "precision_of",
    "r_precision",
    "reciprocal_rank",
    "reciprocal_rank_of",
    "tier_of",
    "tier_precision",
]


def precision_at_k(ranked_labels: torch.Tensor, query_labels: torch.Tensor, k: int) -> torch.Tensor:
    """Precision at ``k``: the share of the top ``k`` with the query's label.

    .. math::

        P@k(q) = \\frac{1}{k} \\sum_{i=1}^{k} h_i

    Args:
        ranked_labels: ``(B, L)`` labels of the references in rank order, ``L >= k``.
        query_labels: ``(B,)`` labels of the queries.
        k: the depth.

    Returns:
        ``(B,)`` float64.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> sm.functional.precision_at_k(torch.tensor([[0, 1, 0]]), torch.tensor([0]), 2)
        tensor([0.5000], dtype=torch.float64)
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels))
    return precision_of(rk, check_depth(ranked_labels, k))


def precision_of(rk: Ranking, k: int) -> torch.Tensor:
    """:func:`precision_at_k` of a :class:`Ranking`, unchecked."""
    return rk.top(rk.cum_hits, k).to(torch.float64) / k


def r_precision(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, num_relevant: torch.Tensor
) -> torch.Tensor:
    """R-precision: the share of the top ``R_q`` with the query's label.

    .. math::

        \\mathrm{RP}(q) = \\frac{1}{R_q} \\sum_{i=1}^{R_q} h_i

    It equals the *first tier* of the shape-retrieval literature (:func:`tier_precision`).

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= max R_q``.
        query_labels: ``(B,)`` query labels.
        num_relevant: ``(B,)`` ``R_q``, the number of relevant references (NaN where 0).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> sm.functional.r_precision(torch.tensor([[0, 1, 0]]), torch.tensor([0]),
        ...                           torch.tensor([2]))
        tensor([0.5000], dtype=torch.float64)
    """
    return tier_precision(ranked_labels, query_labels, num_relevant, tier=1)


def tier_precision(
    ranked_labels: torch.Tensor,
    query_labels: torch.Tensor,
    num_relevant: torch.Tensor,
    tier: int = 1,
) -> torch.Tensor:
    """First tier (``tier=1``) and second tier (``tier=2``) of a ranking.

    .. math::

        \\mathrm{FT}(q) = \\frac{1}{R_q} \\sum_{i=1}^{R_q} h_i, \\qquad
        \\mathrm{ST}(q) = \\frac{1}{R_q} \\sum_{i=1}^{\\min(2 R_q, N')} h_i

    (the share of the relevant references found in the top ``R_q``, resp. ``2 R_q``).

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= min(tier · max R_q, N')``.
        query_labels: ``(B,)`` query labels.
        num_relevant: ``(B,)`` ``R_q`` (NaN where 0).
        tier: 1 or 2.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> r = torch.tensor([[1, 0, 1, 0]])
        >>> sm.functional.tier_precision(r, torch.tensor([0]), torch.tensor([2]), tier=2)
        tensor([1.], dtype=torch.float64)
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels))
    if tier not in (1, 2):
        raise SentimentMetricError(f"tier must be 1 or 2, got {tier!r}")
    r = _checked_counts(rk, num_relevant, needs_top_r=True)
    return tier_of(rk, r, tier)


def _checked_counts(
    rk: Ranking, num_relevant: torch.Tensor | int, *, needs_top_r: bool
) -> torch.Tensor:
    """``num_relevant`` checked (:func:`check_num_relevant`); with ``needs_top_r`` the
    ranking must hold each query's top ``R_q`` (else the value would silently be too low)."""
    r = check_num_relevant(num_relevant, rk.ranked.shape[0], rk.ranked.device)
    if needs_top_r and r.numel() > 0 and int(r.max()) > rk.depth:
        raise SentimentMetricError(
            f"num_relevant reaches {int(r.max())} but ranked_labels holds only {rk.depth} "
            "rank(s) per query; this measure reads the top R_q ranks"
        )
    return r


def tier_of(rk: Ranking, num_relevant: torch.Tensor, tier: int) -> torch.Tensor:
    """:func:`tier_precision` of a :class:`Ranking` with ``(B,)`` ``R_q``, unchecked."""
    return safe_div(rk.top(rk.cum_hits, tier * num_relevant), num_relevant)


def average_precision(
    ranked_labels: torch.Tensor,
    query_labels: torch.Tensor,
    num_relevant: torch.Tensor,
    k: int | None = None,
    at_r: bool = False,
) -> torch.Tensor:
    """Average precision as pytorch-metric-learning defines it (``at_r`` for MAP@R).

    .. math::

        \\mathrm{AP}@k(q) = \\frac{1}{R_q} \\sum_{i=1}^{k} h_i \\, P@i(q), \\qquad
        \\mathrm{AP}@R(q) = \\frac{1}{R_q} \\sum_{i=1}^{R_q} h_i \\, P@i(q)

    With ``k = N'`` (all references, ``k=None`` with a full ranking) this is the usual average
    precision (scikit-learn's ``average_precision_score``). Note the division by ``R_q`` even
    when ``k < R_q`` (PML's ``mean_average_precision`` with an integer ``k``).

    Args:
        ranked_labels: ``(B, L)`` labels in rank order.
        query_labels: ``(B,)`` query labels.
        num_relevant: ``(B,)`` ``R_q`` (NaN where 0).
        k: the depth (``None``: all ``L`` ranks); ignored when ``at_r``.
        at_r: MAP@R: the depth is each query's ``R_q``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> r = torch.tensor([[0, 1, 0]])
        >>> ap = sm.functional.average_precision(r, torch.tensor([0]), torch.tensor([2]))
        >>> round(float(ap), 4)
        0.8333
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels))
    r = _checked_counts(rk, num_relevant, needs_top_r=at_r)
    depth: torch.Tensor | int = (
        r if at_r else (rk.depth if k is None else check_positive_int(k, "k"))
    )
    return average_precision_of(rk, r, depth)


def average_precision_of(
    rk: Ranking, num_relevant: torch.Tensor, depth: torch.Tensor | int
) -> torch.Tensor:
    """:func:`average_precision` of a :class:`Ranking` to ``depth`` (an int or ``(B,)``)."""
    return safe_div(rk.top(rk.cum_precision_at_hits, depth), num_relevant)


def reciprocal_rank(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, k: int | None = None
) -> torch.Tensor:
    """Reciprocal rank of the first hit within the top ``k`` (0 when none).

    .. math::

        \\mathrm{RR}@k(q) = \\frac{1}{\\min\\{i \\le k : h_i = 1\\}}
        \\quad (0 \\text{ if no } h_i = 1 \\text{ for } i \\le k)

    Args:
        ranked_labels: ``(B, L)`` labels in rank order.
        query_labels: ``(B,)`` query labels.
        k: the depth (``None``: all ``L``).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> r = torch.tensor([[1, 1, 0], [2, 2, 2]])
        >>> sm.functional.reciprocal_rank(r, torch.tensor([0, 0]))
        tensor([0.3333, 0.0000], dtype=torch.float64)
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels))
    return reciprocal_rank_of(rk, rk.depth if k is None else check_positive_int(k, "k"))


def reciprocal_rank_of(rk: Ranking, k: int) -> torch.Tensor:
    """:func:`reciprocal_rank` of a :class:`Ranking`, unchecked."""
    hits = rk.hits[:, : min(k, rk.depth)]
    if hits.shape[1] == 0:
        return torch.zeros(hits.shape[0], dtype=torch.float64, device=hits.device)
    any_hit = hits.any(dim=1)
    first = hits.to(torch.uint8).argmax(dim=1).to(torch.float64) + 1.0
    return torch.where(any_hit, 1.0 / first, torch.zeros_like(first))


def nmrr(
    ranked_labels: torch.Tensor,
    query_labels: torch.Tensor,
    num_relevant: torch.Tensor,
    gtm: int,
) -> torch.Tensor:
    """Normalised modified retrieval rank of MPEG-7 (its mean over the queries is ANMRR).

    With ``NG = R_q`` relevant references, ``GTM`` the largest ``NG`` over all queries and
    ``rank(j)`` the 1-based rank of the ``j``-th relevant reference:

    .. math::

        K(q) = \\min(4\\,NG(q),\\ 2\\,GTM), \\qquad
        \\mathrm{Rank}^*(j) = \\begin{cases} \\mathrm{rank}(j) & \\mathrm{rank}(j) \\le K(q) \\\\
                                          1.25\\,K(q) & \\text{otherwise} \\end{cases}

        \\mathrm{AVR}(q) = \\frac{1}{NG(q)} \\sum_{j=1}^{NG(q)} \\mathrm{Rank}^*(j), \\qquad
        \\mathrm{MRR}(q) = \\mathrm{AVR}(q) - 0.5 - \\frac{NG(q)}{2}

        \\mathrm{NMRR}(q) = \\frac{\\mathrm{MRR}(q)}{1.25\\,K(q) - 0.5 - NG(q)/2}, \\qquad
        \\mathrm{ANMRR} = \\frac{1}{|Q|} \\sum_{q} \\mathrm{NMRR}(q)

    0 is a perfect ranking (every relevant reference first), 1 finds none within ``K(q)``.

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= max K(q)`` (or the full list).
        query_labels: ``(B,)`` query labels.
        num_relevant: ``(B,)`` ``NG(q)`` (NaN where 0).
        gtm: ``GTM``, the largest ``NG`` over all queries of the evaluation.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> q = torch.tensor([0, 0])
        >>> r = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]])
        >>> sm.functional.nmrr(r, q, torch.tensor([2, 2]), gtm=2).tolist()
        [0.0, 0.5714285714285714]
    """
    rk = Ranking(*check_ranked(ranked_labels, query_labels))
    gtm = check_positive_int(gtm, "gtm")
    return nmrr_of(rk, _checked_counts(rk, num_relevant, needs_top_r=False), gtm)


def nmrr_of(rk: Ranking, ng: torch.Tensor, gtm: int) -> torch.Tensor:
    """:func:`nmrr` of a :class:`Ranking` with ``ng`` the ``(B,)`` ``R_q``, unchecked."""
    ng_f = ng.to(torch.float64)
    kq = torch.minimum(4 * ng, torch.full_like(ng, 2 * gtm))
    kq_f = kq.to(torch.float64)
    found = rk.top(rk.cum_hits, kq).to(torch.float64)
    rank_sum = rk.top(rk.cum_rank_of_hits, kq).to(torch.float64)
    avr = safe_div(rank_sum + (ng_f - found) * 1.25 * kq_f, ng_f)
    return (avr - 0.5 - ng_f / 2) / (1.25 * kq_f - 0.5 - ng_f / 2)
