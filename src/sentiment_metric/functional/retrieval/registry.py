"""The measure registry: one entry per retrieval measure, read by everything that lists them.

:data:`MEASURES` maps each measure's name to a :class:`Measure`: the function that computes
it per query from a chunk's ranking, the ranking depth it needs, whether it needs the wheel's
relations, whether higher is better and a one-line description. The evaluation engine
(:func:`~sentiment_metric.functional.per_query_retrieval_metrics`), the calculator
(:class:`~sentiment_metric.AffectiveAccuracyCalculator`: its ``calculate_<name>`` methods and
``requires_knn``), the recipes' tables and the table below all read it, so adding a measure is
one function and one entry here. ``precision_at_<n>`` for any ``n >= 1`` is a family that
:func:`measure` builds on demand.

The measures (generated from :data:`MEASURES`):
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import torch

from ...errors import SentimentMetricError
from .measures import (
    average_precision_of,
    nmrr_of,
    precision_of,
    reciprocal_rank_of,
    tier_of,
)
from .ranking import MeasureInputs, Ranking
from .severity import group_miss_share_of, hierarchical_average_precision_of
from .wheel_measures import ndcg_of, polarity_of, wheel_distance_of

__all__ = ["DEPTHS", "MEASURES", "RETRIEVAL_METRICS", "Depth", "Measure", "measure"]

Depth = int | Literal["k", "wheel_k", "R", "2R", "K", "all"]
MeasureFn = Callable[[Ranking, MeasureInputs], torch.Tensor]

DEPTHS: Mapping[str, str] = MappingProxyType(
    {
        "k": "PML's k (an int, all references, or the largest R_q)",
        "wheel_k": "the wheel measures' own depth: wheel_k, else PML's k when it is an int, "
        "else 10 (never a depth that depends on the data)",
        "R": "each query's R_q, the largest over the queries",
        "2R": "twice the largest R_q",
        "K": "MPEG-7's K(q) = min(4 R_q, 2 GTM), the largest over the queries",
        "all": "every candidate reference",
    }
)
"""The named ranking depths a :class:`Measure` may need (an int is a fixed depth)."""


@dataclass(frozen=True)
class Measure:
    """One retrieval measure: what computes it and what it needs.

    Attributes:
        name: the key of the measure (``get_accuracy`` key, ``calculate_<name>``).
        fn: ``fn(ranking, inputs) -> (B,) float64``, the per-query values of a chunk of
            queries from its :class:`~sentiment_metric.functional.retrieval.ranking.Ranking`
            and :class:`~sentiment_metric.functional.retrieval.ranking.MeasureInputs`; NaN
            for queries without relevant references is applied by the engine.
        depth: how deep the ranking must go: an int, or a key of :data:`DEPTHS`.
        needs_relations: it reads the wheel (``groups``, ``dis``, ``relevance``).
        higher_is_better: ``False`` for a distance-like measure (e.g. ANMRR).
        description: one line for tables and method docstrings.
        see: the public function with its formula, for the docs (``""``: none).

    Example:
        >>> from sentiment_metric.functional.retrieval import MEASURES
        >>> m = MEASURES["mean_wheel_distance_at_k"]
        >>> m.depth, m.needs_relations, m.higher_is_better
        ('wheel_k', True, False)
    """

    name: str
    fn: MeasureFn
    depth: Depth
    needs_relations: bool
    higher_is_better: bool
    description: str
    see: str = ""

    def ranking_depth(
        self, k: int, max_relevant: int, n_cand: int, wheel_k: int | None = None
    ) -> int:
        """The depth this measure needs, for PML's ``k`` resolved to an int, the largest
        ``R_q``, ``n_cand`` candidate references (not capped at ``n_cand``) and the wheel
        measures' depth ``wheel_k`` (``None``: ``k``)."""
        d = self.depth
        if isinstance(d, int):
            return d
        rules = {
            "k": k,
            "wheel_k": k if wheel_k is None else wheel_k,
            "R": max_relevant,
            "2R": 2 * max_relevant,
            "K": min(4 * max_relevant, 2 * max_relevant),  # GTM is the largest R_q
            "all": n_cand,
        }
        return rules[d]


def _wheel(x: torch.Tensor | None, name: str) -> torch.Tensor:
    if x is None:
        raise SentimentMetricError(f"this measure needs relations= (the wheel's {name})")
    return x


def _precision_at_1(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return precision_of(rk, 1)


def _r_precision(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return tier_of(rk, x.num_relevant, 1)


def _second_tier(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return tier_of(rk, x.num_relevant, 2)


def _map_at_r(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return average_precision_of(rk, x.num_relevant, x.num_relevant)


def _map_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return average_precision_of(rk, x.num_relevant, x.k)


def _mrr_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return reciprocal_rank_of(rk, x.k)


def _polarity_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return polarity_of(rk, _wheel(x.groups, "groups"), x.depth_of_wheel)


def _wheel_ndcg_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return ndcg_of(rk, _wheel(x.relevance, "relevance"), x.depth_of_wheel, x.candidate_counts)


def _wheel_distance_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return wheel_distance_of(rk, _wheel(x.dis, "dis"), x.depth_of_wheel)


def _hierarchical_ap(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return hierarchical_average_precision_of(rk, _wheel(x.groups, "groups"))


def _group_miss_share_at_k(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return group_miss_share_of(rk, _wheel(x.groups, "groups"), x.depth_of_wheel)


def _anmrr(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
    return nmrr_of(rk, x.num_relevant, x.gtm)


_REGISTRY: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "precision_at_1",
            _precision_at_1,
            depth=1,
            needs_relations=False,
            higher_is_better=True,
            description="share of queries whose nearest neighbour has their label",
            see="precision_at_k",
        ),
        Measure(
            "r_precision",
            _r_precision,
            depth="R",
            needs_relations=False,
            higher_is_better=True,
            description="share of the top R_q with the query's label",
            see="r_precision",
        ),
        Measure(
            "mean_average_precision_at_r",
            _map_at_r,
            depth="R",
            needs_relations=False,
            higher_is_better=True,
            description="MAP@R: average precision to each query's R_q",
            see="average_precision",
        ),
        Measure(
            "mean_average_precision",
            _map_at_k,
            depth="k",
            needs_relations=False,
            higher_is_better=True,
            description="PML's mean average precision at depth k (divided by R_q)",
            see="average_precision",
        ),
        Measure(
            "mean_reciprocal_rank",
            _mrr_at_k,
            depth="k",
            needs_relations=False,
            higher_is_better=True,
            description="reciprocal rank of the first hit within the top k (0 if none)",
            see="reciprocal_rank",
        ),
        Measure(
            "polarity_precision_at_k",
            _polarity_at_k,
            depth="wheel_k",
            needs_relations=True,
            higher_is_better=True,
            description="share of the top wheel_k with the query's polarity",
            see="polarity_precision_at_k",
        ),
        Measure(
            "wheel_ndcg_at_k",
            _wheel_ndcg_at_k,
            depth="wheel_k",
            needs_relations=True,
            higher_is_better=True,
            description="nDCG@wheel_k with the wheel's graded relevance (1, 1/dis, 0)",
            see="wheel_ndcg_at_k",
        ),
        Measure(
            "mean_wheel_distance_at_k",
            _wheel_distance_at_k,
            depth="wheel_k",
            needs_relations=True,
            higher_is_better=False,
            description="mean dis - 1 (wheel steps) between the query and its top wheel_k",
            see="mean_wheel_distance_at_k",
        ),
        Measure(
            "first_tier",
            _r_precision,
            depth="R",
            needs_relations=False,
            higher_is_better=True,
            description="share of the relevant references in the top R_q",
            see="tier_precision",
        ),
        Measure(
            "second_tier",
            _second_tier,
            depth="2R",
            needs_relations=False,
            higher_is_better=True,
            description="share of the relevant references in the top 2 R_q",
            see="tier_precision",
        ),
        Measure(
            "anmrr",
            _anmrr,
            depth="K",
            needs_relations=False,
            higher_is_better=False,
            description="ANMRR (MPEG-7): normalised modified retrieval rank; 0 is perfect",
            see="nmrr",
        ),
        Measure(
            "hierarchical_average_precision",
            _hierarchical_ap,
            depth="all",
            needs_relations=True,
            higher_is_better=True,
            description="H-AP (Ramzi et al. 2022): AP with relevance 1 same class, 1/2 same "
            "polarity, 0 across, over the whole ranking",
            see="hierarchical_average_precision",
        ),
        Measure(
            "group_miss_share_at_k",
            _group_miss_share_at_k,
            depth="wheel_k",
            needs_relations=True,
            higher_is_better=False,
            description="among the top wheel_k of another class, the share across polarity "
            "(queries without one left out)",
            see="group_miss_share_at_k",
        ),
    )
}

MEASURES: Mapping[str, Measure] = MappingProxyType(_REGISTRY)
"""Name -> :class:`Measure`: every built-in retrieval measure, in the order of the tables
(read-only; besides these, ``precision_at_<n>`` for any ``n >= 1``, see :func:`measure`)."""

RETRIEVAL_METRICS: tuple[str, ...] = tuple(MEASURES)
"""The measure names :func:`~sentiment_metric.functional.per_query_retrieval_metrics`
knows (the keys of :data:`MEASURES`), besides ``precision_at_<n>`` for any ``n >= 1``."""

_PRECISION_AT = re.compile(r"^precision_at_([1-9][0-9]*)$")


def measure(name: str) -> Measure:
    """The :class:`Measure` called ``name``: a registry entry or ``precision_at_<n>``.

    Args:
        name: a key of :data:`MEASURES`, or ``precision_at_<n>`` with ``n >= 1``.

    Raises:
        SentimentMetricError: for an unknown name (the message lists the known ones).

    Example:
        >>> from sentiment_metric.functional.retrieval import measure
        >>> m = measure("precision_at_5")
        >>> m.depth, m.higher_is_better
        (5, True)
    """
    if isinstance(name, str) and name in MEASURES:
        return MEASURES[name]
    found = _PRECISION_AT.match(name) if isinstance(name, str) else None
    if found is None:
        raise SentimentMetricError(
            f"unknown retrieval metric {name!r}; known: {', '.join(MEASURES)} and "
            "precision_at_<n> for any n >= 1"
        )
    n = int(found.group(1))

    def precision_at_n(rk: Ranking, x: MeasureInputs) -> torch.Tensor:
        return precision_of(rk, n)

    return Measure(
        name, precision_at_n, n, False, True, f"share of the top {n} with the query's label"
    )


def measures_table() -> str:
    """The reST table of :data:`MEASURES` (the docs show it; a test checks every entry)."""
    rows = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - name",
        "     - depth",
        "     - needs relations",
        "     - better",
        "     - description",
    ]
    for m in MEASURES.values():
        see = f" (:func:`~sentiment_metric.functional.{m.see}`)" if m.see else ""
        rows += [
            f"   * - ``{m.name}``",
            f"     - {m.depth}",
            f"     - {'yes' if m.needs_relations else 'no'}",
            f"     - {'higher' if m.higher_is_better else 'lower'}",
            f"     - {m.description}{see}",
        ]
    rows += [
        "   * - ``precision_at_<n>``",
        "     - n",
        "     - no",
        "     - higher",
        "     - share of the top n with the query's label (:func:`measure` builds it)",
    ]
    return "\n".join(rows) + "\n"


__doc__ = f"{__doc__}\n{measures_table()}"
