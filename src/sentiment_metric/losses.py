"""PML adapters for the sentiment constraints: the loss, the multi-task loss, cross-batch memory.

The maths lives in :mod:`sentiment_metric.functional.constraint`; the classes here hold the
configuration (relations, margins, weighting) and speak pytorch-metric-learning's protocol
(distances, reducers, ``indices_tuple``, ``ref_emb``/``ref_labels``, embedding regularizers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction, CrossBatchMemory
from pytorch_metric_learning.reducers import (
    AvgNonZeroReducer,
    BaseReducer,
    DoNothingReducer,
    MeanReducer,
    MultipleReducers,
    PerAnchorReducer,
    SumReducer,
)
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch import Tensor

from ._checks import (
    SentimentMetricError,
    check_choice,
    check_embeddings,
    check_labels,
    check_margins,
    check_metric_batch,
    check_nonnegative_float,
    check_shape,
    check_tensor,
    resolve_relations,
)
from ._distance import SquaredEuclideanDistance
from .functional.constraint import (
    SKIP_LEVEL_OPTIONS,
    all_ranked_triplets,
    constraint_sums,
    rank_triplets,
    triplet_constraint_losses,
)
from .wheel import EmotionWheel, LabelRelations

__all__ = ["MultiTaskSentimentLoss", "SentimentConstraintLoss", "SentimentCrossBatchMemory"]

WEIGHTINGS: tuple[str, ...] = ("inverse_wheel", "none")
"""The named values ``weighting`` accepts (a ``(C, C)`` tensor is accepted too)."""

_FAST_REDUCTIONS: dict[type, str] = {
    MeanReducer: "mean",
    SumReducer: "sum",
    AvgNonZeroReducer: "avg_nonzero",
}
_HALF = (torch.float16, torch.bfloat16)


def _check_indices_tuple(indices_tuple: Any, name: str = "indices_tuple") -> tuple[Tensor, ...]:
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
    out = []
    for i, t in enumerate(indices_tuple):
        t = check_tensor(t, f"{name}[{i}]")
        if t.dim() != 1 or t.is_floating_point() or t.dtype == torch.bool:
            raise SentimentMetricError(
                f"{name}[{i}] must be a 1-D integer index tensor, got shape "
                f"{tuple(t.shape)} and dtype {t.dtype}"
            )
        out.append(t.long())
    lengths = [len(t) for t in out]
    ok = (
        len(set(lengths)) == 1
        if len(out) == 3
        else (lengths[0] == lengths[1] and lengths[2] == lengths[3])
    )
    if not ok:
        raise SentimentMetricError(f"{name} holds index tensors of mismatched lengths {lengths}")
    return tuple(out)


class SentimentConstraintLoss(BaseMetricLossFunction):
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
    ``AvgNonZeroReducer`` (the default, as PML's ``TripletMarginLoss``) or ``SumReducer`` the
    sub-losses come back already reduced, equal to what those reducers give on the explicit
    per-triplet losses. Any other reducer (``ThresholdReducer``, ``ClassWeightedReducer``,
    ``DivisorReducer``, ``DoNothingReducer``, a custom one) gets the explicit per-triplet
    losses, enumerated in chunks; that needs memory for every triplet and is refused above
    ``max_explicit_triplets`` (an attribute, default ``2**24``). ``PerAnchorReducer`` is refused
    (PML's does not reduce triplets).

    **With** a PML 3-tuple ``(a, x, y)`` each tuple is read as ``(anchor, closer, farther)`` by
    the label levels (``x`` and ``y`` swapped when ``x`` is the farther). Equal-level tuples are
    dropped. Skip-level tuples (closer at level 0, farther at level 2, as PML's own miners give)
    are dropped (``skip_level="ignore"``) or checked with margin ``α1 + α2`` in
    ``negative_loss`` (``"sum_margins"``; in exhaustive mode this adds every skip-level
    triplet too). A PML 4-tuple of pairs is turned into triplets by PML's
    ``lmu.convert_to_triplets`` (same-label positives, different-label negatives), then read
    the same way; it is never read as ``(a, p, r, n)``.

    With ``collect_stats=True`` (a PML keyword) the loss records ``num_relative_triplets``,
    ``num_negative_triplets``, ``num_skip_level_triplets`` (used or not),
    ``num_ranked_triplets``, ``num_equal_level_triplets`` (dropped) and
    ``num_swapped_triplets`` after each call.

    Float16/bfloat16 embeddings are computed in float32; the reduced loss comes back in the
    embeddings' dtype (PML's ``MultipleReducers`` casts it).

    Args:
        class_names: the dataset's class names in label order (e.g. ``dataset.classes``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel ``class_names`` are read on (default ``MIKELS_WHEEL``).
        margins: ``(α1, α2)``, both ``>= 0``.
        weighting: ``"inverse_wheel"`` (``θ = 1/dis``, the paper), ``"none"`` or a ``(C, C)``
            tensor of positive weights.
        skip_level: ``"ignore"`` or ``"sum_margins"``.
        validate: check label ranges and finiteness of the embeddings (reads values).
        **kwargs: PML's ``distance`` (default ``LpDistance(power=2)``: squared Euclidean of
            L2-normalised embeddings), ``reducer``, ``embedding_regularizer``,
            ``collect_stats``...

    Shapes:
        ``forward(embeddings (B, D), labels (B,), indices_tuple=None, ref_emb (R, D)=None,
        ref_labels (R,)=None) -> ()``

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

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        margins: Sequence[float] = (0.2, 0.1),
        weighting: str | Tensor = "inverse_wheel",
        skip_level: str = "ignore",
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        rel = resolve_relations(class_names, relations, wheel)
        alpha = check_margins(margins)
        if not isinstance(weighting, Tensor):
            check_choice(weighting, WEIGHTINGS, "weighting")
        theta = rel.weights(weighting)  # validates a tensor; float64 below keeps 1/dis exact
        if isinstance(weighting, Tensor):
            theta = weighting.detach().to(device="cpu", dtype=torch.float64)
        elif weighting == "inverse_wheel":
            theta = 1.0 / rel.dis.to(torch.float64)
        else:
            theta = theta.to(torch.float64)
        check_choice(skip_level, SKIP_LEVEL_OPTIONS, "skip_level")
        super().__init__(**kwargs)
        self.relations = rel
        self.margins: tuple[float, float] = alpha
        self.relative_margin, self.negative_margin = alpha
        self.weighting = "tensor" if isinstance(weighting, Tensor) else weighting
        self.skip_level = skip_level
        self.validate = bool(validate)
        self.register_buffer("level", rel.level.clone(), persistent=False)
        self.register_buffer("theta", theta.clone(), persistent=False)
        self._pending_self_index: Tensor | None = None
        self.add_to_recordable_attributes(
            list_of_names=["relative_margin", "negative_margin"], is_stat=False
        )
        self.add_to_recordable_attributes(
            list_of_names=[
                "num_relative_triplets",
                "num_negative_triplets",
                "num_skip_level_triplets",
                "num_ranked_triplets",
                "num_equal_level_triplets",
                "num_swapped_triplets",
            ],
            is_stat=True,
        )
        for name, reducer in self._sub_loss_reducers().items():
            if isinstance(reducer, PerAnchorReducer):
                raise SentimentMetricError(
                    f"reducer for {name!r} is a PerAnchorReducer, which PML does not support "
                    "for triplet losses; use MeanReducer, AvgNonZeroReducer or SumReducer "
                    "(exact, fast) or any other triplet reducer"
                )

    # ----------------------------------------------------------------- PML protocol
    def _sub_loss_names(self) -> list[str]:
        return ["relative_loss", "negative_loss"]

    def get_default_distance(self) -> SquaredEuclideanDistance:
        return SquaredEuclideanDistance()

    def get_default_reducer(self) -> BaseReducer:
        return AvgNonZeroReducer()

    def _sub_loss_reducers(self) -> dict[str, BaseReducer | None]:
        """The reducer each sub-loss will meet (``None``: no reduction at all)."""
        names = self._sub_loss_names()
        red = self.reducer
        if isinstance(red, DoNothingReducer):
            return {n: None for n in names}
        if isinstance(red, MultipleReducers):
            return {n: red.reducers[n] if n in red.reducers else red.default_reducer for n in names}
        return {n: red for n in names}

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: Any = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Any:
        """Check the inputs (raising :class:`SentimentMetricError`), then PML's forward."""
        embeddings = check_metric_batch(
            embeddings,
            labels,
            self.relations.num_classes,
            ref_emb,
            ref_labels,
            validate=self.validate,
        )
        if indices_tuple is not None:
            indices_tuple = _check_indices_tuple(indices_tuple)
        return super().forward(embeddings, labels, indices_tuple, ref_emb, ref_labels)

    def compute_loss(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: Any,
        ref_emb: Tensor,
        ref_labels: Tensor,
    ) -> dict[str, Any]:
        self_index, self._pending_self_index = self._pending_self_index, None
        is_self = ref_emb is embeddings
        emb = embeddings.float() if embeddings.dtype in _HALF else embeddings
        ref = emb if is_self else (ref_emb.float() if ref_emb.dtype in _HALF else ref_emb)
        mat = self.distance(emb, None if is_self else ref)  # normalise once when ref is emb
        level = self.level.to(labels.device)
        theta = self.theta.to(device=mat.device, dtype=mat.dtype)
        inverted = bool(self.distance.is_inverted)
        if indices_tuple is None:
            rl = None if (is_self and self_index is None) else ref_labels
            return self._exhaustive(mat, labels, rl, level, theta, inverted, self_index)
        if len(indices_tuple) == 4:
            indices_tuple = lmu.convert_to_triplets(indices_tuple, labels, ref_labels)
        a, x, y = (t.to(labels.device) for t in indices_tuple)
        t = rank_triplets(labels, level, a, x, y, ref_labels)
        return self._given(mat, labels, ref_labels, theta, inverted, t)

    # ----------------------------------------------------------------- the two paths
    def _exhaustive(
        self,
        mat: Tensor,
        labels: Tensor,
        ref_labels: Tensor | None,
        level: Tensor,
        theta: Tensor,
        inverted: bool,
        self_index: Tensor | None,
    ) -> dict[str, Any]:
        reducers = self._sub_loss_reducers()
        rel_kind, neg_kind = (
            _FAST_REDUCTIONS.get(type(r)) if r is not None else None for r in reducers.values()
        )
        if rel_kind is not None and neg_kind is not None:
            s = constraint_sums(
                mat,
                labels,
                level,
                ref_labels=ref_labels,
                theta=theta,
                margins=self.margins,
                inverted=inverted,
                self_index=self_index,
                skip_level=self.skip_level,
                validate=False,
            )
            if self.collect_stats:
                self._set_stats(int(s.relative_count), int(s.negative_count), 0, 0, 0)
            values = s.reduce((rel_kind, neg_kind))
            return {
                name: {"losses": v, "indices": None, "reduction_type": "already_reduced"}
                for name, v in zip(self._sub_loss_names(), values)
            }
        t = all_ranked_triplets(
            labels,
            level,
            ref_labels=ref_labels,
            self_index=self_index,
            include_skip_level=self.skip_level == "sum_margins",
            max_triplets=self.max_explicit_triplets,
        )
        return self._given(mat, labels, ref_labels, theta, inverted, t)

    def _given(
        self,
        mat: Tensor,
        labels: Tensor,
        ref_labels: Tensor | None,
        theta: Tensor,
        inverted: bool,
        t: Any,
    ) -> dict[str, Any]:
        lc, lf = t.closer_level, t.farther_level
        rel = (lc == 0) & (lf == 1)
        neg = (lc == 1) & (lf == 2)
        skip = (lc == 0) & (lf == 2)
        a1, a2 = self.margins
        # every tuple's margin: α1 (relative), α2 (negative), α1 + α2 (skip-level, when summed)
        margin = torch.full(lc.shape, a2, dtype=mat.dtype, device=mat.device)
        margin.masked_fill_(rel, a1)
        second = neg
        if self.skip_level == "sum_margins":
            second = neg | skip
            margin.masked_fill_(skip, a1 + a2)
        if self.collect_stats:
            self._set_stats(
                int(rel.sum()),
                int(neg.sum()),
                int(skip.sum()),
                int((lc == lf).sum()),
                int((t.swapped & (lc != lf)).sum()),
            )
        # the hinge of every tuple at once (one gather, one backward), then each sub-loss
        # selects its own (the others get no gradient)
        losses = triplet_constraint_losses(
            mat,
            labels,
            t.anchor,
            t.closer,
            t.farther,
            margin,
            ref_labels=ref_labels,
            theta=theta,
            inverted=inverted,
        )
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
            }
        return out

    def _set_stats(self, n_rel: int, n_neg: int, n_skip: int, n_equal: int, n_swap: int) -> None:
        self.num_relative_triplets = n_rel
        self.num_negative_triplets = n_neg
        self.num_skip_level_triplets = n_skip
        self.num_ranked_triplets = n_rel + n_neg
        self.num_equal_level_triplets = n_equal
        self.num_swapped_triplets = n_swap

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.relations.num_classes}, margins={self.margins}, "
            f"weighting={self.weighting!r}, skip_level={self.skip_level!r}, "
            f"validate={self.validate}"
        )


class MultiTaskSentimentLoss(torch.nn.Module):
    """Classification and sentiment constraints together: ``E = (1 − ω)·E_cls + ω·E_sml``.

    .. math::

        E = (1 - \\omega)\\,\\mathrm{CE}(\\text{logits}, y)
          + \\omega\\, E_{sml}(\\text{embeddings}, y)

    After each call, ``last_losses`` holds the detached ``"classification"``, ``"metric"``
    and ``"total"`` values, for logging.

    Args:
        omega: ``ω`` in ``[0, 1]``.
        metric_loss: the metric loss (any PML loss); ``None`` builds a
            :class:`SentimentConstraintLoss` from ``class_names``/``relations``/``wheel``.
        miner: optional PML miner called as ``miner(embeddings, labels)``; its tuples go to
            ``metric_loss``.
        class_names, relations, wheel: see :class:`SentimentConstraintLoss`.

    Shapes:
        ``forward(embeddings (B, D), logits (B, C), labels (B,)) -> ()``

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> loss_fn = sm.MultiTaskSentimentLoss(omega=0.2, class_names=sm.MIKELS_WHEEL.emotions)
        >>> g = torch.Generator().manual_seed(0)
        >>> emb, logits = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
        >>> loss = loss_fn(emb, logits, torch.arange(16) % 8)
        >>> sorted(loss_fn.last_losses)
        ['classification', 'metric', 'total']
    """

    def __init__(
        self,
        omega: float = 0.2,
        metric_loss: torch.nn.Module | None = None,
        miner: torch.nn.Module | None = None,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
    ) -> None:
        super().__init__()
        omega = check_nonnegative_float(omega, "omega")
        if omega > 1.0:
            raise SentimentMetricError(f"omega must lie in [0, 1], got {omega!r}")
        self.omega = omega
        if metric_loss is None:
            metric_loss = SentimentConstraintLoss(
                class_names=class_names, relations=relations, wheel=wheel
            )
        elif class_names is not None or relations is not None:
            raise SentimentMetricError(
                "give metric_loss= or class_names=/relations=, not both (the metric loss "
                "already knows its classes)"
            )
        if not isinstance(metric_loss, torch.nn.Module):
            raise SentimentMetricError(
                f"metric_loss must be a torch.nn.Module (a PML loss), got "
                f"{type(metric_loss).__name__}"
            )
        self.metric_loss = metric_loss
        self.miner = miner
        rel = getattr(metric_loss, "relations", None)
        self.num_classes: int | None = rel.num_classes if isinstance(rel, LabelRelations) else None
        self.last_losses: dict[str, Tensor] = {}

    def forward(self, embeddings: Tensor, logits: Tensor, labels: Tensor) -> Tensor:
        """``(1 − ω)·CE(logits, labels) + ω·metric_loss(embeddings, labels[, mined])``."""
        embeddings = check_embeddings(embeddings, "embeddings", validate=False)
        b = embeddings.shape[0]
        logits = check_shape(
            logits, ("B", "C" if self.num_classes is None else self.num_classes), "logits"
        )
        if logits.shape[0] != b:
            raise SentimentMetricError(
                f"logits has {logits.shape[0]} rows but embeddings has {b}; they must match"
            )
        if not logits.is_floating_point():
            raise SentimentMetricError(f"logits must be floating point, got {logits.dtype}")
        c = logits.shape[1]
        check_labels(labels, c, length=b)
        cls = torch.nn.functional.cross_entropy(logits, labels)
        indices = None if self.miner is None else self.miner(embeddings, labels)
        metric = self.metric_loss(embeddings, labels, indices)
        total = (1.0 - self.omega) * cls + self.omega * metric
        self.last_losses = {
            "classification": cls.detach(),
            "metric": metric.detach(),
            "total": total.detach(),
        }
        return total

    def extra_repr(self) -> str:
        return f"omega={self.omega}"


class SentimentCrossBatchMemory(CrossBatchMemory):
    """PML's ``CrossBatchMemory`` that also accepts :class:`SentimentConstraintLoss`.

    PML whitelists the losses ``CrossBatchMemory`` wraps by class name; this subclass adds
    ``"SentimentConstraintLoss"``. Without a miner and without ``indices_tuple``, PML would
    hand the loss every *pair* against the memory (a 4-tuple); here our loss instead runs its
    exact exhaustive path against the memory (every ranked triplet, each sample's own memory
    slot excluded), in ``O(B·M)`` memory. With a miner, PML's own path is used.

    .. math::

        E = E_{sml}(\\text{batch}, \\text{memory})

    Args:
        loss: the wrapped loss (ours or any loss PML's ``CrossBatchMemory`` supports).
        embedding_size: ``D``.
        memory_size: ``M``, the number of stored embeddings.
        miner: optional PML miner called against the memory.

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> loss = sm.SentimentConstraintLoss(class_names=sm.MIKELS_WHEEL.emotions)
        >>> xbm = sm.SentimentCrossBatchMemory(loss, embedding_size=8, memory_size=64)
        >>> g = torch.Generator().manual_seed(0)
        >>> out = xbm(torch.randn(16, 8, generator=g), torch.arange(16) % 8)
        >>> out.shape, xbm.queue_idx
        (torch.Size([]), 16)
    """

    @staticmethod
    def supported_losses() -> list[str]:
        return [*CrossBatchMemory.supported_losses(), "SentimentConstraintLoss"]

    def create_indices_tuple(
        self,
        embeddings: Tensor,
        labels: Tensor,
        E_mem: Tensor,
        L_mem: Tensor,
        input_indices_tuple: Any,
        do_remove_self_comparisons: bool,
    ) -> Any:
        if (
            self.miner is None
            and input_indices_tuple is None
            and isinstance(self.loss, SentimentConstraintLoss)
        ):
            # exhaustive against the memory; the batch's own slots are excluded by index
            self.loss._pending_self_index = (
                self.curr_batch_idx.clone() if do_remove_self_comparisons else None
            )
            return None
        return super().create_indices_tuple(
            embeddings, labels, E_mem, L_mem, input_indices_tuple, do_remove_self_comparisons
        )

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: Any = None,
        enqueue_mask: Tensor | None = None,
    ) -> Any:
        try:
            return super().forward(embeddings, labels, indices_tuple, enqueue_mask)
        finally:
            if isinstance(self.loss, SentimentConstraintLoss):
                self.loss._pending_self_index = None
