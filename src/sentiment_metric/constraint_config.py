"""The configuration the loss and the miner share: :class:`SentimentConstraints`.

Relations, margins ``(α1, α2)``, the weighting ``θ``, the wheel margin ``β`` and the
skip-level option, each checked when set, at construction or later (``loss.weighting =
"none"`` rebuilds ``θ``; ``loss.skip_level = "bogus"`` is refused), so an attribute never
holds a value the maths would ignore or misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor

from ._checks import (
    MAX_MAGNITUDE,
    check_choice,
    check_margins,
    check_metric_inputs,
    check_nonnegative_float,
)
from .errors import SentimentMetricError
from .functional.constraint import SKIP_LEVEL_OPTIONS, SkipLevel
from .weighting import WEIGHTINGS, theta_matrix
from .wheel import EmotionWheel, LabelRelations, resolve_relations

__all__ = ["SentimentConstraints"]


class SentimentConstraints:
    """The configuration the loss and the miner share: relations, margins and the weighting θ.

    ``margins`` ``(α1, α2)`` is the one source of truth; ``relative_margin`` (``α1``) and
    ``negative_margin`` (``α2``) read and write it (PML records them). ``wheel_margin`` ``β``
    adds ``β·(dis(a,f) - dis(a,c))`` to a triplet's margin; it is kept as the ``(C, C)`` offset
    ``β·dis`` subtracted from ``D*`` (:func:`~sentiment_metric.functional.weighted_distances`).
    ``theta`` (a float64 ``(C, C)`` buffer) and ``level`` (int64) are the buffers the maths
    reads.
    """

    relations: LabelRelations
    level: Tensor
    theta: Tensor
    validate: bool
    _weighting: str | Tensor
    _skip_level: SkipLevel
    _margins: tuple[float, float]
    _wheel_margin: float
    _offset: Tensor | None

    def _configure(
        self,
        class_names: Sequence[str] | None,
        relations: LabelRelations | None,
        wheel: EmotionWheel | None,
        margins: Sequence[float],
        weighting: str | Tensor,
        wheel_margin: float,
    ) -> None:
        self.relations = resolve_relations(class_names, relations, wheel)
        self.margins = margins  # the setter checks it
        module = cast(torch.nn.Module, self)  # the classes that use this are nn.Modules
        module.register_buffer("level", self.relations.level.clone(), persistent=False)
        self.weighting = weighting  # the setter checks it and builds the buffer theta
        self.wheel_margin = wheel_margin  # the setter checks it and builds the offset

    @property
    def weighting(self) -> str | Tensor:
        """``"inverse_wheel"``, ``"none"`` or a ``(C, C)`` tensor; setting it rebuilds ``θ``
        (the float64 buffer ``theta``, on the device it was on)."""
        return self._weighting

    @weighting.setter
    def weighting(self, value: str | Tensor) -> None:
        if not isinstance(value, Tensor):
            check_choice(value, WEIGHTINGS, "weighting")
        # float64 keeps 1/dis exact until it meets the distances' dtype
        theta = theta_matrix(self.relations.dis, value, dtype=torch.float64)
        module = cast(torch.nn.Module, self)
        old = getattr(module, "theta", None)
        device = old.device if isinstance(old, Tensor) else theta.device
        module.register_buffer("theta", theta.to(device), persistent=False)
        self._weighting = value
        distance = getattr(self, "distance", None)
        if distance is not None:  # set after construction: the combination is checked again
            self._check_distance(distance)

    @property
    def skip_level(self) -> SkipLevel:
        """``"ignore"`` or ``"sum_margins"`` (checked when set)."""
        return self._skip_level

    @skip_level.setter
    def skip_level(self, value: SkipLevel) -> None:
        self._skip_level = cast(SkipLevel, check_choice(value, SKIP_LEVEL_OPTIONS, "skip_level"))

    def _check_distance(self, distance: Any) -> None:
        """Refuse a combination that could make the loss vacuous: an unbounded similarity
        (not normalised) weighted by a non-uniform ``θ``, where ``θ·(1 - S)`` can reward
        collapsed embeddings of a large norm."""
        bounded = bool(getattr(distance, "normalize_embeddings", True))
        uniform = bool((self.theta == self.theta.reshape(-1)[0]).all())
        if distance.is_inverted and not bounded and not uniform:
            raise SentimentMetricError(
                f"distance={type(distance).__name__}(normalize_embeddings=False) is an "
                f"unbounded similarity: with weighting={self._weighting_repr()} identical "
                "embeddings of a large norm would satisfy the constraints. Use "
                "weighting='none', a normalised similarity (CosineSimilarity()) or a distance "
                "(LpDistance(power=2), the default)"
            )

    @property
    def wheel_margin(self) -> float:
        """``β``: extra margin per wheel step between a triplet's farther and closer class."""
        return self._wheel_margin

    @wheel_margin.setter
    def wheel_margin(self, value: float) -> None:
        self._wheel_margin = check_nonnegative_float(value, "wheel_margin", maximum=MAX_MAGNITUDE)
        dis = self.relations.dis.to(torch.float64)
        self._offset = self._wheel_margin * dis if self._wheel_margin > 0 else None

    def _offset_like(self, mat: Tensor) -> Tensor | None:
        """The wheel-margin offset on ``mat``'s device and dtype (``None`` when ``β = 0``)."""
        off = self._offset
        return None if off is None else off.to(device=mat.device, dtype=mat.dtype)

    @property
    def margins(self) -> tuple[float, float]:
        """``(α1, α2)``: the relative and the negative margin."""
        return self._margins

    @margins.setter
    def margins(self, value: Sequence[float]) -> None:
        self._margins = check_margins(value)

    @property
    def relative_margin(self) -> float:
        """``α1``, the margin between positives and relatives (``margins[0]``)."""
        return self._margins[0]

    @relative_margin.setter
    def relative_margin(self, value: float) -> None:
        self.margins = (value, self._margins[1])

    @property
    def negative_margin(self) -> float:
        """``α2``, the margin between relatives and negatives (``margins[1]``)."""
        return self._margins[1]

    @negative_margin.setter
    def negative_margin(self, value: float) -> None:
        self.margins = (self._margins[0], value)

    def _check_batch(
        self, embeddings: Any, labels: Any, ref_emb: Any, ref_labels: Any
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """The embeddings, labels (as int64) and reference set a loss or miner is called with."""
        return check_metric_inputs(
            embeddings,
            labels,
            self.relations.num_classes,
            ref_emb,
            ref_labels,
            validate=self.validate,
        )

    def _weighting_repr(self) -> str:
        w = self.weighting
        return f"tensor{tuple(w.shape)}" if isinstance(w, Tensor) else repr(w)
