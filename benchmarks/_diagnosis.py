"""Why the polarity level adds little (issue 17, item 2): what the two constraint levels do
during training.

:func:`constraint_diagnosis` reads one training batch of a sentiment-constraints arm: for each
level (relative: same emotion < same polarity; negative: same polarity < opposite polarity) the
share of its ranked triplets with a non-zero hinge, its share of the gradient reaching the
embeddings (the norms of each reduced sub-loss's gradient), and the mean squared distance
between L2-normalised embeddings of the pairs at each level. The study records it on the first
batch of every epoch and keeps the curve.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import sentiment_metric as sm


def constraint_diagnosis(
    loss: sm.SentimentConstraintLoss, embeddings: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """The two levels' activity on one batch (see the module docstring)."""
    x = embeddings.detach().double().requires_grad_(True)
    rel = loss.relations
    level = rel.level
    dist = sm.functional.squared_euclidean(F.normalize(x, dim=1))
    offset = None if loss.wheel_margin == 0 else loss.wheel_margin * rel.dis.double()
    sums = sm.functional.constraint_sums(
        dist, labels, level, theta=loss.theta.double(), margins=loss.margins, offset=offset,
    )  # fmt: skip
    relative, negative = sums.reduce("avg_nonzero")
    grads = []
    for part in (relative, negative):
        if part.requires_grad:
            (g,) = torch.autograd.grad(part, x, retain_graph=True, allow_unused=True)
            grads.append(0.0 if g is None else float(g.norm()))
        else:
            grads.append(0.0)
    pair_level = level[labels][:, labels]
    off_diag = ~torch.eye(len(labels), dtype=torch.bool)
    d = dist.detach()
    out: dict[str, Any] = {
        "relative_active": float(sums.relative_nonzero / sums.relative_count.clamp(min=1)),
        "negative_active": float(sums.negative_nonzero / sums.negative_count.clamp(min=1)),
        "relative_grad_share": grads[0] / max(grads[0] + grads[1], 1e-300),
    }
    for lv, name in ((0, "same"), (1, "same_group"), (2, "other_group")):
        mask = (pair_level == lv) & off_diag
        out[f"distance_{name}"] = float(d[mask].mean()) if bool(mask.any()) else float("nan")
    return out
