"""A classification report with the wheel in view: plain Python types, JSON-ready."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .._checks import check_finite, check_labels
from ..errors import SentimentMetricError
from ..functional.retrieval import (
    group_miss_share_of_errors,
    mean_wheel_distance_of_errors,
    polarity_accuracy,
    wheel_order,
)
from ..wheel import MIKELS_WHEEL, resolve_relations

if TYPE_CHECKING:
    from ..wheel import EmotionWheel, LabelRelations

__all__ = ["classification_report"]


def classification_report(
    logits_or_preds: torch.Tensor | np.ndarray | Sequence[int],
    labels: torch.Tensor | np.ndarray | Sequence[int],
    class_names: Sequence[str] | None = None,
    relations: LabelRelations | None = None,
    wheel: EmotionWheel | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Classification measures with the wheel in view; plain Python types (JSON-ready).

    Top-1 accuracy, polarity accuracy (the prediction on the right side of the wheel),
    per-emotion precision / recall / F1 / support (scikit-learn), the confusion matrix with
    the classes in wheel order, and two severities of the mistakes: their mean wheel distance
    (Bertinetto et al.'s "average hierarchical distance of mistakes", CVPR 2020) and the share
    of them across polarity:

    .. math::

        \\mathrm{acc} = \\frac{1}{B}\\sum_i [\\hat y_i = y_i], \\quad
        \\mathrm{acc}_{pol} = \\frac{1}{B}\\sum_i [g(\\hat y_i) = g(y_i)], \\quad
        \\bar d_{err} = \\frac{1}{|E|}\\sum_{i \\in E} (\\mathrm{dis}(\\hat y_i, y_i) - 1),
        \\quad
        \\mathrm{GMS}_{err} = \\frac{1}{|E|}\\sum_{i \\in E} [g(\\hat y_i) \\ne g(y_i)]

    with ``E`` the mistakes. The wheel order sorts the classes by their place on ``wheel``
    (default Mikels'); classes not on it are sorted by polarity, then label.

    Args:
        logits_or_preds: ``(B, C)`` logits/scores (argmax taken) or ``(B,)`` predicted labels.
        labels: ``(B,)`` true labels.
        class_names: the class names in label order (or give ``relations``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel (default Mikels').
        validate: check values (finite logits, labels in range).

    Returns:
        ``{"accuracy", "polarity_accuracy", "per_class": {name: {"precision", "recall",
        "f1", "support"}}, "macro_avg", "weighted_avg", "confusion_matrix"`` (rows: true,
        columns: predicted, both in ``confusion_order``), ``"confusion_order"`` (class names),
        ``"confusion_order_labels"`` (their label indices), ``"mean_wheel_distance_of_errors"``
        and ``"group_miss_share_of_errors"`` (both ``None`` without mistakes),
        ``"num_samples"}``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> names = ["amusement", "anger", "awe", "fear"]
        >>> rep = sm.classification_report(torch.tensor([0, 2, 2, 0]), torch.tensor([0, 0, 2, 3]),
        ...                                class_names=names)
        >>> rep["accuracy"], rep["polarity_accuracy"], rep["mean_wheel_distance_of_errors"]
        (0.5, 0.75, 3.0)
        >>> rep["group_miss_share_of_errors"]  # fear -> amusement crosses; amusement -> awe not
        0.5
        >>> rep["confusion_order"]
        ['amusement', 'awe', 'fear', 'anger']
    """
    rel = resolve_relations(class_names, relations, wheel)
    c = rel.num_classes
    x = _to_tensor(logits_or_preds, "logits_or_preds")
    y = check_labels(_to_tensor(labels, "labels"), c, validate=validate)
    preds = _predictions(x, c, validate)
    if preds.shape[0] != y.shape[0]:
        raise SentimentMetricError(
            f"logits_or_preds has {preds.shape[0]} rows but labels has {y.shape[0]}; they must "
            "match"
        )
    if y.shape[0] == 0:
        raise SentimentMetricError("labels is empty: nothing to report")
    preds = preds.detach().cpu().to(torch.int64)
    y = y.detach().cpu().to(torch.int64)
    names = list(rel.class_names) if rel.class_names is not None else [str(i) for i in range(c)]
    order = wheel_order(rel.class_names, rel.groups, (wheel or MIKELS_WHEEL).index)
    mwd = mean_wheel_distance_of_errors(preds, y, rel.dis, validate=False)  # checked above
    return {
        "accuracy": float((preds == y).double().mean()),
        "polarity_accuracy": polarity_accuracy(preds, y, rel.groups, validate=False),
        **_per_class_scores(preds.numpy(), y.numpy(), names),
        "confusion_matrix": [
            [int(v) for v in row]
            for row in confusion_matrix(y.numpy(), preds.numpy(), labels=order).tolist()
        ],
        "confusion_order": [names[i] for i in order],
        "confusion_order_labels": [int(i) for i in order],
        "mean_wheel_distance_of_errors": None if mwd is None else float(mwd),
        "group_miss_share_of_errors": group_miss_share_of_errors(
            preds, y, rel.groups, validate=False
        ),
        "num_samples": int(y.shape[0]),
    }


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise SentimentMetricError(
            f"{name} must be a tensor or array, got {type(x).__name__}"
        ) from err


def _predictions(x: torch.Tensor, c: int, validate: bool) -> torch.Tensor:
    """``(B,)`` predicted labels from ``(B, C)`` logits (argmax) or ``(B,)`` labels."""
    if x.dim() == 1:
        return check_labels(x, c, name="logits_or_preds", validate=validate)
    if x.dim() != 2:
        raise SentimentMetricError(
            f"logits_or_preds must be (B, C) logits or (B,) predictions, got shape {tuple(x.shape)}"
        )
    if x.shape[1] != c:
        raise SentimentMetricError(
            f"logits_or_preds as logits must have shape (B, {c}) for {c} classes, got "
            f"{tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise SentimentMetricError(
            f"logits_or_preds as (B, C) logits must be floating point, got {x.dtype}"
        )
    if validate:
        check_finite(x, "logits_or_preds")
    return x.argmax(dim=1)


def _per_class_scores(p_np: np.ndarray, y_np: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per-class precision / recall / F1 / support and their macro and weighted averages."""
    all_labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y_np, p_np, labels=all_labels, zero_division=0)
    per_class = {
        name: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, name in enumerate(names)
    }
    out: dict[str, Any] = {"per_class": per_class}
    for kind in ("macro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(
            y_np, p_np, labels=all_labels, average=kind, zero_division=0
        )
        out[f"{kind}_avg"] = {"precision": float(pa), "recall": float(ra), "f1": float(fa)}
    return out
