"""Retrieval and classification measures, exact kNN in chunks, wheel-graded relevance.

Three layers, all pure torch:

* **ranked-list measures** (``precision_at_k``, ``r_precision``, ``average_precision``,
  ``reciprocal_rank``, ``tier_precision``, ``nmrr``, ``polarity_precision_at_k``,
  ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``): per-query values from the labels of the
  references in rank order, ``ranked_labels`` of shape ``(B, L)`` (the query itself already
  removed);
* **exact kNN in chunks** (:func:`exact_knn`), never holding more than a ``(chunk, N)`` block of
  distances;
* **the engine** (:func:`per_query_retrieval_metrics`, :func:`retrieval_metrics`): one pass over
  the queries in chunks that ranks each chunk to the depth the asked measures need and reduces
  it at once to per-query values, so an ``N × N`` evaluation never materialises ``N × N``.

Notation used in every formula: a query ``q`` with label ``y_q``; its candidate references
ranked by increasing distance ``r_1, r_2, ..., r_{N'}`` (``N' = N - 1`` when the reference set
includes the query, which never counts); the hit indicator ``h_i = [y_{r_i} = y_q]``; the number
of relevant references ``R_q = Σ_{i=1}^{N'} h_i`` (``NG(q)`` in MPEG-7). A query with
``R_q = 0`` ("lone": its label is absent from the references) gets NaN and is left out of the
means, as pytorch-metric-learning does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import torch

from .._checks import (
    SentimentMetricError,
    check_embeddings,
    check_labels,
    check_positive_int,
    check_tensor,
)

if TYPE_CHECKING:
    from ..wheel import LabelRelations

__all__ = [
    "RETRIEVAL_METRICS",
    "average_precision",
    "exact_knn",
    "mean_wheel_distance_at_k",
    "mean_wheel_distance_of_errors",
    "nmrr",
    "per_query_retrieval_metrics",
    "polarity_accuracy",
    "polarity_precision_at_k",
    "precision_at_k",
    "r_precision",
    "reciprocal_rank",
    "resolve_k",
    "retrieval_metrics",
    "tier_precision",
    "wheel_ndcg_at_k",
    "wheel_order",
    "wheel_relevance",
]

RETRIEVAL_METRICS: tuple[str, ...] = (
    "precision_at_1",
    "r_precision",
    "mean_average_precision_at_r",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "polarity_precision_at_k",
    "wheel_ndcg_at_k",
    "mean_wheel_distance_at_k",
    "first_tier",
    "second_tier",
    "anmrr",
)
"""The measure names :func:`per_query_retrieval_metrics` knows, besides ``precision_at_<n>``
for any ``n >= 1``."""

_PRECISION_AT = re.compile(r"^precision_at_([1-9][0-9]*)$")

Distance = Literal["euclidean", "cosine"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KnnFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
KSpec = int | Literal["max_bin_count"] | None

_CHUNK_BYTES = 96 * 2**20  # working memory aimed at per chunk of queries


# --------------------------------------------------------------------------------------------
# wheel-derived quantities
# --------------------------------------------------------------------------------------------
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


def wheel_order(
    class_names: Sequence[str] | None,
    groups: torch.Tensor,
    wheel_index: Callable[[str], int] | None = None,
) -> list[int]:
    """Class indices in wheel order, for confusion matrices.

    With ``wheel_index`` (a name -> position function, e.g. ``EmotionWheel.index``) and class
    names all on the wheel, the classes are sorted by their position around the wheel.
    Otherwise they are sorted by polarity group, then by label.

    Args:
        class_names: ``C`` names in label order, or ``None``.
        groups: ``(C,)`` group (polarity) id of each class.
        wheel_index: the wheel's name -> position map, or ``None``.

    Returns:
        A permutation of ``range(C)``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> names = ["amusement", "anger", "awe", "contentment"]
        >>> sm.functional.wheel_order(names, torch.tensor([0, 1, 0, 0]), sm.MIKELS_WHEEL.index)
        [0, 3, 2, 1]
    """
    c = int(groups.numel())
    if class_names is not None and wheel_index is not None:
        try:
            pos = [wheel_index(n) for n in class_names]
        except (SentimentMetricError, KeyError):
            pos = None
        if pos is not None:
            return sorted(range(c), key=lambda i: pos[i])
    g = groups.tolist()
    return sorted(range(c), key=lambda i: (g[i], i))


def polarity_accuracy(preds: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of predictions on the right side of the wheel (the label's polarity).

    .. math::

        \\mathrm{acc}_{pol} = \\frac{1}{B} \\sum_{i=1}^{B} [g(\\hat y_i) = g(y_i)]

    Args:
        preds: ``(B,)`` predicted class indices.
        labels: ``(B,)`` true class indices.
        groups: ``(C,)`` polarity id of each class.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1, 1])
        >>> sm.functional.polarity_accuracy(torch.tensor([1, 2, 3]), torch.tensor([0, 0, 3]), g)
        0.6666666666666666
    """
    groups = groups.to(preds.device)
    return float((groups[preds] == groups[labels]).double().mean())


def mean_wheel_distance_of_errors(
    preds: torch.Tensor, labels: torch.Tensor, dis: torch.Tensor
) -> float | None:
    """Mean wheel distance ``dis − 1`` (steps) between wrong predictions and their labels.

    .. math::

        \\bar d_{err} = \\frac{1}{|E|} \\sum_{i \\in E} (\\mathrm{dis}(\\hat y_i, y_i) - 1),
        \\qquad E = \\{i : \\hat y_i \\ne y_i\\}

    Args:
        preds: ``(B,)`` predicted class indices.
        labels: ``(B,)`` true class indices.
        dis: ``(C, C)`` wheel distances.

    Returns:
        The mean, or ``None`` when there is no mistake.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "awe", "fear"])
        >>> sm.functional.mean_wheel_distance_of_errors(
        ...     torch.tensor([1, 2, 0]), torch.tensor([0, 0, 0]), rel.dis)
        3.0
    """
    wrong = preds != labels
    if not bool(wrong.any()):
        return None
    d = dis.to(device=preds.device, dtype=torch.float64)[preds[wrong], labels[wrong]] - 1.0
    return float(d.mean())


# --------------------------------------------------------------------------------------------
# ranked-list measures
# --------------------------------------------------------------------------------------------
class _Ranking:
    """Per-chunk cache of the quantities several measures share."""

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
        if self._hits is None:
            self._hits = self.ranked == self.query[:, None]
        return self._hits

    @property
    def cum_hits(self) -> torch.Tensor:
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


def _as_rows(x: torch.Tensor | int, b: int, device: torch.device) -> torch.Tensor:
    if isinstance(x, int):
        return torch.full((b,), x, dtype=torch.int64, device=device)
    return x.to(device=device, dtype=torch.int64)


def _check_ranked(ranked_labels: torch.Tensor, query_labels: torch.Tensor) -> None:
    check_tensor(ranked_labels, "ranked_labels")
    if ranked_labels.dim() != 2:
        raise SentimentMetricError(
            f"ranked_labels must have shape (B, L), got {tuple(ranked_labels.shape)}"
        )
    check_labels(
        query_labels,
        None,
        length=ranked_labels.shape[0],
        name="query_labels",
        length_name="ranked_labels",
    )


def _check_depth(ranked_labels: torch.Tensor, k: int) -> int:
    k = check_positive_int(k, "k")
    if k > ranked_labels.shape[1]:
        raise SentimentMetricError(
            f"k={k} is deeper than the ranking: ranked_labels holds {ranked_labels.shape[1]} "
            "rank(s) per query"
        )
    return k


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, math.nan))


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
    _check_ranked(ranked_labels, query_labels)
    k = _check_depth(ranked_labels, k)
    rk = _Ranking(ranked_labels, query_labels)
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
    _check_ranked(ranked_labels, query_labels)
    if tier not in (1, 2):
        raise SentimentMetricError(f"tier must be 1 or 2, got {tier!r}")
    rk = _Ranking(ranked_labels, query_labels)
    r = _as_rows(num_relevant, ranked_labels.shape[0], ranked_labels.device)
    return _safe_div(rk.top(rk.cum_hits, tier * r), r)


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
    _check_ranked(ranked_labels, query_labels)
    rk = _Ranking(ranked_labels, query_labels)
    r = _as_rows(num_relevant, ranked_labels.shape[0], ranked_labels.device)
    depth: torch.Tensor | int = (
        r if at_r else (rk.depth if k is None else check_positive_int(k, "k"))
    )
    return _safe_div(rk.top(rk.cum_precision_at_hits, depth), r)


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
    _check_ranked(ranked_labels, query_labels)
    rk = _Ranking(ranked_labels, query_labels)
    return _rr(rk, rk.depth if k is None else check_positive_int(k, "k"))


def _rr(rk: _Ranking, k: int) -> torch.Tensor:
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
    _check_ranked(ranked_labels, query_labels)
    gtm = check_positive_int(gtm, "gtm")
    rk = _Ranking(ranked_labels, query_labels)
    return _nmrr(rk, _as_rows(num_relevant, rk.ranked.shape[0], rk.ranked.device), gtm)


def _nmrr(rk: _Ranking, ng: torch.Tensor, gtm: int) -> torch.Tensor:
    ng_f = ng.to(torch.float64)
    kq = torch.minimum(4 * ng, torch.full_like(ng, 2 * gtm))
    kq_f = kq.to(torch.float64)
    found = rk.top(rk.cum_hits, kq).to(torch.float64)
    rank_sum = rk.top(rk.cum_rank_of_hits, kq).to(torch.float64)
    avr = _safe_div(rank_sum + (ng_f - found) * 1.25 * kq_f, ng_f)
    return (avr - 0.5 - ng_f / 2) / (1.25 * kq_f - 0.5 - ng_f / 2)


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
    _check_ranked(ranked_labels, query_labels)
    rk = _Ranking(ranked_labels, query_labels)
    return _polarity(rk, groups, _check_depth(ranked_labels, k))


def _polarity(rk: _Ranking, groups: torch.Tensor, k: int) -> torch.Tensor:
    g = groups.to(rk.ranked.device)
    same = g[rk.ranked[:, :k]] == g[rk.query][:, None]
    return same.sum(dim=1, dtype=torch.float64) / k


def mean_wheel_distance_at_k(
    ranked_labels: torch.Tensor, query_labels: torch.Tensor, dis: torch.Tensor, k: int
) -> torch.Tensor:
    """Mean wheel distance (in steps, ``dis − 1``) between the query and its top ``k``.

    .. math::

        \\bar d@k(q) = \\frac{1}{k} \\sum_{i=1}^{k} (\\mathrm{dis}(y_q, y_{r_i}) - 1)

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
    _check_ranked(ranked_labels, query_labels)
    rk = _Ranking(ranked_labels, query_labels)
    return _wheel_distance(rk, dis, _check_depth(ranked_labels, k))


def _wheel_distance(rk: _Ranking, dis: torch.Tensor, k: int) -> torch.Tensor:
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
    _check_ranked(ranked_labels, query_labels)
    rk = _Ranking(ranked_labels, query_labels)
    counts = check_tensor(candidate_counts, "candidate_counts").to(ranked_labels.device)
    if counts.dim() == 1:
        counts = counts[None].expand(ranked_labels.shape[0], -1)
    return _ndcg(rk, relevance, _check_depth(ranked_labels, k), counts)


def _ndcg(rk: _Ranking, relevance: torch.Tensor, k: int, counts: torch.Tensor) -> torch.Tensor:
    rel = relevance.to(device=rk.ranked.device, dtype=torch.float64)
    kk = min(k, rk.depth)
    gains = rel[rk.query[:, None], rk.ranked[:, :kk]]
    disc = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64, device=gains.device))
    dcg = gains @ disc
    ideal = _ideal_dcg(rel[rk.query], counts, k)
    return _safe_div(dcg, ideal)


# --------------------------------------------------------------------------------------------
# exact kNN in chunks
# --------------------------------------------------------------------------------------------
def _auto_chunk(n_ref: int, depth: int, n_query: int) -> int:
    per_row = 4 * n_ref + 48 * max(depth, 1) + 16 * n_ref * (depth * 2 > n_ref)
    return max(1, min(n_query, _CHUNK_BYTES // max(per_row, 1), 4096))


class _Scorer:
    """Distances (smaller = closer) from chunks of queries to a fixed reference set."""

    def __init__(self, reference: torch.Tensor, distance: Distance) -> None:
        self.distance = distance
        work = reference
        if work.dtype in (torch.float16, torch.bfloat16) and work.device.type == "cpu":
            work = work.float()
        if distance == "cosine":
            work = torch.nn.functional.normalize(work, dim=1)
        self.reference = work
        self.ref_sq = (work * work).sum(dim=1) if distance == "euclidean" else None

    def prepare(self, query: torch.Tensor) -> torch.Tensor:
        q = query.to(dtype=self.reference.dtype, device=self.reference.device)
        if self.distance == "cosine":
            q = torch.nn.functional.normalize(q, dim=1)
        return q

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """Ranking scores ``(b, N)``: correct up to a per-row constant for ``euclidean``."""
        if self.distance == "euclidean":
            assert self.ref_sq is not None
            return torch.addmm(self.ref_sq, q, self.reference.T, alpha=-2.0)
        if self.distance == "cosine":
            return -(q @ self.reference.T)
        return self.distance(q, self.reference)

    def finish(self, q: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Turn ranking scores into the reported distances."""
        if self.distance == "euclidean":
            return (scores + (q * q).sum(dim=1, keepdim=True)).clamp_(min=0)
        if self.distance == "cosine":
            return -scores
        return scores


def _check_distance(distance: Distance) -> None:
    if not (callable(distance) or distance in ("euclidean", "cosine")):
        raise SentimentMetricError(
            f"distance must be 'euclidean', 'cosine' or a callable (query, reference) -> "
            f"(b, N) distances; got {distance!r}"
        )


def _rank_chunk(
    scores: torch.Tensor, depth: int, self_cols: torch.Tensor | None, want_values: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Indices of the ``depth`` smallest scores per row, sorted; the self column excluded."""
    if self_cols is not None:
        rows = torch.arange(scores.shape[0], device=scores.device)
        scores[rows, self_cols] = math.inf
    if depth * 2 > scores.shape[1]:
        vals, idx = torch.sort(scores, dim=1)
        vals, idx = vals[:, :depth], idx[:, :depth]
    else:
        vals, idx = torch.topk(scores, depth, dim=1, largest=False, sorted=True)
    return (vals if want_values else None), idx


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
    _check_same_dim(query, reference)
    _check_distance(distance)
    n_cand = reference.shape[0] - int(ref_includes_query)
    _check_k(k, n_cand, "k")
    if ref_includes_query and query.shape[0] > reference.shape[0]:
        raise SentimentMetricError(
            f"ref_includes_query=True needs query ({query.shape[0]} rows) to be the first rows "
            f"of reference ({reference.shape[0]} rows)"
        )
    scorer = _Scorer(reference.to(query.device), distance)
    m = query.shape[0]
    cs = chunk_size or _auto_chunk(reference.shape[0], k, m)
    out_d = torch.empty(m, k, dtype=scorer.reference.dtype, device=query.device)
    out_i = torch.empty(m, k, dtype=torch.int64, device=query.device)
    with torch.no_grad():
        for s in range(0, m, cs):
            e = min(m, s + cs)
            q = scorer.prepare(query[s:e])
            scores = scorer(q)
            self_cols = torch.arange(s, e, device=q.device) if ref_includes_query else None
            vals, idx = _rank_chunk(scores, k, self_cols, want_values=True)
            assert vals is not None
            out_d[s:e] = scorer.finish(q, vals)
            out_i[s:e] = idx
    return out_d, out_i


def _check_same_dim(query: torch.Tensor, reference: torch.Tensor) -> None:
    if query.shape[1] != reference.shape[1]:
        raise SentimentMetricError(
            f"query and reference must have the same embedding size, got {query.shape[1]} "
            f"and {reference.shape[1]}"
        )


def _check_k(k: object, n_cand: int, name: str) -> int:
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


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------
def _parse_metrics(metrics: Iterable[str] | None) -> tuple[list[str], list[int]]:
    names = list(RETRIEVAL_METRICS) if metrics is None else list(metrics)
    ks: list[int] = []
    for n in names:
        m = _PRECISION_AT.match(n) if isinstance(n, str) else None
        if m:
            ks.append(int(m.group(1)))
        elif n not in RETRIEVAL_METRICS:
            raise SentimentMetricError(
                f"unknown retrieval metric {n!r}; known: {', '.join(RETRIEVAL_METRICS)} and "
                "precision_at_<n> for any n >= 1"
            )
    return names, ks


def resolve_k(k: KSpec, max_bin_count: int, n_cand: int) -> int:
    """The integer depth for PML's ``k`` (``int``, ``None`` = all, ``"max_bin_count"``)."""
    if k is None:
        return n_cand
    if k == "max_bin_count":
        return max(1, min(max_bin_count, n_cand))
    return _check_k(k, n_cand, "k")


def per_query_retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_labels: torch.Tensor | None = None,
    *,
    relations: LabelRelations | None = None,
    metrics: Iterable[str] | None = None,
    k: KSpec = 10,
    ref_includes_query: bool = False,
    distance: Distance = "euclidean",
    knn_fn: KnnFn | None = None,
    chunk_size: int | None = None,
    validate: bool = True,
) -> dict[str, torch.Tensor]:
    """Per-query retrieval measures in one chunked pass over the queries.

    Each chunk of queries is scored against every reference, ranked only as deep as the asked
    measures need (``k``; ``R_q`` for R-precision, first tier and MAP@R; ``2 R_q`` for the
    second tier; ``K(q)`` for ANMRR) and reduced at once to per-query values: memory stays at
    ``O(chunk · N)``, never ``O(M · N)``. Measures (names as keys; see the ranked-list
    functions of this module for each formula): ``precision_at_1`` and ``precision_at_<n>``
    (:func:`precision_at_k`), ``r_precision`` (:func:`r_precision`),
    ``mean_average_precision_at_r`` and ``mean_average_precision`` (:func:`average_precision`,
    the latter at depth ``k``), ``mean_reciprocal_rank`` (:func:`reciprocal_rank` at ``k``),
    ``polarity_precision_at_k``, ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``,
    ``first_tier``, ``second_tier`` (:func:`tier_precision`) and ``anmrr`` (per query the
    NMRR of :func:`nmrr`; the mean is ANMRR). ``GTM`` is the largest ``R_q`` over the queries.

    .. math::

        \\bar m = \\frac{1}{|\\{q : R_q > 0\\}|} \\sum_{q : R_q > 0} m(q)

    Args:
        query: ``(M, D)`` query embeddings.
        query_labels: ``(M,)`` integer labels.
        reference: ``(N, D)`` reference embeddings; ``None``: the queries themselves (and
            ``ref_includes_query`` is set).
        reference_labels: ``(N,)`` integer labels.
        relations: the :class:`~sentiment_metric.LabelRelations`; needed by the wheel
            measures (polarity, nDCG, wheel distance).
        metrics: names to compute (default :data:`RETRIEVAL_METRICS`).
        k: depth of the ``*_at_k`` measures, of ``mean_average_precision`` and
            ``mean_reciprocal_rank``: an int, ``None`` (all references) or
            ``"max_bin_count"`` (the largest ``R_q``), as in PML.
        ref_includes_query: the first ``M`` references are the queries; query ``i`` never
            retrieves reference ``i``.
        distance: ``"euclidean"`` (default; the ranking of faiss ``IndexFlatL2``),
            ``"cosine"`` or a callable ``(q (b, D), ref (N, D)) -> (b, N)`` distances.
        knn_fn: optional PML-style kNN callable ``(query, k, reference, ref_includes_query) ->
            (distances, indices)`` used instead of the built-in torch ranking (e.g. faiss);
            it is called per chunk with ``ref_includes_query=False`` and the query itself is
            removed here.
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
    if reference is None:
        if reference_labels is not None:
            raise SentimentMetricError("reference_labels given without reference")
        reference, reference_labels, ref_includes_query = query, query_labels, True
    if reference_labels is None:
        raise SentimentMetricError("reference given without reference_labels")
    names, ks = _parse_metrics(metrics)
    num_classes = relations.num_classes if relations is not None else None
    query = check_embeddings(query, "query", validate=validate)
    reference = check_embeddings(reference, "reference", validate=validate)
    _check_same_dim(query, reference)
    query_labels = check_labels(
        query_labels,
        num_classes,
        length=query.shape[0],
        name="query_labels",
        length_name="query",
        validate=validate,
    )
    reference_labels = check_labels(
        reference_labels,
        num_classes,
        length=reference.shape[0],
        name="reference_labels",
        length_name="reference",
        validate=validate,
    )
    _check_distance(distance)
    needs_rel = {"polarity_precision_at_k", "wheel_ndcg_at_k", "mean_wheel_distance_at_k"}
    if relations is None and needs_rel.intersection(names):
        raise SentimentMetricError(
            f"relations= is needed for {sorted(needs_rel.intersection(names))}"
        )
    m, n = query.shape[0], reference.shape[0]
    if ref_includes_query and m > n:
        raise SentimentMetricError(
            f"ref_includes_query=True needs query ({m} rows) to be the first rows of "
            f"reference ({n} rows)"
        )
    device = query.device
    query_labels = query_labels.to(device)
    reference_labels = reference_labels.to(device)
    n_cand = n - int(ref_includes_query)

    # relevant counts and lone queries
    c = num_classes
    if c is None:
        c = int(max(int(query_labels.max()), int(reference_labels.max()))) + 1
    ref_counts = torch.bincount(reference_labels, minlength=c)[:c]
    num_rel = ref_counts[query_labels] - int(ref_includes_query)
    if ref_includes_query:
        num_rel = num_rel.clamp(min=0)
    valid = num_rel > 0
    any_valid = bool(valid.any())
    max_r = int(num_rel.max()) if any_valid else 0
    if n_cand < 1:
        raise SentimentMetricError(
            "the reference set has no candidate besides the queries themselves; nothing to retrieve"
        )
    num_k = resolve_k(k, max_r, n_cand)
    for kk in ks:
        _check_k(kk, n_cand, f"precision_at_{kk}")

    out = {name: torch.full((m,), math.nan, dtype=torch.float64, device=device) for name in names}
    if not any_valid or m == 0:
        return out

    # the ranking depth the asked measures need
    depth = 1
    if ks:
        depth = max(depth, max(ks))
    if {
        "mean_average_precision",
        "mean_reciprocal_rank",
        "polarity_precision_at_k",
        "wheel_ndcg_at_k",
        "mean_wheel_distance_at_k",
    }.intersection(names):
        depth = max(depth, num_k)
    if {"r_precision", "first_tier", "mean_average_precision_at_r"}.intersection(names):
        depth = max(depth, max_r)
    if "second_tier" in names:
        depth = max(depth, 2 * max_r)
    gtm = max_r
    if "anmrr" in names:
        depth = max(depth, min(4 * max_r, 2 * gtm))
    depth = min(depth, n_cand)

    groups = relations.groups.to(device) if relations is not None else None
    dis = relations.dis.to(device=device, dtype=torch.float64) if relations is not None else None
    relevance = (
        wheel_relevance(relations.level, relations.dis).to(device)
        if relations is not None
        else None
    )
    cand_counts = ref_counts[None, :].expand(c, -1).clone()
    if ref_includes_query:
        cand_counts -= torch.eye(c, dtype=cand_counts.dtype, device=device)
    cand_counts = cand_counts.clamp(min=0)

    scorer = _Scorer(reference.to(device), distance)
    ref_for_fn = scorer.reference if knn_fn is not None else None
    cs = chunk_size or _auto_chunk(n, depth, m)
    with torch.no_grad():
        for s in range(0, m, cs):
            e = min(m, s + cs)
            q = scorer.prepare(query[s:e])
            self_cols = torch.arange(s, e, device=device) if ref_includes_query else None
            if knn_fn is None:
                _, idx = _rank_chunk(scorer(q), depth, self_cols, want_values=False)
            else:
                idx = _external_rank(knn_fn, q, ref_for_fn, depth, self_cols)
            ql = query_labels[s:e]
            rk = _Ranking(reference_labels[idx], ql)
            r = num_rel[s:e]
            res = _chunk_measures(
                rk, names, ks, r, num_k, gtm, groups, dis, relevance, cand_counts[ql]
            )
            ok = valid[s:e]
            for name, v in res.items():
                out[name][s:e] = torch.where(ok, v, torch.full_like(v, math.nan))
    return out


def _external_rank(
    knn_fn: KnnFn,
    q: torch.Tensor,
    reference: torch.Tensor | None,
    depth: int,
    self_cols: torch.Tensor | None,
) -> torch.Tensor:
    extra = int(self_cols is not None)
    _, idx = knn_fn(q, depth + extra, reference, False)
    idx = torch.as_tensor(idx).to(device=q.device, dtype=torch.int64)
    if self_cols is None:
        return idx[:, :depth]
    is_self = idx == self_cols[:, None]
    missing = ~is_self.any(dim=1)
    is_self[missing, -1] = True  # no self found: drop the last one (PML's rule)
    return idx[~is_self].view(idx.shape[0], depth)


def _chunk_measures(
    rk: _Ranking,
    names: list[str],
    ks: list[int],
    r: torch.Tensor,
    num_k: int,
    gtm: int,
    groups: torch.Tensor | None,
    dis: torch.Tensor | None,
    relevance: torch.Tensor | None,
    counts: torch.Tensor,
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in names:
        m = _PRECISION_AT.match(name)
        if m:
            kk = int(m.group(1))
            out[name] = rk.top(rk.cum_hits, kk).to(torch.float64) / kk
        elif name in ("r_precision", "first_tier"):
            out[name] = _safe_div(rk.top(rk.cum_hits, r), r)
        elif name == "second_tier":
            out[name] = _safe_div(rk.top(rk.cum_hits, 2 * r), r)
        elif name == "mean_average_precision_at_r":
            out[name] = _safe_div(rk.top(rk.cum_precision_at_hits, r), r)
        elif name == "mean_average_precision":
            out[name] = _safe_div(rk.top(rk.cum_precision_at_hits, num_k), r)
        elif name == "mean_reciprocal_rank":
            out[name] = _rr(rk, num_k)
        elif name == "anmrr":
            out[name] = _nmrr(rk, r, gtm)
        elif name == "polarity_precision_at_k":
            assert groups is not None
            out[name] = _polarity(rk, groups, num_k)
        elif name == "mean_wheel_distance_at_k":
            assert dis is not None
            out[name] = _wheel_distance(rk, dis, num_k)
        elif name == "wheel_ndcg_at_k":
            assert relevance is not None
            out[name] = _ndcg(rk, relevance, num_k, counts)
    return out


def retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_labels: torch.Tensor | None = None,
    **kwargs: object,
) -> dict[str, float]:
    """Mean retrieval measures over the queries whose label has relevant references.

    The same arguments as :func:`per_query_retrieval_metrics`; each per-query measure is
    averaged over the queries with ``R_q > 0`` (NaN when there is none).

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
