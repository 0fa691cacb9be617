"""The input checks the constraint, triplet and mining functions share (one home each).

Shapes and dtypes are always checked (no values read); label ranges only with ``validate``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_labels, check_shape, check_values_readable
from ..errors import SentimentMetricError

__all__ = ["check_dist", "check_dist_labels", "check_level", "check_tables"]


def check_level(level: Tensor) -> Tensor:
    """A square ``(C, C)`` integer level matrix (shape and dtype only: no values read)."""
    level = check_shape(level, ("C", "C"), "level")
    if level.is_floating_point() or level.dtype == torch.bool or level.shape[0] != level.shape[1]:
        raise SentimentMetricError(
            f"level must be a square (C, C) integer matrix, got shape {tuple(level.shape)} "
            f"and dtype {level.dtype}"
        )
    return level


def check_tables(theta: Tensor | None, offset: Tensor | None) -> int | None:
    """``theta`` and ``offset`` square ``(C, C)`` of one ``C`` (shapes only); that ``C``."""
    c = None
    for name, t in (("theta", theta), ("offset", offset)):
        if t is None:
            continue
        t = check_shape(t, ("C", "C"), name)
        if t.shape[0] != t.shape[1] or (c is not None and t.shape[0] != c):
            raise SentimentMetricError(
                f"{name} must be a square (C, C) table like the others, got {tuple(t.shape)}"
            )
        c = t.shape[0]
    return c


def check_dist(dist: Any) -> Tensor:
    """A 2-D floating-point ``(B, R)`` matrix with values (shape, dtype and device only)."""
    dist = check_shape(dist, ("B", "R"), "dist")
    if not dist.is_floating_point():
        raise SentimentMetricError(f"dist must be a floating-point tensor, got dtype {dist.dtype}")
    check_values_readable(dist, "dist")
    return dist


def _class_indices(
    labels: Any,
    num_classes: int | None,
    classes_from: str | None,
    validate: bool,
    **kw: Any,
) -> Tensor:
    """:func:`check_labels`; an out-of-range error also names the table ``C`` was read from."""
    if classes_from is None or num_classes is None or not validate:
        return check_labels(labels, num_classes, validate=validate, **kw)
    labels = check_labels(labels, None, validate=True, **kw)  # shape, dtype, length
    try:
        return check_labels(labels, num_classes, name=kw.get("name", "labels"))
    except SentimentMetricError as err:
        raise SentimentMetricError(
            f"{err}: the number of classes C = {num_classes} is read from {classes_from}, of "
            f"shape ({num_classes}, {num_classes})"
        ) from None


def check_dist_labels(
    dist: Tensor,
    labels: Any,
    ref_labels: Any,
    num_classes: int | None,
    *,
    validate: bool,
    classes_from: str | None = None,
) -> tuple[Tensor, Tensor | None]:
    """The labels of the rows and columns of a checked ``(B, R)`` ``dist``, as int64.

    ``labels`` ``(B,)``; ``ref_labels`` ``(R,)`` (moved to the labels' device), or ``None``
    when the reference set is the batch itself (then ``dist`` must be square). With
    ``validate`` the labels lie in ``[0, num_classes)``; ``classes_from`` names the table
    whose shape gave ``num_classes`` (e.g. ``"theta"``), for the message.
    """
    b, r = dist.shape
    labels = _class_indices(
        labels, num_classes, classes_from, validate, length=b, length_name="dist"
    )
    if ref_labels is None:
        if b != r:
            raise SentimentMetricError(
                f"dist has shape {tuple(dist.shape)}: without ref_labels the reference set is "
                "the batch itself and dist must be square (B, B)"
            )
        return labels, None
    ref_labels = _class_indices(
        ref_labels, num_classes, classes_from, validate,
        length=r, name="ref_labels", length_name="dist's columns",
    )  # fmt: skip
    return labels, ref_labels.to(labels.device)
