"""Pure tensor maths: no ``nn.Module`` state, no pytorch-metric-learning.

Each piece of maths of the library is written once here; the modules in
:mod:`sentiment_metric` hold configuration and call these functions.
"""

from .constraint import REDUCTIONS, SKIP_LEVEL_OPTIONS, weighted_distances
from .constraint_sums import ConstraintSums, constraint_sums, sentiment_constraint_loss
from .distance import exclude_self, squared_euclidean
from .hierarchy import (
    expected_cost_embedding,
    expected_cost_predictions,
    hierarchical_centres,
    hierarchical_proxy_loss,
    hierarchy_relevance,
    hierarchy_similarity,
    smooth_hierarchical_ap,
)
from .levels import level_masks, pair_levels
from .mining import MINING_STRATEGIES, MinedTriplets, MiningStrategy, mine_ranked_triplets
from .retrieval import (
    MEASURES,
    RETRIEVAL_METRICS,
    Measure,
    average_precision,
    exact_knn,
    group_miss_share_at_k,
    group_miss_share_of_errors,
    hierarchical_average_precision,
    mean_wheel_distance_at_k,
    mean_wheel_distance_of_errors,
    nmrr,
    per_query_retrieval_metrics,
    polarity_accuracy,
    polarity_precision_at_k,
    precision_at_k,
    r_precision,
    reciprocal_rank,
    retrieval_metrics,
    tier_precision,
    wheel_ndcg_at_k,
    wheel_order,
    wheel_relevance,
)
from .sentiment_vector import gram_matrix, sentiment_vector, sentiment_vector_size
from .triplets import (
    RankedTriplets,
    all_ranked_triplets,
    rank_triplets,
    triplet_constraint_losses,
)

__all__: list[str] = [
    "MEASURES",
    "MINING_STRATEGIES",
    "REDUCTIONS",
    "RETRIEVAL_METRICS",
    "SKIP_LEVEL_OPTIONS",
    "ConstraintSums",
    "Measure",
    "MinedTriplets",
    "MiningStrategy",
    "RankedTriplets",
    "all_ranked_triplets",
    "average_precision",
    "constraint_sums",
    "exact_knn",
    "exclude_self",
    "expected_cost_embedding",
    "expected_cost_predictions",
    "gram_matrix",
    "group_miss_share_at_k",
    "group_miss_share_of_errors",
    "hierarchical_average_precision",
    "hierarchical_centres",
    "hierarchical_proxy_loss",
    "hierarchy_relevance",
    "hierarchy_similarity",
    "level_masks",
    "mean_wheel_distance_at_k",
    "mean_wheel_distance_of_errors",
    "mine_ranked_triplets",
    "nmrr",
    "pair_levels",
    "per_query_retrieval_metrics",
    "polarity_accuracy",
    "polarity_precision_at_k",
    "precision_at_k",
    "r_precision",
    "rank_triplets",
    "reciprocal_rank",
    "retrieval_metrics",
    "sentiment_constraint_loss",
    "sentiment_vector",
    "sentiment_vector_size",
    "smooth_hierarchical_ap",
    "squared_euclidean",
    "tier_precision",
    "triplet_constraint_losses",
    "weighted_distances",
    "wheel_ndcg_at_k",
    "wheel_order",
    "wheel_relevance",
]
