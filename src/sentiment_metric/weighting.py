"""The distance weights ``θ`` of the sentiment constraints, read from the label relations.

``D*(i, j) = θ(y_i, y_j) · D(i, j)`` with ``θ = 1 / dis`` (the paper's ``"inverse_wheel"``),
``θ = 1`` (``"none"``) or a given ``(C, C)`` tensor. The rule lives here, in the label layer
beside :mod:`sentiment_metric.wheel` (imports only ``errors`` and ``_checks``):
:meth:`LabelRelations.weights <sentiment_metric.LabelRelations.weights>`, the loss and the
miner read it; the maths in
:mod:`sentiment_metric.functional` takes the resulting ``(C, C)`` tensor as ``theta``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ._checks import MAX_MAGNITUDE
from .errors import SentimentMetricError

__all__ = ["WEIGHTINGS", "Weighting", "theta_matrix"]

Weighting = Literal["inverse_wheel", "none"]
WEIGHTINGS: tuple[str, ...] = ("inverse_wheel", "none")
"""The named values ``weighting`` accepts (a ``(C, C)`` tensor is accepted too)."""


def theta_matrix(
    dis: Tensor, weighting: str | Tensor = "inverse_wheel", *, dtype: torch.dtype | None = None
) -> Tensor:
    """The ``(C, C)`` distance weights ``θ`` of ``D*(i, j) = θ(y_i, y_j) · D(i, j)``.

    .. math::

        \\theta = 1 / \\mathrm{dis} \\ (\\texttt{"inverse_wheel"}, \\text{the paper}), \\qquad
        \\theta = 1 \\ (\\texttt{"none"}), \\qquad \\text{or a given } (C, C) \\text{ tensor.}

    Args:
        dis: ``(C, C)`` wheel distances (``LabelRelations.dis``), ``>= 1``.
        weighting: ``"inverse_wheel"``, ``"none"`` or a ``(C, C)`` tensor of weights in
            ``(0, 1e12]`` (:data:`~sentiment_metric._checks.MAX_MAGNITUDE`).
        dtype: the result's dtype (default: torch's default dtype); the loss and the miner use
            ``float64``, which keeps ``1/dis`` exact before it meets the distances' dtype.

    Returns:
        ``(C, C)`` on the CPU.

    Raises:
        SentimentMetricError: an unknown name, or a tensor of the wrong shape or with a value
            outside ``(0, 1e12]``.

    Example:
        >>> import torch
        >>> theta_matrix(torch.tensor([[1.0, 2.0], [2.0, 1.0]])).tolist()
        [[1.0, 0.5], [0.5, 1.0]]
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if isinstance(weighting, Tensor):
        c = dis.shape[0]
        if tuple(weighting.shape) != (c, c):
            raise SentimentMetricError(
                f"weighting as a tensor must have shape ({c}, {c}), got {tuple(weighting.shape)}"
            )
        w = weighting.detach().to(device="cpu", dtype=torch.float64)
        if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
            raise SentimentMetricError("weighting must be finite and > 0 everywhere")
        if bool((w > MAX_MAGNITUDE).any()):
            raise SentimentMetricError(
                f"weighting must be at most {MAX_MAGNITUDE:g} everywhere, got a largest weight "
                f"of {float(w.max()):.3g} (θ·D would overflow: only the ratios between the "
                "weights and the margins matter, so scale them down)"
            )
        return w.to(dtype)
    if weighting == "inverse_wheel":
        return 1.0 / dis.detach().to(device="cpu", dtype=dtype)
    if weighting == "none":
        return torch.ones(dis.shape, dtype=dtype)
    raise SentimentMetricError(
        f"weighting must be one of {', '.join(repr(w) for w in WEIGHTINGS)} or a (C, C) "
        f"tensor; got {weighting!r}"
    )
