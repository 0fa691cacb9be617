"""Pure tensor maths: no ``nn.Module`` state, no pytorch-metric-learning.

Each piece of maths of the library is written once here; the modules in
:mod:`sentiment_metric` hold configuration and call these functions.
"""

# Each part adds its own import line and names below (one line per module).
from .constraint import (
    REDUCTIONS,
    SKIP_LEVEL_OPTIONS,
    ConstraintSums,
    RankedTriplets,
    all_ranked_triplets,
    constraint_sums,
    level_masks,
    pair_levels,
    rank_triplets,
    sentiment_constraint_loss,
    triplet_constraint_losses,
    weighted_distances,
)
from .gram import gram_matrix, sentiment_vector, sentiment_vector_size
from .mining import MINING_STRATEGIES, MinedTriplets, MiningStrategy, mine_ranked_triplets
from .retrieval import (
    RETRIEVAL_METRICS,
    average_precision,
    exact_knn,
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

__all__: list[str] = [
    "MINING_STRATEGIES",
    "REDUCTIONS",
    "RETRIEVAL_METRICS",
    "SKIP_LEVEL_OPTIONS",
    "ConstraintSums",
    "MinedTriplets",
    "MiningStrategy",
    "RankedTriplets",
    "all_ranked_triplets",
    "average_precision",
    "constraint_sums",
    "exact_knn",
    "gram_matrix",
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
    "tier_precision",
    "triplet_constraint_losses",
    "weighted_distances",
    "wheel_ndcg_at_k",
    "wheel_order",
    "wheel_relevance",
]
