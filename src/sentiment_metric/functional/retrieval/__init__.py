"""Retrieval and classification measures, exact kNN in chunks, wheel-graded relevance.

All pure torch, in small modules:

* :mod:`.measures` and :mod:`.wheel_measures`: **ranked-list measures**, per-query values
  from the labels of the references in rank order, ``ranked_labels`` of shape ``(B, L)`` (the
  query itself already removed); :mod:`.ranking` holds what they share;
* :mod:`.severity`: measures of mistake severity on the two-level hierarchy
  (hierarchical average precision, the group-miss share of the wrong neighbours);
* :mod:`.classification`: polarity accuracy, the wheel distance and group-miss share of
  errors, the wheel order;
* :mod:`.knn`: **exact kNN in chunks** (:func:`exact_knn`), never holding more than a
  ``(chunk, N)`` block of distances;
* :mod:`.registry`: **the measure registry** :data:`MEASURES` (name, function, depth,
  relations, higher-is-better, description): adding a measure is one function and one entry;
* :mod:`.engine`: **the engine** (:func:`per_query_retrieval_metrics`,
  :func:`retrieval_metrics`), one pass over the queries in chunks that ranks each chunk to the
  depth the asked measures need and reduces it at once to per-query values.

Notation used in every formula: a query ``q`` with label ``y_q``; its candidate references
ranked by increasing distance ``r_1, r_2, ..., r_{N'}`` (``N' = N - 1`` when the reference set
includes the query, which never counts); the hit indicator ``h_i = [y_{r_i} = y_q]``; the number
of relevant references ``R_q = Σ_{i=1}^{N'} h_i`` (``NG(q)`` in MPEG-7). A query with
``R_q = 0`` ("lone": its label is absent from the references) gets NaN and is left out of the
means, as pytorch-metric-learning does.
"""

from .classification import (
    group_miss_share_of_errors,
    mean_wheel_distance_of_errors,
    polarity_accuracy,
    wheel_order,
)
from .engine import (
    per_query_retrieval_metrics,
    resolve_k,
    resolve_reference,
    resolve_wheel_k,
    retrieval_metrics,
)
from .knn import exact_knn
from .measures import (
    average_precision,
    nmrr,
    precision_at_k,
    r_precision,
    reciprocal_rank,
    tier_precision,
)
from .registry import MEASURES, RETRIEVAL_METRICS, Measure, measure
from .severity import group_miss_share_at_k, hierarchical_average_precision
from .wheel_measures import (
    mean_wheel_distance_at_k,
    polarity_precision_at_k,
    wheel_ndcg_at_k,
    wheel_relevance,
)

__all__ = [
    "MEASURES",
    "RETRIEVAL_METRICS",
    "Measure",
    "average_precision",
    "exact_knn",
    "group_miss_share_at_k",
    "group_miss_share_of_errors",
    "hierarchical_average_precision",
    "mean_wheel_distance_at_k",
    "mean_wheel_distance_of_errors",
    "measure",
    "nmrr",
    "per_query_retrieval_metrics",
    "polarity_accuracy",
    "polarity_precision_at_k",
    "precision_at_k",
    "r_precision",
    "reciprocal_rank",
    "resolve_k",
    "resolve_reference",
    "resolve_wheel_k",
    "retrieval_metrics",
    "tier_precision",
    "wheel_ndcg_at_k",
    "wheel_order",
    "wheel_relevance",
]
