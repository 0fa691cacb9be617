"""What every ranked-list measure reads: the ranking of a chunk of queries and its facts.

A measure of the registry (:data:`~sentiment_metric.functional.retrieval.MEASURES`) is a
function ``fn(ranking, inputs) -> (B,) float64``: :class:`Ranking` holds the labels of the
references in rank order and caches the cumulative sums several measures share;
:class:`MeasureInputs` holds what the evaluation knows about the queries beyond their ranking
(``R_q``, the depth ``k``, the wheel's matrices). The checks and the guarded division of the
public measure functions live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._checks import check_labels, check_positive_int, check_shape, check_tensor
from ...errors import SentimentMetricError

__all__ = [
    "MeasureInputs",
    "Ranking",
    "check_depth",
    "check_num_relevant",
    "check_ranked",
    "check_square",
    "safe_div",
]


class Ranking:
    """The ranked reference labels of ``B`` queries and the cumulative sums measures share.

    With hits ``h_i = [y_{r_i} = y_q]`` and 1-based ranks ``i``, the cached quantities are
    the cumulative hits ``Σ_{j≤i} h_j``, the cumulative ``Σ_{j≤i} h_j P@j`` (average
    precision) and the cumulative ``Σ_{j≤i} h_j j`` (ANMRR); each is computed once per chunk,
    on first use.

    Args:
        ranked_labels: ``(B, L)`` labels of the references in rank order (the query itself
            already removed).
        query_labels: ``(B,)`` labels of the queries.

    Example:
        >>> import torch
        >>> rk = Ranking(torch.tensor([[0, 1, 0]]), torch.tensor([0]))
        >>> rk.cum_hits.tolist(), rk.top(rk.cum_hits, 2).tolist()
        ([[1, 1, 2]], [1])
    """

    def __init__(self, ranked_labels: torch.Tensor, query_labels: torch.Tensor) -> None:
        self.ranked = ranked_labels
        self.query = query_labels
        self.depth = int(ranked_labels.shape[1])
        self._hits: torch.Tensor | None = None
        self._cum: torch.Tensor | None = None
        self._cum_prec: torch.Tensor | None = None
        self._cum_rank: torch.Tensor | None = None
        self._ranks: torch.Tensor | None = None

    @property
    def ranks(self) -> torch.Tensor:
        """``(L,)`` 1-based ranks."""
        if self._ranks is None:
            self._ranks = torch.arange(1, self.depth + 1, device=self.ranked.device)
        return self._ranks

    @property
    def hits(self) -> torch.Tensor:
        """``(B, L)`` bool ``h_i``."""
        if self._hits is None:
            self._hits = self.ranked == self.query[:, None]
        return self._hits

    @property
    def cum_hits(self) -> torch.Tensor:
        """Cumulative ``Σ_{j<=i} h_j`` (int64)."""
        if self._cum is None:
            self._cum = torch.cumsum(self.hits, dim=1, dtype=torch.int64)
        return self._cum

    @property
    def cum_precision_at_hits(self) -> torch.Tensor:
        """Cumulative ``Σ_{j<=i} h_j P@j`` (float64)."""
        if self._cum_prec is None:
            p = self.cum_hits.to(torch.float64) / self.ranks
            self._cum_prec = torch.cumsum(p * self.hits, dim=1)
        return self._cum_prec

    @property
    def cum_rank_of_hits(self) -> torch.Tensor:
        """Cumulative ``Σ_{j<=i} h_j j`` (int64)."""
        if self._cum_rank is None:
            self._cum_rank = torch.cumsum(self.hits * self.ranks, dim=1)
        return self._cum_rank

    def top(self, cum: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
        """The cumulative quantity ``cum`` over the first ``n`` ranks (``n`` per row)."""
        if isinstance(n, int):
            n = torch.full((cum.shape[0],), n, dtype=torch.int64, device=cum.device)
        n = n.to(device=cum.device, dtype=torch.int64).clamp(0, self.depth)
        if self.depth == 0:
            return torch.zeros(cum.shape[0], dtype=cum.dtype, device=cum.device)
        val = cum.gather(1, (n - 1).clamp(min=0)[:, None]).squeeze(1)
        return torch.where(n > 0, val, torch.zeros_like(val))


@dataclass(frozen=True)
class MeasureInputs:
    """What the evaluation knows about a chunk of ``B`` queries besides their ranking.

    Attributes:
        num_relevant: ``(B,)`` int64 ``R_q``, the relevant candidate references per query.
        k: PML's ``k`` resolved to an int (``mean_average_precision``,
            ``mean_reciprocal_rank``).
        gtm: ``GTM``, the largest ``R_q`` over all queries of the evaluation (ANMRR).
        candidate_counts: ``(B, C)`` candidate references per class for each query (the
            query itself not counted), for ideal rankings.
        groups: ``(C,)`` polarity id of each class, or ``None`` without relations.
        dis: ``(C, C)`` float64 wheel distances, or ``None`` without relations.
        relevance: ``(C, C)`` float64 graded relevance
            (:func:`~sentiment_metric.functional.wheel_relevance`), or ``None``.
        wheel_k: the depth of the wheel measures (``None``: ``k``); see
            :attr:`depth_of_wheel`.

    Example:
        >>> import torch
        >>> inputs = MeasureInputs(torch.tensor([2]), k=3, gtm=2,
        ...                        candidate_counts=torch.tensor([[2, 1]]))
        >>> inputs.k, inputs.groups is None
        (3, True)
    """

    num_relevant: torch.Tensor
    k: int
    gtm: int
    candidate_counts: torch.Tensor
    groups: torch.Tensor | None = None
    dis: torch.Tensor | None = None
    relevance: torch.Tensor | None = None
    wheel_k: int | None = None

    @property
    def depth_of_wheel(self) -> int:
        """The depth of the wheel measures: ``wheel_k``, or ``k`` when it is ``None``."""
        return self.k if self.wheel_k is None else self.wheel_k


def check_num_relevant(
    num_relevant: torch.Tensor | int, b: int, device: torch.device
) -> torch.Tensor:
    """``num_relevant`` (an int, or ``(B,)`` whole numbers) as ``(B,)`` int64 counts ``>= 0``.

    Example:
        >>> check_num_relevant(2, 3, torch.device("cpu")).tolist()
        [2, 2, 2]
    """
    if isinstance(num_relevant, int) and not isinstance(num_relevant, bool):
        n = check_positive_int(num_relevant, "num_relevant", minimum=0)
        return torch.full((b,), n, dtype=torch.int64, device=device)
    r = check_labels(
        num_relevant, None, length=b, name="num_relevant", length_name="ranked_labels"
    ).to(device)
    if r.numel() > 0 and int(r.min()) < 0:
        raise SentimentMetricError(
            "num_relevant must hold counts >= 0 (relevant references per query), got "
            f"values down to {int(r.min())}"
        )
    return r


def check_ranked(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, num_classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``ranked_labels`` ``(B, L)`` and ``query_labels`` ``(B,)`` integer labels, in
    ``[0, num_classes)`` when it is given (reads their values); returned as int64."""
    check_tensor(ranked_labels, "ranked_labels")
    if ranked_labels.dim() != 2:
        raise SentimentMetricError(
            f"ranked_labels must have shape (B, L), got {tuple(ranked_labels.shape)}"
        )
    ranked = check_labels(ranked_labels.reshape(-1), num_classes, name="ranked_labels")
    query = check_labels(
        query_labels,
        num_classes,
        length=ranked_labels.shape[0],
        name="query_labels",
        length_name="ranked_labels",
    )
    return ranked.view(ranked_labels.shape), query


def check_square(x: torch.Tensor, name: str) -> int:
    """``x`` is a ``(C, C)`` matrix; return ``C``."""
    check_shape(x, ("C", "C"), name)
    if x.shape[0] != x.shape[1]:
        raise SentimentMetricError(
            f"{name} must be a square (C, C) matrix, got shape {tuple(x.shape)}"
        )
    return int(x.shape[0])


def check_depth(ranked_labels: torch.Tensor, k: int) -> int:
    """``k`` as an int ``>= 1`` no deeper than the ranking."""
    k = check_positive_int(k, "k")
    if k > ranked_labels.shape[1]:
        raise SentimentMetricError(
            f"k={k} is deeper than the ranking: ranked_labels holds {ranked_labels.shape[1]} "
            "rank(s) per query"
        )
    return k


def safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` in float64, NaN where ``den <= 0`` (a query with no relevant reference)."""
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, math.nan))
