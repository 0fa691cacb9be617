"""Argument and tensor checks shared by every public entry point.

Every check raises :class:`SentimentMetricError` (a :class:`ValueError`) with a message that
names the argument, says what was expected and shows what came. Checks that read tensor
*values* (finiteness, label range) force a device synchronisation; callers skip them when
constructed with ``validate=False``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .errors import SentimentMetricError

__all__ = [
    "check_choice",
    "check_embeddings",
    "check_finite",
    "check_labels",
    "check_margins",
    "check_metric_batch",
    "check_nonnegative_float",
    "check_positive_int",
    "check_shape",
    "check_tensor",
]


def _fmt_shape(shape: Iterable[Any]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def check_tensor(x: Any, name: str) -> torch.Tensor:
    """Require a :class:`torch.Tensor`; return it."""
    if not isinstance(x, torch.Tensor):
        raise SentimentMetricError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_shape(x: Any, expected: Sequence[int | str | None], name: str) -> torch.Tensor:
    """Check the number of dimensions and the fixed sizes of a tensor.

    Args:
        x: the tensor.
        expected: one entry per dimension: an ``int`` that must match, or a ``str``/``None``
            for a free size (the string is its name in the message, e.g. ``"B"``).
        name: the argument's name, for the message.
    """
    x = check_tensor(x, name)
    shown = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
    if x.dim() != len(expected):
        raise SentimentMetricError(
            f"{name} must have shape {shown} ({len(expected)}-D), got shape "
            f"{_fmt_shape(x.shape)} ({x.dim()}-D)"
        )
    for i, (e, s) in enumerate(zip(expected, x.shape)):
        if isinstance(e, int) and e != s:
            raise SentimentMetricError(
                f"{name} must have shape {shown}, got {_fmt_shape(x.shape)} (dimension {i} "
                f"is {s}, expected {e})"
            )
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or Inf (reads values: a GPU sync).

    One reduction: a finite sum proves there is no NaN or Inf (either would propagate into
    it); only a non-finite sum (or an overflow) pays for the element-wise check.
    """
    if not x.is_floating_point() or x.numel() == 0:
        return
    if bool(torch.isfinite(x.detach().sum())):
        return
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise SentimentMetricError(
            f"{name} must be finite, got {n_nan} NaN and {n_inf} Inf value(s)"
        )


def check_embeddings(
    x: Any, name: str = "embeddings", *, validate: bool = True, allow_empty: bool = False
) -> torch.Tensor:
    """Check a ``(B, D)`` floating-point batch of embeddings."""
    x = check_shape(x, ("B", "D"), name)
    if not x.is_floating_point():
        raise SentimentMetricError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] == 0 and not allow_empty:
        raise SentimentMetricError(f"{name} is an empty batch (shape {_fmt_shape(x.shape)})")
    if x.shape[1] == 0:
        raise SentimentMetricError(f"{name} has embedding size 0 (shape {_fmt_shape(x.shape)})")
    if validate:
        check_finite(x, name)
    return x


def check_labels(
    labels: Any,
    num_classes: int | None,
    *,
    length: int | None = None,
    name: str = "labels",
    length_name: str = "embeddings",
    validate: bool = True,
) -> torch.Tensor:
    """Check a 1-D integer label tensor, its length and (if ``validate``) its range."""
    labels = check_tensor(labels, name)
    if labels.dim() != 1:
        raise SentimentMetricError(
            f"{name} must be 1-D of shape (B,), got shape {_fmt_shape(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise SentimentMetricError(
            f"{name} must hold integer class indices (torch.long), got dtype {labels.dtype}"
        )
    if length is not None and labels.shape[0] != length:
        raise SentimentMetricError(
            f"{name} has {labels.shape[0]} entries but {length_name} has {length} rows; "
            "they must match"
        )
    if validate and num_classes is not None and labels.numel() > 0:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise SentimentMetricError(
                f"{name} must lie in [0, {num_classes - 1}] for {num_classes} classes, "
                f"got values in [{lo}, {hi}]"
            )
    return labels


def check_metric_batch(
    embeddings: Any,
    labels: Any,
    num_classes: int,
    ref_emb: Any = None,
    ref_labels: Any = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    """Check what a PML loss or miner is called with: embeddings, labels and the reference set.

    ``embeddings`` ``(B, D)``, ``labels`` ``(B,)`` in ``[0, num_classes)``; ``ref_emb``
    ``(R, D)`` and ``ref_labels`` ``(R,)`` given together or not at all. Returns the embeddings.
    """
    embeddings = check_embeddings(embeddings, "embeddings", validate=validate)
    if labels is None:
        raise SentimentMetricError(
            "labels are required: the sentiment constraints read the label levels"
        )
    check_labels(labels, num_classes, length=embeddings.shape[0], validate=validate)
    if ref_emb is None:
        if ref_labels is not None:
            raise SentimentMetricError("ref_labels was given without ref_emb; give both or neither")
        return embeddings
    if ref_labels is None:
        raise SentimentMetricError("ref_emb was given without ref_labels; give both or neither")
    ref_emb = check_embeddings(ref_emb, "ref_emb", validate=validate)
    if ref_emb.shape[1] != embeddings.shape[1]:
        raise SentimentMetricError(
            f"ref_emb has embedding size {ref_emb.shape[1]} but embeddings has "
            f"{embeddings.shape[1]}; they must match"
        )
    check_labels(
        ref_labels,
        num_classes,
        length=ref_emb.shape[0],
        name="ref_labels",
        length_name="ref_emb",
        validate=validate,
    )
    return embeddings


def check_choice(value: Any, allowed: Sequence[str], name: str) -> str:
    """Check that ``value`` is one of the ``allowed`` strings."""
    if not isinstance(value, str) or value not in allowed:
        raise SentimentMetricError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Check an ``int`` (not bool) that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SentimentMetricError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_nonnegative_float(value: Any, name: str) -> float:
    """Check a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SentimentMetricError(f"{name} must be a number >= 0, got {value!r}")
    value = float(value)
    if not (value >= 0.0) or value == float("inf"):
        raise SentimentMetricError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_margins(margins: Any, name: str = "margins") -> tuple[float, float]:
    """Check the two margins ``(alpha1, alpha2)`` of the sentiment constraints."""
    if isinstance(margins, (str, bytes)) or not isinstance(margins, Sequence):
        raise SentimentMetricError(
            f"{name} must be a pair (alpha1, alpha2) of numbers >= 0, got {margins!r}"
        )
    if len(margins) != 2:
        raise SentimentMetricError(
            f"{name} must have 2 values (alpha1 for relatives, alpha2 for negatives), "
            f"got {len(margins)}: {tuple(margins)!r}"
        )
    a1 = check_nonnegative_float(margins[0], f"{name}[0]")
    a2 = check_nonnegative_float(margins[1], f"{name}[1]")
    return a1, a2
