"""Classification measures read on the wheel: polarity accuracy, the wheel distance and the
group-miss share of errors, wheel order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..._checks import check_class_names, check_labels, check_shape
from ...errors import SentimentMetricError
from .ranking import check_square

__all__ = [
    "group_miss_share_of_errors",
    "mean_wheel_distance_of_errors",
    "polarity_accuracy",
    "wheel_order",
]


def wheel_order(
    class_names: Sequence[str] | None,
    groups: torch.Tensor,
    wheel_index: Callable[[str], int] | None = None,
) -> list[int]:
    """Class indices in wheel order, for confusion matrices.

    With ``wheel_index`` (a name -> position function, e.g. ``EmotionWheel.index``) and class
    names all on the wheel, the classes are sorted by their position around the wheel.
    Otherwise they are sorted by polarity group, then by label.

    Args:
        class_names: ``C`` names in label order, or ``None``.
        groups: ``(C,)`` group (polarity) id of each class.
        wheel_index: the wheel's name -> position map, or ``None``.

    Returns:
        A permutation of ``range(C)``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> names = ["amusement", "anger", "awe", "contentment"]
        >>> sm.functional.wheel_order(names, torch.tensor([0, 1, 0, 0]), sm.MIKELS_WHEEL.index)
        [0, 3, 2, 1]
    """
    c = check_shape(groups, ("C",), "groups").shape[0]
    if class_names is not None:
        if (
            isinstance(class_names, Sequence)
            and not isinstance(class_names, (str, bytes))
            and len(class_names) != c
        ):
            raise SentimentMetricError(
                f"groups has {c} entries but class_names has {len(class_names)}; give one "
                "group per class"
            )
        class_names = check_class_names(class_names, c)
    if class_names is not None and wheel_index is not None:
        try:
            pos = [wheel_index(n) for n in class_names]
        except (SentimentMetricError, KeyError):
            pos = None
        if pos is not None:
            return sorted(range(c), key=lambda i: pos[i])
    g = groups.tolist()
    return sorted(range(c), key=lambda i: (g[i], i))


def polarity_accuracy(
    preds: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *, validate: bool = True
) -> float:
    """Share of predictions on the right side of the wheel (the label's polarity).

    .. math::

        \\mathrm{acc}_{pol} = \\frac{1}{B} \\sum_{i=1}^{B} [g(\\hat y_i) = g(y_i)]

    Args:
        preds: ``(B,)`` predicted class indices.
        labels: ``(B,)`` true class indices.
        groups: ``(C,)`` polarity id of each class.
        validate: check that ``preds`` and ``labels`` lie in ``[0, C)`` (reads them).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1, 1])
        >>> sm.functional.polarity_accuracy(torch.tensor([1, 2, 3]), torch.tensor([0, 0, 3]), g)
        0.6666666666666666
    """
    groups = check_shape(groups, ("C",), "groups")
    preds, labels = _checked_predictions(preds, labels, groups.shape[0], validate)
    groups = groups.to(preds.device)
    return float((groups[preds] == groups[labels]).double().mean())


def _checked_predictions(
    preds: torch.Tensor, labels: torch.Tensor, c: int, validate: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``preds`` and ``labels``: non-empty ``(B,)`` class indices (in ``[0, c)`` if
    ``validate``), as int64."""
    preds = check_labels(preds, c, name="preds", validate=validate)
    labels = check_labels(
        labels, c, length=preds.shape[0], length_name="preds", validate=validate
    ).to(preds.device)
    if preds.shape[0] == 0:
        raise SentimentMetricError("preds is empty: no prediction to score")
    return preds, labels


def mean_wheel_distance_of_errors(
    preds: torch.Tensor, labels: torch.Tensor, dis: torch.Tensor, *, validate: bool = True
) -> float | None:
    """Mean wheel distance ``dis − 1`` (steps) between wrong predictions and their labels.

    .. math::

        \\bar d_{err} = \\frac{1}{|E|} \\sum_{i \\in E} (\\mathrm{dis}(\\hat y_i, y_i) - 1),
        \\qquad E = \\{i : \\hat y_i \\ne y_i\\}

    This is the "average hierarchical distance of mistakes" of Bertinetto et al., "Making
    Better Mistakes" (CVPR 2020), with the wheel as the hierarchy.

    Args:
        preds: ``(B,)`` predicted class indices.
        labels: ``(B,)`` true class indices.
        dis: ``(C, C)`` wheel distances.
        validate: check that ``preds`` and ``labels`` lie in ``[0, C)`` (reads them).

    Returns:
        The mean, or ``None`` when there is no mistake.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(["amusement", "awe", "fear"])
        >>> sm.functional.mean_wheel_distance_of_errors(
        ...     torch.tensor([1, 2, 0]), torch.tensor([0, 0, 0]), rel.dis)
        3.0
    """
    preds, labels = _checked_predictions(preds, labels, check_square(dis, "dis"), validate)
    wrong = preds != labels
    if not bool(wrong.any()):
        return None
    d = dis.to(device=preds.device, dtype=torch.float64)[preds[wrong], labels[wrong]] - 1.0
    return float(d.mean())


def group_miss_share_of_errors(
    preds: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *, validate: bool = True
) -> float | None:
    """Among the wrong predictions, the share whose predicted class is in another group.

    The classification twin of
    :func:`~sentiment_metric.functional.group_miss_share_at_k`: 0 when every mistake keeps the
    label's polarity, 1 when every one crosses it. Lower is better.

    .. math::

        \\mathrm{GMS}_{err} = \\frac{1}{|E|} \\sum_{i \\in E} [g(\\hat y_i) \\ne g(y_i)],
        \\qquad E = \\{i : \\hat y_i \\ne y_i\\}

    Args:
        preds: ``(B,)`` predicted class indices.
        labels: ``(B,)`` true class indices.
        groups: ``(C,)`` group (polarity) id of each class.
        validate: check that ``preds`` and ``labels`` lie in ``[0, C)`` (reads them).

    Returns:
        The share, or ``None`` when there is no mistake.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> g = torch.tensor([0, 0, 1])
        >>> sm.functional.group_miss_share_of_errors(
        ...     torch.tensor([1, 2, 0, 2]), torch.tensor([0, 0, 0, 1]), g)
        0.6666666666666666
    """
    groups = check_shape(groups, ("C",), "groups")
    preds, labels = _checked_predictions(preds, labels, groups.shape[0], validate)
    wrong = preds != labels
    if not bool(wrong.any()):
        return None
    g = groups.to(preds.device)
    return float((g[preds[wrong]] != g[labels[wrong]]).double().mean())
