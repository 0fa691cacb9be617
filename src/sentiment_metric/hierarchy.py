"""Hierarchy-aware PML losses: fixed hierarchical class centres and a smooth H-AP.

:class:`HierarchicalProxyLoss` and :class:`HierarchicalAPLoss` are PML
``BaseMetricLossFunction``\\ s: drop them where a ``NormalizedSoftmaxLoss`` or a
``SmoothAPLoss`` would go, or into :class:`~sentiment_metric.MultiTaskSentimentLoss` as
``metric_loss=``. The maths lives in :mod:`sentiment_metric.functional.hierarchy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.reducers import BaseReducer, MeanReducer
from pytorch_metric_learning.utils import common_functions as c_f
from torch import Tensor

from ._checks import check_metric_inputs, check_positive_float
from ._pml import check_pml_kwargs
from .errors import SentimentMetricError
from .functional.hierarchy import (
    hierarchical_centres,
    hierarchical_proxy_loss,
    smooth_hierarchical_ap,
)
from .wheel import EmotionWheel, LabelRelations, resolve_relations

__all__ = ["HierarchicalAPLoss", "HierarchicalProxyLoss"]


def _element_losses(losses: Tensor, indices: Tensor) -> dict[str, Any]:
    return {"loss": {"losses": losses, "indices": indices, "reduction_type": "element"}}


class _CosineHierarchyLoss(BaseMetricLossFunction):
    """What both losses share: PML's keywords checked, no ``distance=`` (they compare by
    cosine), the relations, ``τ``, ``validate`` and PML's ``MeanReducer`` by default."""

    def __init__(
        self,
        class_names: Sequence[str] | None,
        relations: LabelRelations | None,
        wheel: EmotionWheel | None,
        temperature: float,
        validate: bool,
        **kwargs: Any,
    ) -> None:
        check_pml_kwargs(type(self).__name__, "loss", kwargs)
        if "distance" in kwargs:
            raise SentimentMetricError(
                f"{type(self).__name__} compares by cosine similarity: it takes no distance="
            )
        super().__init__(**kwargs)
        self.relations = resolve_relations(class_names, relations, wheel)
        self.temperature = check_positive_float(temperature, "temperature")
        self.validate = bool(validate)

    def get_default_reducer(self) -> BaseReducer:
        return MeanReducer()


class HierarchicalProxyLoss(_CosineHierarchyLoss):
    """Softmax over the cosines to fixed class centres placed by the hierarchy.

    The centres are unit vectors whose cosine similarities are fixed in advance by the label
    hierarchy (:func:`~sentiment_metric.functional.hierarchical_centres`: 1/2 within a group,
    0 across for :meth:`LabelRelations.from_groups`; ``1 − steps/4`` around Mikels' wheel, a
    circle), after Barz & Denzler (WACV 2019); the loss is a normalised softmax over them
    (:func:`~sentiment_metric.functional.hierarchical_proxy_loss`), so each class's
    embeddings gather at its centre and the classes keep the hierarchy's geometry: a sample
    that lands between classes lands nearer its own group. The centres are a buffer, not
    parameters (nothing to put in the optimiser).

    Args:
        embedding_size: ``D``, at least the rank of the class similarities (``<= C``).
        class_names: the dataset's class names in label order (read on ``wheel``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel the names are read on (default Mikels').
        temperature: ``τ`` of the softmax (0.1).
        seed: the seed of the centres' orthonormal placement.
        validate: check the values of every batch.
        **kwargs: PML's ``reducer`` (default ``MeanReducer``), ``embedding_regularizer``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> loss_fn = sm.HierarchicalProxyLoss(embedding_size=16, class_names=["awe", "fear"])
        >>> loss_fn(torch.randn(6, 16), torch.tensor([0, 1, 0, 1, 0, 1])).ndim
        0
    """

    def __init__(
        self,
        embedding_size: int,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        temperature: float = 0.1,
        seed: int = 0,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(class_names, relations, wheel, temperature, validate, **kwargs)
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int):
            raise SentimentMetricError(
                f"embedding_size must be an int, got {type(embedding_size).__name__}"
            )
        try:
            centres = hierarchical_centres(self.relations.dis, embedding_size, seed=seed)
        except SentimentMetricError as err:
            raise SentimentMetricError(f"embedding_size={embedding_size!r}: {err}") from None
        self.register_buffer("centres", centres.to(torch.get_default_dtype()))
        self.embedding_size = int(embedding_size)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: Any = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        """The loss of a batch (PML's signature; ``ref_emb`` is refused: the references
        are the class centres)."""
        if ref_emb is not None or ref_labels is not None:
            raise SentimentMetricError(
                "HierarchicalProxyLoss compares each embedding with the class centres: it "
                "takes no ref_emb/ref_labels"
            )
        b = check_metric_inputs(
            embeddings, labels, self.relations.num_classes, validate=self.validate
        )
        if b.embeddings.shape[1] != self.embedding_size:
            raise SentimentMetricError(
                f"embeddings has size {b.embeddings.shape[1]} but the loss was built with "
                f"embedding_size={self.embedding_size}"
            )
        return super().forward(b.embeddings, b.labels, indices_tuple)

    def compute_loss(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: Any,
        ref_emb: Tensor,
        ref_labels: Tensor,
    ) -> dict[str, Any]:
        losses = hierarchical_proxy_loss(
            embeddings, labels, self.centres, temperature=self.temperature, validate=False
        )
        return _element_losses(losses, c_f.torch_arange_from_size(embeddings))

    def get_logits(self, embeddings: Tensor) -> Tensor:
        """``(B, C)`` cosines to the centres divided by ``τ`` (a classifier for free)."""
        e = torch.nn.functional.normalize(embeddings, dim=1)
        return e @ self.centres.to(e).T / self.temperature

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, num_classes={self.relations.num_classes}, "
            f"temperature={self.temperature}"
        )


class HierarchicalAPLoss(_CosineHierarchyLoss):
    """``1 −`` a smooth hierarchical average precision per query (HAPPIER, ECCV 2022).

    Each query ranks the batch (or ``ref_emb``) by cosine similarity; the hierarchical AP
    with relevance 1 (same class), 1/2 (same group), 0 (other group) is made differentiable by
    sigmoids of temperature ``τ`` (:func:`~sentiment_metric.functional.smooth_hierarchical_ap`)
    and ``1 − H-AP`` is the loss of that query; queries without a relevant reference are left
    out. Memory grows like ``B³`` (chunked, recomputed in the backward for large batches).

    Args:
        class_names: the dataset's class names in label order (read on ``wheel``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel the names are read on (default Mikels').
        temperature: ``τ`` of the sigmoids (0.01, Smooth-AP's and HAPPIER's).
        validate: check the values of every batch.
        **kwargs: PML's ``reducer`` (default ``MeanReducer``), ``embedding_regularizer``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> loss_fn = sm.HierarchicalAPLoss(class_names=["awe", "contentment", "fear"])
        >>> float(loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))) >= 0
        True
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        temperature: float = 0.01,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(class_names, relations, wheel, temperature, validate, **kwargs)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: Any = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        """The loss of a batch, each query ranked against ``ref_emb`` (PML's signature;
        ``indices_tuple`` is not used: every query ranks every reference)."""
        b = check_metric_inputs(
            embeddings, labels, self.relations.num_classes, ref_emb, ref_labels,
            validate=self.validate,
        )  # fmt: skip
        return super().forward(b.embeddings, b.labels, indices_tuple, b.ref_emb, b.ref_labels)

    def compute_loss(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: Any,
        ref_emb: Tensor,
        ref_labels: Tensor,
    ) -> dict[str, Any]:
        own = ref_emb is embeddings
        hap, ok = smooth_hierarchical_ap(
            embeddings, labels, self.relations.level,
            ref_emb=None if own else ref_emb, ref_labels=None if own else ref_labels,
            temperature=self.temperature, validate=False,
        )  # fmt: skip
        idx = torch.nonzero(ok).flatten()
        if idx.numel() == 0:
            return self.zero_losses()
        return _element_losses(1.0 - hap[idx], idx)

    def extra_repr(self) -> str:
        return f"num_classes={self.relations.num_classes}, temperature={self.temperature}"
