"""Argument and tensor checks shared by every public entry point.

Every check raises :class:`SentimentMetricError` (a :class:`ValueError`) with a message that
names the argument, says what was expected and shows what came. Checks that read tensor
*values* (finiteness, label range) force a device synchronisation; callers skip them when
constructed with ``validate=False``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch

from .errors import SentimentMetricError

__all__ = [
    "MAX_MAGNITUDE",
    "MetricBatch",
    "check_choice",
    "check_class_names",
    "check_embeddings",
    "check_finite",
    "check_group_names",
    "check_groups",
    "check_labels",
    "check_margins",
    "check_metric_inputs",
    "check_nonnegative_float",
    "check_norms",
    "check_positive_int",
    "check_seed",
    "check_shape",
    "check_tensor",
    "check_values_readable",
    "groups_of_level",
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
    check_values_readable(x, name)
    if not x.is_floating_point() or x.numel() == 0:
        return
    if math.isfinite(float(x.detach().sum())):  # two ops: the sum and one read
        return
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise SentimentMetricError(
            f"{name} must be finite, got {n_nan} NaN and {n_inf} Inf value(s)"
        )


def check_embeddings(
    x: Any,
    name: str = "embeddings",
    *,
    validate: bool = True,
    allow_empty: bool = False,
    distances: bool = False,
) -> torch.Tensor:
    """Check a ``(B, D)`` floating-point batch of embeddings; with ``validate`` that they are
    finite and, for a caller that forms squared distances from them (``distances``: the loss,
    the miner, the kNN), that no row is too large for them (:func:`check_norms`)."""
    x = check_shape(x, ("B", "D"), name)
    if not x.is_floating_point():
        raise SentimentMetricError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_values_readable(x, name)
    if x.shape[0] == 0 and not allow_empty:
        raise SentimentMetricError(f"{name} is an empty batch (shape {_fmt_shape(x.shape)})")
    if x.shape[1] == 0:
        raise SentimentMetricError(f"{name} has embedding size 0 (shape {_fmt_shape(x.shape)})")
    if validate:
        (check_norms if distances else check_finite)(x, name)
    return x


def check_norms(x: torch.Tensor, name: str) -> None:
    """Raise if a row of the ``(B, D)`` ``x`` holds NaN or Inf, or is too large for the
    distances: its squared norm past a quarter of the largest value of the dtype the maths
    runs in (float32 for float16/bfloat16), where ``‖x_i‖² + ‖x_j‖² - 2 x_i·x_j`` or the
    normalisation would overflow and the loss, miner and measures would silently change (reads
    values: a GPU sync).

    One reduction and one read (the batch's norm bounds every row's); only a batch past the
    bound pays for the row-by-row check.
    """
    check_values_readable(x, name)
    if x.numel() == 0:
        return
    dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    limit = math.sqrt(torch.finfo(dtype).max) / 2.0
    if float(torch.linalg.vector_norm(x.detach(), dtype=dtype)) <= limit:  # NaN: not <=
        return
    check_finite(x, name)
    rows = torch.linalg.vector_norm(x.detach(), dim=1, dtype=torch.float64)
    if bool((rows > limit).any()):
        i = int((rows > limit).nonzero()[0, 0])
        raise SentimentMetricError(
            f"{name} is too large for {dtype}: row {i} has norm {float(rows[i]):.3g} (at most "
            f"{limit:.3g}, so that squared distances and the normalisation do not overflow); "
            "scale the embeddings down"
        )


def check_values_readable(x: torch.Tensor, name: str) -> None:
    """Refuse a tensor without values (on the ``meta`` device): every check that reads values,
    and the maths, would fail on it with a raw torch error."""
    if x.is_meta:
        raise SentimentMetricError(
            f"{name} is on the meta device (shape {_fmt_shape(x.shape)}, no values); "
            "move it to a real device (cpu, cuda) first"
        )


def check_labels(
    labels: Any,
    num_classes: int | None,
    *,
    length: int | None = None,
    name: str = "labels",
    length_name: str = "embeddings",
    validate: bool = True,
) -> torch.Tensor:
    """Check 1-D class labels, their length and (if ``validate``) their range; return them as
    ``torch.int64``.

    Every integer dtype is accepted and read as class indices (``uint8`` never as a boolean
    mask), and so are floating-point labels that hold whole numbers (as PML accepts);
    ``bool`` and complex labels, and (when ``validate``) fractional or non-finite floats, are
    refused. Callers must use the returned tensor: it is the input itself when that is already
    ``int64``, else a converted copy.

    Example:
        >>> check_labels(torch.tensor([0, 2, 1], dtype=torch.uint8), 3)
        tensor([0, 2, 1])
        >>> check_labels(torch.tensor([0.0, 2.0]), 3)
        tensor([0, 2])
    """
    labels = check_tensor(labels, name)
    if labels.dim() != 1:
        raise SentimentMetricError(
            f"{name} must be 1-D of shape (B,), got shape {_fmt_shape(labels.shape)}"
        )
    if labels.is_complex() or labels.dtype == torch.bool:
        raise SentimentMetricError(
            f"{name} must hold integer class indices (torch.long), got dtype {labels.dtype}"
        )
    check_values_readable(labels, name)
    if length is not None and labels.shape[0] != length:
        raise SentimentMetricError(
            f"{name} has {labels.shape[0]} entries but {length_name} has {length} rows; "
            "they must match"
        )
    if labels.is_floating_point():
        whole = torch.isfinite(labels) & (labels == labels.round())
        if validate and labels.numel() > 0 and not bool(whole.all()):
            bad = labels[~whole][:3].tolist()
            raise SentimentMetricError(
                f"{name} must hold integer class indices; got dtype {labels.dtype} with "
                f"non-integer values such as {bad}"
            )
        labels = labels.to(torch.int64)
    elif labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    if validate and num_classes is not None and labels.numel() > 0:
        lo, hi = (int(v) for v in torch.aminmax(labels))  # one reduction, two reads
        if lo < 0 or hi >= num_classes:
            raise SentimentMetricError(
                f"{name} must lie in [0, {num_classes - 1}] for {num_classes} classes, "
                f"got values in [{lo}, {hi}]"
            )
    return labels


class MetricBatch(NamedTuple):
    """What :func:`check_metric_inputs` returns: the checked batch, labels as ``int64``."""

    embeddings: torch.Tensor
    labels: torch.Tensor
    ref_emb: torch.Tensor | None
    ref_labels: torch.Tensor | None


def check_metric_inputs(
    embeddings: Any,
    labels: Any,
    num_classes: int,
    ref_emb: Any = None,
    ref_labels: Any = None,
    *,
    validate: bool = True,
) -> MetricBatch:
    """Check what a PML loss or miner is called with: embeddings, labels and the reference set.

    ``embeddings`` ``(B, D)``, ``labels`` ``(B,)`` in ``[0, num_classes)``; ``ref_emb``
    ``(R, D)`` and ``ref_labels`` ``(R,)`` given together or not at all. Returns all four,
    the labels as ``int64`` (see :func:`check_labels`).

    Example:
        >>> b = check_metric_inputs(torch.zeros(2, 3), torch.tensor([1, 0], dtype=torch.int8), 2)
        >>> b.labels.dtype, b.ref_emb
        (torch.int64, None)
    """
    embeddings = check_embeddings(embeddings, "embeddings", validate=validate, distances=True)
    if labels is None:
        raise SentimentMetricError(
            "labels are required: the sentiment constraints read the label levels"
        )
    labels = check_labels(labels, num_classes, length=embeddings.shape[0], validate=validate)
    if ref_emb is None:
        if ref_labels is not None:
            raise SentimentMetricError("ref_labels was given without ref_emb; give both or neither")
        return MetricBatch(embeddings, labels, None, None)
    if ref_labels is None:
        raise SentimentMetricError("ref_emb was given without ref_labels; give both or neither")
    ref_emb = check_embeddings(ref_emb, "ref_emb", validate=validate, distances=True)
    if ref_emb.shape[1] != embeddings.shape[1]:
        raise SentimentMetricError(
            f"ref_emb has embedding size {ref_emb.shape[1]} but embeddings has "
            f"{embeddings.shape[1]}; they must match"
        )
    ref_labels = check_labels(
        ref_labels,
        num_classes,
        length=ref_emb.shape[0],
        name="ref_labels",
        length_name="ref_emb",
        validate=validate,
    )
    return MetricBatch(embeddings, labels, ref_emb, ref_labels)


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


MAX_MAGNITUDE = 1e12
"""The largest margin, weight ``θ`` or wheel margin accepted: distances between L2-normalised
embeddings are at most 4, and past this the weighted distances, the miner's sorted frames and
the summed hinges overflow (float32, or float64 near its largest value)."""


def check_positive_float(value: Any, name: str) -> float:
    """Check a finite real number > 0 (a temperature, a scale)."""
    value = check_nonnegative_float(value, name)
    if value == 0.0:
        raise SentimentMetricError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative_float(value: Any, name: str, *, maximum: float | None = None) -> float:
    """Check a finite real number >= 0 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SentimentMetricError(f"{name} must be a number >= 0, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int past float's range
        value = float("inf")
    if not (value >= 0.0) or value == float("inf"):
        raise SentimentMetricError(f"{name} must be a finite number >= 0, got {value!r}")
    if maximum is not None and value > maximum:
        raise SentimentMetricError(
            f"{name} must be at most {maximum:g}, got {value!r} (it would dwarf every distance "
            "and overflow the sums)"
        )
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """Check a random seed: an ``int`` (not bool) in ``[0, 2**64)``, what
    :meth:`torch.Generator.manual_seed` takes (a larger one overflowed there, raw)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise SentimentMetricError(f"{name} must be an int in [0, 2**64), got {value!r}")
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
    a1 = check_nonnegative_float(margins[0], f"{name}[0]", maximum=MAX_MAGNITUDE)
    a2 = check_nonnegative_float(margins[1], f"{name}[1]", maximum=MAX_MAGNITUDE)
    return a1, a2


def check_class_names(class_names: Sequence[str] | None, c: int) -> tuple[str, ...] | None:
    """``C`` distinct class names (as strings), or ``None``."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise SentimentMetricError(
            f"class_names must be a sequence of {c} names, got {type(class_names).__name__} "
            f"{class_names!r}"
        )
    names = tuple(str(n) for n in class_names)
    if len(names) != c:
        raise SentimentMetricError(f"class_names has {len(names)} names but level is {c} x {c}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SentimentMetricError(f"class_names must be distinct, got {dup} more than once")
    return names


def groups_of_level(level: torch.Tensor) -> torch.Tensor:
    """Group index of each class read off ``level`` (classes at level <= 1 share a group,
    labelled by the first member, then made compact)."""
    first = (level <= 1).to(torch.int64).argmax(dim=1)
    return torch.unique(first, return_inverse=True)[1]


def check_groups(level: torch.Tensor, groups: Any) -> torch.Tensor:
    """``(C,)`` int64 groups that agree with ``level`` (1 inside a group, 2 across groups).

    Without ``groups`` they are read off ``level``, which must then be transitive (a
    partition); either way one rule holds: ``level[i, j] == 1`` exactly when ``i != j`` are in
    the same group, so the loss (which reads ``level``) and the polarity measures (which read
    ``groups``) never disagree.
    """
    c = level.shape[0]
    if groups is None:
        groups = groups_of_level(level)
        where = "level is not transitive (not a partition into groups)"
    else:
        if isinstance(groups, (str, bytes)):
            raise SentimentMetricError(f"groups must be {c} ints, got {groups!r}")
        if isinstance(groups, torch.Tensor) and (
            groups.is_floating_point() or groups.dtype == torch.bool
        ):
            raise SentimentMetricError(f"groups must be integers, got dtype {groups.dtype}")
        try:
            given = torch.as_tensor(groups).reshape(-1)
        except (TypeError, ValueError, RuntimeError, OverflowError) as err:
            raise SentimentMetricError(f"groups must be {c} ints, got {groups!r}") from err
        if given.is_floating_point() and not bool((given == given.round()).all()):
            raise SentimentMetricError(f"groups must hold whole numbers, got {given.tolist()}")
        if given.is_complex() or given.dtype == torch.bool:
            raise SentimentMetricError(f"groups must be integers, got dtype {given.dtype}")
        groups = given.to(torch.int64)
        if groups.numel() != c:
            raise SentimentMetricError(f"groups must have {c} entries, got {groups.numel()}")
        if bool((groups < 0).any()):
            raise SentimentMetricError(f"groups must be >= 0, got {groups.tolist()}")
        where = "groups contradict level"
    same = groups[:, None] == groups[None, :]
    expected = torch.where(same, 1, 2)
    expected.fill_diagonal_(0)
    if not torch.equal(expected, level):
        i, j = (int(v) for v in (expected != level).nonzero()[0])
        raise SentimentMetricError(
            f"{where}: classes {i} and {j} have level {int(level[i, j])} but groups "
            f"{int(groups[i])} and {int(groups[j])} (level must be 1 within a group, 2 across)"
        )
    return groups


def check_group_names(
    group_names: Sequence[str] | None, groups: torch.Tensor
) -> tuple[str, ...] | None:
    """Distinct names, one per group index ``0 .. max(groups)`` at least, or ``None``."""
    if group_names is None:
        return None
    if isinstance(group_names, (str, bytes)) or not isinstance(group_names, Sequence):
        raise SentimentMetricError(
            f"group_names must be a sequence of names, got {type(group_names).__name__} "
            f"{group_names!r}"
        )
    n = int(groups.max()) + 1
    names = tuple(str(g) for g in group_names)
    if len(names) < n:
        raise SentimentMetricError(
            f"group_names has {len(names)} name(s) but groups use indices 0 to {n - 1}; "
            "give one name per group index"
        )
    if len(set(names)) != len(names):
        raise SentimentMetricError(f"group_names must be distinct, got {list(names)}")
    return names
