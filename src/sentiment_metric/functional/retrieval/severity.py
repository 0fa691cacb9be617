"""Measures of mistake severity on a two-level hierarchy: hierarchical AP, group-miss share.

A ranking can be wrong in two ways: a reference of another class of the query's group
(polarity) ranks high, or one of the other group does; these measures tell them apart. The
hierarchy is the ``(C,)`` group of each class (``LabelRelations.groups``), from which
``level(a, b)`` is 0 for the same class, 1 for another class of the same group and 2 across
groups (``LabelRelations.level``). The ``*_of`` functions are the unchecked maths that the
registry's measures call.
"""

from __future__ import annotations

import math

import torch

from ..._checks import check_shape
from .ranking import Ranking, check_depth, check_ranked, safe_div

__all__ = [
    "group_miss_share_at_k",
    "group_miss_share_of",
    "hierarchical_average_precision",
    "hierarchical_average_precision_of",
]


def hierarchical_average_precision(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """Hierarchical average precision (H-AP) over the whole ranking.

    H-AP (Ramzi et al., "Hierarchical Average Precision Training for Pertinent Image
    Retrieval", ECCV 2022) with HAPPIER's linear relevance for a tree of depth 2:
    ``rel = (2 − level) / 2``, i.e. 1 for the same class, 1/2 for another class of the
    query's group and 0 across groups. With ``Ω⁺`` the references with ``rel > 0`` and
    ``rank(k)`` the 1-based position of reference ``k``:

    .. math::

        \\mathrm{H\\text{-}rank}(k) = \\mathrm{rel}(k)
            + \\sum_{j \\in \\Omega^+,\\ \\mathrm{rank}(j) < \\mathrm{rank}(k)}
              \\min(\\mathrm{rel}(k), \\mathrm{rel}(j))

        \\mathrm{H\\text{-}AP}(q) = \\frac{1}{\\sum_{k \\in \\Omega^+} \\mathrm{rel}(k)}
            \\sum_{k \\in \\Omega^+} \\frac{\\mathrm{H\\text{-}rank}(k)}{\\mathrm{rank}(k)}

    With two levels the sum closes: ``H-rank(k) = (n_g(k) + [same class]·n_c(k)) / 2`` with
    ``n_g(k)``, ``n_c(k)`` the same-group and same-class references up to rank ``k``, so
    H-AP is the mean of the class AP and the group (polarity) AP weighted by their numbers of
    relevant references, ``(R_c AP_c + R_g AP_g) / (R_c + R_g)``: computed from two cumulative
    sums, never a loop. Without a same-group reference of another class it is the usual
    average precision over the whole ranking. 1 is a ranking by decreasing relevance.

    Args:
        ranked_labels: ``(B, L)`` labels of the references in rank order, the whole ranking
            of the candidates (the normaliser sums ``rel`` over these ``L``).
        query_labels: ``(B,)`` labels of the queries.
        groups: ``(C,)`` group (polarity) id of each class (``LabelRelations.groups``).

    Returns:
        ``(B,)`` float64; NaN for a query without a reference of its group.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1])  # classes 0 and 1 share a group
        >>> r = torch.tensor([[1, 0, 2], [0, 2, 1]])
        >>> sm.functional.hierarchical_average_precision(r, torch.tensor([0, 0]), g).tolist()
        [0.8333333333333334, 0.8888888888888888]
    """
    groups = check_shape(groups, ("C",), "groups")
    rk = Ranking(*check_ranked(ranked_labels, query_labels, groups.shape[0]))
    return hierarchical_average_precision_of(rk, groups)


def hierarchical_average_precision_of(rk: Ranking, groups: torch.Tensor) -> torch.Tensor:
    """:func:`hierarchical_average_precision` of a :class:`Ranking`, unchecked."""
    g = groups.to(rk.ranked.device)
    in_group = g[rk.ranked] == g[rk.query][:, None]  # Ω⁺: same group, same class included
    # 2 H-rank(k) = n_g(k) + [same class] n_c(k) on Ω⁺, 0 elsewhere (n_g, n_c: the same-group
    # and same-class references up to rank k): int32 planes, then divided by the ranks and
    # summed per row (a row's sum never depends on the chunk)
    if rk.depth == 0:
        return torch.full(rk.query.shape, math.nan, dtype=torch.float64, device=g.device)
    n_g = torch.cumsum(in_group, dim=1, dtype=torch.int32)
    twice_h_rank = torch.where(in_group, n_g, 0)
    den = n_g[:, -1].to(torch.int64)
    del n_g
    n_c = torch.cumsum(rk.hits, dim=1, dtype=torch.int32)
    twice_h_rank += torch.where(rk.hits, n_c, 0)
    den += n_c[:, -1]
    del n_c
    num = (twice_h_rank / rk.ranks.to(torch.float64)).sum(dim=1)
    return safe_div(num, den)


def group_miss_share_at_k(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, groups: torch.Tensor, k: int
) -> torch.Tensor:
    """Among the top ``k`` of another class than the query's, the share of another group too.

    "How bad are the wrong neighbours": 0 when every wrong neighbour at least has the query's
    polarity, 1 when every one is across polarity. Lower is better.

    .. math::

        \\mathrm{GMS}@k(q) = \\frac{\\sum_{i=1}^{k} [g(y_{r_i}) \\ne g(y_q)]}
                                 {\\sum_{i=1}^{k} [y_{r_i} \\ne y_q]}
                          = \\frac{1 - PP@k(q)}{1 - P@k(q)}

    (``PP@k`` the polarity precision, ``P@k`` the precision at ``k``).

    Args:
        ranked_labels: ``(B, L)`` labels in rank order, ``L >= k``.
        query_labels: ``(B,)`` query labels.
        groups: ``(C,)`` group (polarity) id of each class (``LabelRelations.groups``).
        k: the depth.

    Returns:
        ``(B,)`` float64; NaN for a query whose top ``k`` are all of its class (no mistake to
        grade; the means leave such queries out).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1])
        >>> r = torch.tensor([[1, 2, 2], [0, 0, 1]])
        >>> sm.functional.group_miss_share_at_k(r, torch.tensor([0, 0]), g, 3).tolist()
        [0.6666666666666666, 0.0]
        >>> sm.functional.group_miss_share_at_k(r, torch.tensor([0, 0]), g, 2).tolist()
        [0.5, nan]
    """
    groups = check_shape(groups, ("C",), "groups")
    rk = Ranking(*check_ranked(ranked_labels, query_labels, groups.shape[0]))
    return group_miss_share_of(rk, groups, check_depth(ranked_labels, k))


def group_miss_share_of(rk: Ranking, groups: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`group_miss_share_at_k` of a :class:`Ranking`, unchecked."""
    g = groups.to(rk.ranked.device)
    top = rk.ranked[:, :k]
    other_group = (g[top] != g[rk.query][:, None]).sum(dim=1)
    wrong = (top != rk.query[:, None]).sum(dim=1)
    return safe_div(other_group, wrong)
