"""The sentiment constraints as a PML loss: :class:`SentimentConstraintLoss`.

The maths lives in :mod:`sentiment_metric.functional.constraint` and
:mod:`sentiment_metric.functional.constraint_sums`; the classes here hold the configuration
(relations, margins, weighting) and speak pytorch-metric-learning's protocol (distances,
reducers, ``indices_tuple``, ``ref_emb``/``ref_labels``, embedding regularizers), whose
keywords, tuples and reducers are read in ``sentiment_metric._pml``.
:class:`SentimentConstraints` (:mod:`sentiment_metric.constraint_config`) is the configuration
the loss and the miner share. The
multi-task loss is in :mod:`sentiment_metric.multitask`, cross-batch memory in
:mod:`sentiment_metric.memory`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.reducers import AvgNonZeroReducer, BaseReducer, MultipleReducers
from pytorch_metric_learning.utils import common_functions as c_f
from torch import Tensor

from ._checks import check_choice
from ._pml import check_indices_tuple, check_pml_kwargs, exact_reductions, sub_loss_reducers
from .constraint_config import SentimentConstraints
from .distance import SquaredEuclideanDistance
from .functional._fused import fused_loss
from .functional.constraint import SKIP_LEVEL_OPTIONS, SkipLevel
from .functional.constraint_sums import constraint_sums
from .functional.distance import check_self_index
from .functional.triplets import (
    RankedTriplets,
    all_ranked_triplets,
    allowed_pairs,
    rank_triplets,
    triplet_constraint_losses,
    triplet_margins,
)
from .wheel import EmotionWheel, LabelRelations

__all__ = ["SentimentConstraintLoss", "SentimentConstraints"]

_HALF = (torch.float16, torch.bfloat16)


class SentimentConstraintLoss(SentimentConstraints, BaseMetricLossFunction):
    """The sentiment constraints with wheel-distance weighting (a PML loss).

    .. math::

        E_{sml} = \\sum_{(a,p,r)} [D^*(a,p) - D^*(a,r) + \\alpha_1]_+
                + \\sum_{(a,r,n)} [D^*(a,r) - D^*(a,n) + \\alpha_2]_+,
        \\qquad D^*(i,j) = \\theta(y_i, y_j)\\, D(i,j)

    Two sub-losses, ``relative_loss`` (the first sum) and ``negative_loss`` (the second), each
    reduced by its own copy of the reducer (PML's ``MultipleReducers``) and added.

    **Without** ``indices_tuple`` every ranked triplet of the batch (against ``ref_emb`` when
    given) is used, exactly, in ``O(B·R)`` memory (see
    :func:`~sentiment_metric.functional.constraint_sums`). With ``MeanReducer``,
    ``AvgNonZeroReducer`` (the default, as PML's ``TripletMarginLoss``), ``SumReducer``,
    ``ThresholdReducer`` (the mean of the terms ``low < v < high``, zeros included when
    ``low < 0 < high``, as PML's) or ``DivisorReducer`` (this loss hands it each sub-loss's
    number of triplets as the divisor, with explicit triplets too) the sub-losses come back
    already reduced, equal to what those reducers give on the explicit per-triplet losses
    (their own stats, such as ``num_past_filter``, are then not recorded). Any other reducer
    (``ClassWeightedReducer``, ``DoNothingReducer``, a subclass, a custom one) gets the
    explicit per-triplet losses, enumerated in chunks; that needs memory for every triplet
    and is refused above ``max_explicit_triplets`` (an attribute, default ``2**24``).
    ``PerAnchorReducer`` is refused (PML's does not reduce triplets). PML's own keywords
    (``margin=``, ``swap=``, ``type_of_triplets=``...) are refused with the name of the
    equivalent here (``margins=(α1, α2)``...), or saying there is none.

    **With** a PML 3-tuple ``(a, x, y)`` each tuple is read as ``(anchor, closer, farther)`` by
    the label levels (``x`` and ``y`` swapped when ``x`` is the farther). Equal-level tuples are
    dropped. Skip-level tuples (closer at level 0, farther at level 2, as PML's own miners give)
    are dropped (``skip_level="ignore"``) or checked with margin ``α1 + α2`` in
    ``negative_loss`` (``"sum_margins"``; in exhaustive mode this adds every skip-level
    triplet too).

    **With** a PML 4-tuple of pairs ``(a1, p, a2, n)`` (a pair miner's, or the local ×
    gathered pairs minus self of ``DistributedLossWrapper(efficient=True)``) the pairs are
    the **allowed** comparisons, whatever their labels: every ranked triplet ``(a, c, f)``
    with ``(a, c)`` and ``(a, f)`` both given, exactly as without ``indices_tuple`` but with
    the other pairs excluded like self-pairs. With every pair but the self-pairs that is the
    exhaustive loss across ranks. A 4-tuple is never read as ``(a, p, r, n)``.

    With ``collect_stats=True`` (a PML keyword) the loss records ``num_relative_triplets``,
    ``num_negative_triplets``, ``num_skip_level_triplets`` (used or not),
    ``num_ranked_triplets``, ``num_equal_level_triplets`` (dropped) and
    ``num_swapped_triplets`` after each call.

    ``forward(..., self_index=)`` (``(B,)`` long, the column of ``ref_emb`` holding each row's
    own sample, ``-1`` for none) excludes those self-pairs from the exhaustive path, as
    :class:`SentimentCrossBatchMemory` does against its memory.

    Float16/bfloat16 embeddings are computed in float32; the reduced loss comes back in the
    embeddings' dtype (PML's ``MultipleReducers`` casts it). With the default distance and an
    exact reducer, the batch against itself (every triplet or a 3-tuple, ``B² <=
    max_fused_pairs``, default ``2**18``) is one fused function with a closed-form gradient
    (:mod:`sentiment_metric.functional._fused`): the same value in a few operators, no host
    sync, ``torch.compile``/CUDA-graph friendly.

    Args:
        class_names: the dataset's class names in label order (e.g. ``dataset.classes``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel ``class_names`` are read on (default ``MIKELS_WHEEL``).
        margins: ``(α1, α2)``, both ``>= 0``.
        weighting: ``"inverse_wheel"`` (``θ = 1/dis``, the paper), ``"none"`` or a ``(C, C)``
            tensor of positive weights.
        skip_level: ``"ignore"`` or ``"sum_margins"``.
        wheel_margin: ``β >= 0``: a triplet ``(a, c, f)``'s margin grows by
            ``β·(dis(a,f) - dis(a,c))``, so classes farther apart on the wheel are pushed
            farther apart in the embedding (``0``: the paper's constant margins).
        validate: check label ranges and finiteness of the embeddings (reads values).
        **kwargs: PML's ``distance`` (default ``LpDistance(power=2)``: squared Euclidean of
            L2-normalised embeddings), ``reducer``, ``embedding_regularizer``,
            ``collect_stats``...

    Shapes:
        ``forward(embeddings (B, D), labels (B,), indices_tuple=None, ref_emb (R, D)=None,
        ref_labels (R,)=None, *, self_index (B,)=None) -> ()``

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> loss_fn = sm.SentimentConstraintLoss(class_names=sm.MIKELS_WHEEL.emotions)
        >>> g = torch.Generator().manual_seed(0)
        >>> emb = torch.randn(32, 16, generator=g, requires_grad=True)
        >>> labels = torch.arange(32) % 8
        >>> loss = loss_fn(emb, labels)
        >>> loss.backward()
        >>> loss.shape, bool(loss > 0), emb.grad.shape
        (torch.Size([]), True, torch.Size([32, 16]))
    """

    max_explicit_triplets: int = 1 << 24
    max_fused_pairs: int = 1 << 18  # B <= 512: the fused path holds ~8 (B, B) float64 planes

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        margins: Sequence[float] = (0.2, 0.1),
        weighting: str | Tensor = "inverse_wheel",
        skip_level: SkipLevel = "ignore",
        validate: bool = True,
        wheel_margin: float = 0.0,
        **kwargs: Any,
    ) -> None:
        check_choice(skip_level, SKIP_LEVEL_OPTIONS, "skip_level")
        check_pml_kwargs(type(self).__name__, "loss", kwargs)
        super().__init__(**kwargs)
        self._configure(class_names, relations, wheel, margins, weighting, wheel_margin)
        self._check_distance(self.distance)
        self._partial_swap_checked = False
        self._fused_cache: dict[tuple[Any, ...], Any] = {}
        self.skip_level = skip_level
        self.validate = bool(validate)
        self.add_to_recordable_attributes(
            list_of_names=["relative_margin", "negative_margin"], is_stat=False
        )
        self.add_to_recordable_attributes(
            list_of_names=[
                "num_relative_triplets", "num_negative_triplets", "num_skip_level_triplets",
                "num_ranked_triplets", "num_equal_level_triplets", "num_swapped_triplets",
            ],
            is_stat=True,
        )  # fmt: skip
        sub_loss_reducers(self.reducer, self._sub_loss_names())  # PerAnchorReducer refused

    def _sub_loss_names(self) -> list[str]:
        return ["relative_loss", "negative_loss"]

    def get_default_distance(self) -> SquaredEuclideanDistance:
        return SquaredEuclideanDistance()

    def get_default_reducer(self) -> BaseReducer:
        return AvgNonZeroReducer()

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: Any = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        self_index: Tensor | None = None,
    ) -> Any:
        """Check the inputs (raising :class:`SentimentMetricError`), then PML's steps (reset
        the stats, set the reference set, compute, add the regularizer, reduce), with
        ``self_index`` handed on; or the fused path (``_fused``), which gives the same value."""
        embeddings, labels, ref_emb, ref_labels = self._check_batch(
            embeddings, labels, ref_emb, ref_labels
        )
        if indices_tuple is not None:
            b = embeddings.shape[0]
            r = b if ref_emb is None else ref_emb.shape[0]
            indices_tuple = check_indices_tuple(indices_tuple, b, r, self.validate)
        if self_index is not None:
            r = embeddings.shape[0] if ref_emb is None else ref_emb.shape[0]
            self_index = check_self_index(
                self_index, embeddings.shape[0], r, validate=self.validate
            )
        self.reset_stats()
        labels = c_f.to_device(labels, embeddings)
        fused = None if ref_emb is not None or self_index is not None else (
            self._fused(embeddings, labels, indices_tuple))  # fmt: skip
        if fused is not None:
            return fused
        ref_emb, ref_labels = c_f.set_ref_emb(embeddings, labels, ref_emb, ref_labels)
        loss_dict = self._compute(
            embeddings, cast(Tensor, labels), indices_tuple, ref_emb, ref_labels, self_index
        )
        self.add_embedding_regularization_to_loss_dict(loss_dict, embeddings)
        return self.reducer(loss_dict, embeddings, labels)

    def _fused(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any) -> Tensor | None:
        """The loss by :func:`~sentiment_metric.functional._fused.fused_loss` where allowed
        (else ``None``): default distance, exact reducers added by PML's ``MultipleReducers``
        (same value), no stats, regularizer or wheel margin, the batch against itself."""
        dist, emb = self.distance, embeddings
        if (
            (indices_tuple is not None and len(indices_tuple) != 3)
            or self.collect_stats
            or self.embedding_regularizer is not None
            or self._offset is not None
            or emb.dtype not in (torch.float32, torch.float64)
            or emb.shape[0] ** 2 > self.max_fused_pairs
            or type(dist) is not SquaredEuclideanDistance
            or not dist.normalize_embeddings
            or dist.collect_stats
            or type(self.reducer) is not MultipleReducers
        ):
            return None
        reducers = sub_loss_reducers(self.reducer, self._sub_loss_names())
        kinds, thresholds = exact_reductions(list(reducers.values()))
        if kinds is None or not (thresholds is None or all(w == (0, None) for w in thresholds)):
            return None  # (0, None): AvgNonZeroReducer's window, no window
        compiling = torch.compiler.is_compiling()  # first: no guard on the flag below
        if indices_tuple is not None and not compiling and not self._partial_swap_checked:
            t = rank_triplets(labels, self.level.to(emb.device), *indices_tuple, validate=False)
            lc, lf = t.closer_level, t.farther_level
            if lc.numel():
                self._warn_partial_swap(lc, (lc == 0) & (lf == 2))
        return fused_loss(
            emb, labels, indices_tuple, self.level, self.theta, self.margins,
            self.skip_level == "sum_margins", kinds,
            None if compiling else self._fused_cache,  # no guard on the cache
        )  # fmt: skip

    def compute_loss(
        self, embeddings: Tensor, labels: Tensor, indices_tuple: Any, ref_emb: Tensor,
        ref_labels: Tensor,
    ) -> dict[str, Any]:  # fmt: skip
        """PML's hook: the sub-losses, no self-pairs but the batch's own (see ``forward``)."""
        return self._compute(embeddings, labels, indices_tuple, ref_emb, ref_labels, None)

    def _compute(
        self, embeddings: Tensor, labels: Tensor, indices_tuple: Any, ref_emb: Tensor,
        ref_labels: Tensor, self_index: Tensor | None,
    ) -> dict[str, Any]:  # fmt: skip
        is_self = ref_emb is embeddings
        emb = embeddings.float() if embeddings.dtype in _HALF else embeddings
        ref = emb if is_self else (ref_emb.float() if ref_emb.dtype in _HALF else ref_emb)
        mat = self.distance(emb, None if is_self else ref)  # normalise once when ref is emb
        level = self.level.to(labels.device)
        allowed = None
        if indices_tuple is not None and len(indices_tuple) == 4:  # the pairs allowed
            pairs = [t.to(labels.device) for t in indices_tuple]
            allowed, indices_tuple = allowed_pairs(pairs, mat.shape[0], mat.shape[1]), None
        if indices_tuple is None:
            rl = None if (is_self and self_index is None) else ref_labels
            return self._exhaustive(mat, labels, rl, level, self_index, allowed)
        a, x, y = (t.to(labels.device) for t in indices_tuple)
        t = rank_triplets(labels, level, a, x, y, ref_labels, validate=False)
        return self._given(mat, labels, ref_labels, t)

    def _exhaustive(
        self, mat: Tensor, labels: Tensor, ref_labels: Tensor | None, level: Tensor,
        self_index: Tensor | None, allowed: Tensor | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Every ranked triplet (of ``allowed`` pairs): exact sums for the fast reducers, else
        enumerated."""
        reducers = sub_loss_reducers(self.reducer, self._sub_loss_names())
        kinds, thresholds = exact_reductions(list(reducers.values()))
        if kinds is None:
            t = all_ranked_triplets(
                labels, level, ref_labels=ref_labels, self_index=self_index,
                include_skip_level=self.skip_level == "sum_margins",
                max_triplets=self.max_explicit_triplets, validate=False, allowed=allowed,
            )  # fmt: skip
            return self._given(mat, labels, ref_labels, t)
        s = constraint_sums(
            mat, labels, level, ref_labels=ref_labels,
            theta=self.theta.to(device=mat.device, dtype=mat.dtype), margins=self.margins,
            inverted=bool(self.distance.is_inverted), self_index=self_index,
            skip_level=self.skip_level, validate=False, offset=self._offset_like(mat),
            thresholds=thresholds, allowed=allowed,
        )  # fmt: skip
        if self.collect_stats:
            self._set_stats(int(s.relative_count), int(s.negative_count), 0, 0, 0)
        values = s.reduce(kinds)
        return {
            name: {"losses": v, "indices": None, "reduction_type": "already_reduced"}
            for name, v in zip(self._sub_loss_names(), values)
        }

    def _given(
        self, mat: Tensor, labels: Tensor, ref_labels: Tensor | None, t: RankedTriplets
    ) -> dict[str, Any]:
        """The explicit triplets ``t``: per-triplet losses, each sub-loss its own."""
        lc, lf = t.closer_level, t.farther_level
        rel, second, skip, margin = triplet_margins(t, self.margins, self.skip_level)
        if not self._partial_swap_checked and lc.numel():
            self._warn_partial_swap(lc, skip)
        if self.collect_stats:
            n_equal, n_swap = int((lc == lf).sum()), int((t.swapped & (lc != lf)).sum())
            n_neg = int(((lc == 1) & (lf == 2)).sum())
            self._set_stats(int(rel.sum()), n_neg, int(skip.sum()), n_equal, n_swap)
        # the hinge of every tuple at once (one gather, one backward), then each sub-loss
        # selects its own (the others get no gradient)
        losses = triplet_constraint_losses(
            mat, labels, t.anchor, t.closer, t.farther, margin, ref_labels=ref_labels,
            theta=self.theta.to(device=mat.device, dtype=mat.dtype),
            inverted=bool(self.distance.is_inverted), offset=self._offset_like(mat),
            validate=False,
        )  # fmt: skip
        out: dict[str, Any] = {}
        for name, mask in zip(self._sub_loss_names(), (rel, second)):
            sel = mask.nonzero().squeeze(1)
            if sel.shape[0] == 0:
                out[name] = self.zero_loss()
                continue
            idx = tuple(x.index_select(0, sel) for x in (t.anchor, t.closer, t.farther))
            out[name] = {
                "losses": losses.index_select(0, sel),
                "indices": idx,
                "reduction_type": "triplet",
                "divisor": sel.shape[0],  # DivisorReducer: the number of triplets
            }
        return out

    def _warn_partial_swap(self, closer_level: Tensor, skip: Tensor) -> None:
        """Once per instance (one host sync): 3-tuples whose closer always shares the anchor's
        class (a PML triplet miner's) never train the polarity constraint."""
        self._partial_swap_checked = True
        if self.skip_level == "ignore" and not bool((closer_level != 0).any()):
            n_skip = int(skip.sum())
            warnings.warn(
                "SentimentConstraintLoss got triplets whose closer sample always has the "
                f"anchor's class ({n_skip} skip-level triplets dropped): the polarity "
                "constraint (relative < negative) sees no triplet. This is what PML's triplet "
                "miners give. Mine with sm.SentimentSemiHardMiner, pass no indices_tuple "
                "(every ranked triplet), pass a PML pair miner's 4-tuple (every ranked "
                "triplet of its pairs), or use skip_level='sum_margins'.",
                UserWarning,
                stacklevel=4,
            )

    def _set_stats(self, n_rel: int, n_neg: int, n_skip: int, n_equal: int, n_swap: int) -> None:
        self.num_relative_triplets, self.num_negative_triplets = n_rel, n_neg
        self.num_skip_level_triplets, self.num_ranked_triplets = n_skip, n_rel + n_neg
        self.num_equal_level_triplets, self.num_swapped_triplets = n_equal, n_swap

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.relations.num_classes}, margins={self.margins}, "
            f"weighting={self._weighting_repr()}, wheel_margin={self.wheel_margin}, "
            f"skip_level={self.skip_level!r}, validate={self.validate}"
        )
