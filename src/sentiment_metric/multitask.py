"""Classification and sentiment constraints together: :class:`MultiTaskSentimentLoss`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import (
    check_embeddings,
    check_finite,
    check_labels,
    check_nonnegative_float,
    check_shape,
)
from .constraint import SentimentConstraintLoss
from .errors import SentimentMetricError
from .wheel import EmotionWheel, LabelRelations

__all__ = ["LossParts", "MultiTaskSentimentLoss"]


class LossParts(NamedTuple):
    """What :meth:`MultiTaskSentimentLoss.parts` returns: the three values, differentiable."""

    total: Tensor
    classification: Tensor
    metric: Tensor


class MultiTaskSentimentLoss(torch.nn.Module):
    """Classification and sentiment constraints together: ``E = (1 − ω)·E_cls + ω·E_sml``.

    .. math::

        E = (1 - \\omega)\\,\\mathrm{CE}(\\text{logits}, y)
          + \\omega\\, E_{sml}(\\text{embeddings}, y)

    :meth:`parts` returns the three values (``total``, ``classification``, ``metric``,
    differentiable) as a :class:`LossParts`; ``forward`` returns ``parts(...).total``. After
    each call of either, the public attribute ``last_losses`` holds the detached
    ``"classification"``, ``"metric"`` and ``"total"`` values, for logging.

    Args:
        omega: ``ω`` in ``[0, 1]``.
        metric_loss: the metric loss (any PML loss); ``None`` builds a
            :class:`SentimentConstraintLoss` from ``class_names``/``relations``/``wheel``.
        miner: optional PML miner (a module, not a name) called as
            ``miner(embeddings, labels)``; its tuples go to ``metric_loss``.
        class_names, relations, wheel: see :class:`SentimentConstraintLoss`.

    The inputs are checked on every call (a :class:`~sentiment_metric.SentimentMetricError`
    naming the argument); labels of any integer dtype are read as ``int64``. The checks that
    read values (NaN/Inf logits, the label range) follow the metric loss's ``validate``
    switch (``SentimentConstraintLoss(validate=False)`` turns them off).

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
        >>> parts = loss_fn.parts(emb, logits, torch.arange(16) % 8)
        >>> torch.allclose(parts.total, 0.8 * parts.classification + 0.2 * parts.metric)
        True
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
        if miner is not None and not isinstance(miner, torch.nn.Module):
            raise SentimentMetricError(
                f"miner must be a PML miner module (e.g. sentiment_metric."
                f"SentimentSemiHardMiner(...)) or None, got {type(miner).__name__} {miner!r}"
            )
        self.metric_loss = metric_loss
        self.miner = miner
        rel = getattr(metric_loss, "relations", None)  # any PML loss may be given
        self.num_classes: int | None = rel.num_classes if isinstance(rel, LabelRelations) else None
        self.last_losses: dict[str, Tensor] = {}

    def _check_logits(self, logits: Tensor, b: int) -> Tensor:
        logits = check_shape(
            logits, ("B", "C" if self.num_classes is None else self.num_classes), "logits"
        )
        if logits.shape[0] != b:
            raise SentimentMetricError(
                f"logits has {logits.shape[0]} rows but embeddings has {b}; they must match"
            )
        if not logits.is_floating_point():
            raise SentimentMetricError(f"logits must be floating point, got {logits.dtype}")
        if self.validate:
            check_finite(logits, "logits")
        return logits

    @property
    def validate(self) -> bool:
        """Whether the checks that read values run: the metric loss's ``validate``."""
        return bool(getattr(self.metric_loss, "validate", True))

    def parts(self, embeddings: Tensor, logits: Tensor, labels: Tensor) -> LossParts:
        """``total = (1 − ω)·CE(logits, labels) + ω·metric_loss(embeddings, labels[, mined])``
        and its two parts, all differentiable; also sets ``last_losses`` (detached).
        """
        embeddings = check_embeddings(embeddings, "embeddings", validate=False)
        b = embeddings.shape[0]
        logits = self._check_logits(logits, b)
        labels = check_labels(labels, logits.shape[1], length=b, validate=self.validate)
        cls = torch.nn.functional.cross_entropy(logits, labels)
        indices = None if self.miner is None else self.miner(embeddings, labels)
        metric = self.metric_loss(embeddings, labels, indices)
        total = (1.0 - self.omega) * cls + self.omega * metric
        out = LossParts(total, cls, metric)
        self.last_losses = {k: v.detach() for k, v in out._asdict().items()}
        return out

    def forward(self, embeddings: Tensor, logits: Tensor, labels: Tensor) -> Tensor:
        """``(1 − ω)·CE(logits, labels) + ω·metric_loss(embeddings, labels[, mined])``."""
        return self.parts(embeddings, logits, labels).total

    def extra_repr(self) -> str:
        return f"omega={self.omega}"
