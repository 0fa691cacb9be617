"""What ``sentiment-metric train`` tells a newcomer: the cost of the defaults on a CPU, and a
model that has not learned yet.

The trainer's defaults are the paper's fine-tuning setting (GoogLeNet at 224 px, batch 128),
sized for a GPU. :func:`cpu_cost_notice` measures what one step of them costs on this CPU
(one forward and backward pass of a few images, scaled to the batch) and suggests the small
setting; :func:`not_learned_note` reads the test metrics for a model that predicts one class
for everything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping
from typing import Any

import torch

from .build import build_model
from .config import TrainConfig
from .distributed import resolve_device
from .evaluate import plural

__all__ = [
    "CPU_SUGGESTION",
    "cpu_cost_notice",
    "cpu_notice_due",
    "not_learned_note",
    "seconds_per_step",
]

CPU_SUGGESTION = "--backbone small --image-size 64"
"""The options suggested for a first run on a CPU (the demo's backbone and size)."""

_PROBE_IMAGES = 2
"""Images in the timed forward and backward pass of :func:`seconds_per_step`."""


def seconds_per_step(config: TrainConfig, num_classes: int = 8) -> float:
    """The measured seconds of one training step of ``config``'s model on the CPU.

    Times one forward and backward pass of two random images (``_PROBE_IMAGES``) at
    ``config.image_size`` (the model in eval mode, so no running statistic changes; a warm-up
    pass first) and scales it to ``config.batch_size`` images: a rough figure, as a CPU's
    time grows about linearly with the batch.

    Example:
        >>> cfg = TrainConfig(backbone="small", width=4, image_size=16, batch_size=8)
        >>> seconds_per_step(cfg) > 0
        True
    """
    model = build_model(config, num_classes, load_weights=False).eval()
    x = torch.randn(_PROBE_IMAGES, 3, config.image_size, config.image_size)

    def one_pass() -> float:
        t0 = time.perf_counter()
        emb, logits = model(x)
        (emb.sum() + logits.sum()).backward()
        return time.perf_counter() - t0

    one_pass()
    return one_pass() * config.batch_size / _PROBE_IMAGES


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"7.5 min"`` or ``"1.6 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def cpu_notice_due(config: TrainConfig, given: Collection[str]) -> bool:
    """Whether ``train`` prints :func:`cpu_cost_notice`: the run goes to the CPU and neither
    ``backbone`` nor ``image_size`` was chosen (``given``: the options given on the command
    line); on the first process of a ``torchrun`` launch only."""
    if "backbone" in given or "image_size" in given or os.environ.get("RANK", "0") != "0":
        return False
    return resolve_device(config.device).type == "cpu"


def cpu_cost_notice(config: TrainConfig) -> str:
    """What one step of ``config`` costs on this CPU (measured, :func:`seconds_per_step`),
    and of 1,000 training images, with the suggestion :data:`CPU_SUGGESTION`."""
    step = seconds_per_step(config)
    per_1000 = step * 1000 / config.batch_size
    return (
        f"note: training {config.backbone} at {config.image_size} px, batch "
        f"{config.batch_size}, on the CPU (the defaults are sized for a GPU): measured here, "
        f"about {_duration(step)} per step, {_duration(per_1000)} per 1,000 training images "
        f"per epoch ({plural(config.epochs, 'epoch')}), and memory grows with the batch. For a "
        f"first run on a CPU add {CPU_SUGGESTION} (or try `sentiment-metric demo`)."
    )


def not_learned_note(metrics: Mapping[str, Any], class_names: list[str]) -> str | None:
    """A note when the test predictions fall on one class only (a model at chance), else
    ``None``.

    Example:
        >>> not_learned_note({"confusion_matrix": [[3, 0], [2, 0]]}, ["awe", "fear"])[:41]
        'note: the model predicts awe for every te'
        >>> not_learned_note({"confusion_matrix": [[3, 0], [1, 1]]}, ["awe", "fear"]) is None
        True
    """
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return None
    predicted = [j for j in range(len(matrix[0])) if any(row[j] for row in matrix)]
    if len(predicted) != 1:
        return None
    order = metrics.get("confusion_order") or list(range(len(class_names)))
    label = order[predicted[0]]
    name = class_names[label] if isinstance(label, int) else str(label)
    epochs = metrics.get("epoch")
    after = f" after {plural(epochs, 'epoch')}" if isinstance(epochs, int) else ""
    return (
        f"note: the model predicts {name} for every test image{after}: it has not learned "
        "yet (accuracy at chance); train longer (--epochs) or check the learning rate (--lr)."
    )
