"""pytorch-metric-learning's protocol, read for our loss and miner (one home each).

Its keywords (refused with the name of our equivalent), its ``indices_tuple`` (checked) and its
reducers (the ones the exhaustive path reduces exactly, and their ``ThresholdReducer``
windows).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pytorch_metric_learning.distances import BaseDistance
from pytorch_metric_learning.reducers import (
    AvgNonZeroReducer,
    BaseReducer,
    DivisorReducer,
    DoNothingReducer,
    MeanReducer,
    MultipleReducers,
    PerAnchorReducer,
    SumReducer,
    ThresholdReducer,
)
from pytorch_metric_learning.regularizers import BaseRegularizer
from torch import Tensor

from ._checks import check_tensor
from .errors import SentimentMetricError
from .functional.constraint import Reduction, Thresholds
from .functional.triplets import check_indices

__all__ = [
    "check_indices_tuple",
    "check_pml_kwargs",
    "exact_reductions",
    "sub_loss_reducers",
]

_FAST_REDUCTIONS: dict[type, Reduction] = {
    MeanReducer: "mean",
    SumReducer: "sum",
    AvgNonZeroReducer: "avg_nonzero",
    DivisorReducer: "mean",  # our loss hands it the number of triplets as the divisor
    ThresholdReducer: "avg_nonzero",  # the mean of the kept terms (thresholds=, _exhaustive)
}

_EVERY_TRIPLET = (
    "none: without indices_tuple the loss uses every ranked triplet, exactly; to sample "
    "triplets, give it sm.SentimentSemiHardMiner's output"
)
_PML_KEYWORDS: dict[str, dict[str, str]] = {
    "loss": {
        "margin": "margins=(α1, α2): the relative and the negative margin (PML's one margin "
        "m is margins=(m, m))",
        "pos_margin": "margins=(α1, α2)",
        "neg_margin": "margins=(α1, α2)",
        "type_of_triplets": _EVERY_TRIPLET + " (strategy=...)",
        "triplets_per_anchor": _EVERY_TRIPLET + " (per_pair=...)",
        "swap": "none: the constraints compare each anchor's distances only",
        "smooth_loss": "none: the sentiment constraints are hinges",
        "epsilon": "none",
    },
    "miner": {
        "margin": "margins=(α1, α2): the semi-hard band widths of relatives and negatives "
        "(PML's one margin m is margins=(m, m))",
        "pos_margin": "margins=(α1, α2)",
        "neg_margin": "margins=(α1, α2)",
        "type_of_triplets": "strategy= ('semihard', 'hard', 'random' or 'all'; PML's "
        "'easy' has no equivalent)",
        "triplets_per_anchor": "per_pair= (farther samples per (anchor, closer) pair)",
        "pos_strategy": "strategy=",
        "neg_strategy": "strategy=",
        "epsilon": "none: the semi-hard band is margins=(α1, α2)",
        "swap": "none",
        "smooth_loss": "none",
    },
}
_PML_BASE_KEYWORDS = {
    "loss": ("distance", "reducer", "collect_stats", "embedding_regularizer",
             "embedding_reg_weight"),
    "miner": ("distance", "collect_stats"),
}  # fmt: skip


def check_pml_kwargs(owner: str, kind: str, kwargs: dict[str, Any]) -> None:
    """Refuse keywords PML's base classes would not take, naming our equivalent.

    ``kind`` is ``"loss"`` or ``"miner"``; PML's own keywords of its triplet loss and miners
    (``margin=``, ``type_of_triplets=``, ``epsilon=``...) get a
    :class:`SentimentMetricError` that names ours (``margins=``, ``strategy=``...) or says
    there is none; ``distance``, ``reducer`` and ``embedding_regularizer`` must be PML
    objects (not names such as ``"cosine"``).
    """
    for key, value in kwargs.items():
        if key in _PML_KEYWORDS[kind]:
            raise SentimentMetricError(
                f"{owner} does not take PML's {key}={value!r}; the equivalent here: "
                f"{_PML_KEYWORDS[kind][key]}"
            )
        if key not in _PML_BASE_KEYWORDS[kind]:
            raise SentimentMetricError(
                f"{owner} got an unexpected keyword argument {key!r}; besides its own it takes "
                f"PML's {', '.join(_PML_BASE_KEYWORDS[kind])}"
            )
    for key, cls in (
        ("distance", BaseDistance),
        ("reducer", BaseReducer),
        ("embedding_regularizer", BaseRegularizer),
    ):
        value = kwargs.get(key)
        if value is not None and not isinstance(value, cls):
            raise SentimentMetricError(
                f"{key} must be a PML {cls.__name__} instance (e.g. "
                f"{'CosineSimilarity()' if key == 'distance' else cls.__name__ + ' subclass'}), "
                f"got {type(value).__name__} {value!r}"
            )


def check_indices_tuple(
    indices_tuple: Any, b: int, r: int, validate: bool, name: str = "indices_tuple"
) -> tuple[Tensor, ...]:
    """PML's 3-tuple (indices into the batch, the reference set, the reference set) or 4-tuple
    of pairs, as int64; with ``validate`` every index in range (negative ones refused)."""
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        got = (
            f"a {type(indices_tuple).__name__} of length {len(indices_tuple)}"
            if isinstance(indices_tuple, (tuple, list))
            else type(indices_tuple).__name__
        )
        raise SentimentMetricError(
            f"{name} must be PML's 3-tuple (anchor, closer, farther) of index tensors or a "
            f"4-tuple of pairs (a1, p, a2, n), got {got}"
        )
    for i, t in enumerate(indices_tuple):
        t = check_tensor(t, f"{name}[{i}]")
        if t.dim() != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise SentimentMetricError(
                f"{name}[{i}] must be a 1-D integer index tensor, got shape "
                f"{tuple(t.shape)} and dtype {t.dtype}"
            )
    names = [f"{name}[{i}]" for i in range(len(indices_tuple))]
    groups = [(0, 1, 2)] if len(indices_tuple) == 3 else [(0, 1), (2, 3)]
    out: list[Tensor] = list(indices_tuple)
    for g in groups:
        lengths = [len(indices_tuple[i]) for i in g]
        if any(n != lengths[0] for n in lengths):
            raise SentimentMetricError(
                f"{name} holds index tensors of mismatched lengths "
                f"{[len(t) for t in indices_tuple]}"
            )
        sizes = [b if i == g[0] else r for i in g]  # anchors index the batch
        checked = check_indices([indices_tuple[i] for i in g], sizes, [names[i] for i in g],
                                validate)  # fmt: skip
        for i, t in zip(g, checked):
            out[i] = t
    return tuple(out)


def sub_loss_reducers(reducer: BaseReducer, names: list[str]) -> dict[str, BaseReducer | None]:
    """The reducer each sub-loss ``names`` will meet (``None``: no reduction at all).

    PerAnchorReducer is refused (PML's does not reduce triplets).
    """
    if isinstance(reducer, DoNothingReducer):
        return {n: None for n in names}
    if isinstance(reducer, MultipleReducers):
        red = reducer.reducers
        out = {n: red[n] if n in red else reducer.default_reducer for n in names}
    else:
        out = {n: reducer for n in names}
    for name, r in out.items():
        if isinstance(r, PerAnchorReducer):
            raise SentimentMetricError(
                f"reducer for {name!r} is a PerAnchorReducer, which PML does not support "
                "for triplet losses; use MeanReducer, AvgNonZeroReducer or SumReducer "
                "(exact, fast) or any other triplet reducer"
            )
    return out


def exact_reductions(
    reducers: list[BaseReducer | None],
) -> tuple[tuple[Reduction, Reduction] | None, Thresholds | None]:
    """The exact reductions of the two sub-losses' reducers and their ``ThresholdReducer``
    windows; ``None`` for the reductions when one of them needs the per-triplet losses."""
    kinds = [_FAST_REDUCTIONS.get(type(r)) if r is not None else None for r in reducers]
    thresholds: Thresholds | None = None
    if any(isinstance(r, ThresholdReducer) for r in reducers):
        thresholds = cast(
            Thresholds,
            tuple(
                (r.low, r.high) if isinstance(r, ThresholdReducer) else (0.0, None)
                for r in reducers
            ),
        )
    rel_kind, neg_kind = kinds
    if rel_kind is None or neg_kind is None:
        return None, thresholds
    return (rel_kind, neg_kind), thresholds
