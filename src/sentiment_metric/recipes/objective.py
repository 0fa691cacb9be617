"""The training objective: ``objective(embeddings, logits, labels) -> (loss, parts)``.

:func:`build_objective` turns the config's ``loss`` into a :class:`TrainingObjective`, which
returns the loss **and** its detached parts (``"classification"``, ``"metric"``, ``"total"``)
for the log, and names the private random generators a resume must restore
(:attr:`TrainingObjective.generators`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.utils import distributed as pml_dist
from torch import nn

from .. import MultiTaskSentimentLoss, SentimentConstraintLoss, SentimentSemiHardMiner
from .config import TrainConfig

__all__ = ["TrainingObjective", "build_objective"]


class TrainingObjective(nn.Module):
    """Cross-entropy alone, or a :class:`~sentiment_metric.MultiTaskSentimentLoss`.

    Args:
        multitask: the combined loss; ``None`` trains with cross-entropy only.
        generators: the private generators the loss draws from (a seeded miner's), by name:
            saved and restored with the checkpoint.

    ``forward(embeddings, logits, labels)`` returns ``(loss, parts)``, ``parts`` holding the
    detached ``"classification"``, ``"metric"`` and ``"total"`` losses.
    """

    def __init__(
        self,
        multitask: MultiTaskSentimentLoss | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
    ) -> None:
        super().__init__()
        self.multitask = multitask
        self.generators: dict[str, torch.Generator] = dict(generators or {})

    def forward(
        self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.multitask is None:
            loss = nn.functional.cross_entropy(logits, labels)
            zero = loss.detach() * 0
            return loss, {"classification": loss.detach(), "metric": zero, "total": loss.detach()}
        loss = self.multitask(embeddings, logits, labels)
        return loss, dict(self.multitask.last_losses)


def build_objective(
    config: TrainConfig, class_names: Sequence[str], *, distributed: bool = False
) -> TrainingObjective:
    """The objective ``config.loss`` names.

    ``softmax``: cross-entropy only. ``multitask``:
    :class:`~sentiment_metric.MultiTaskSentimentLoss` over
    :class:`~sentiment_metric.SentimentConstraintLoss` (``config.margins``, ``weighting``,
    ``wheel_margin``) mined by :class:`~sentiment_metric.SentimentSemiHardMiner`
    (``config.strategy``, seeded by ``config.seed``), or over every ranked triplet with
    ``strategy="none"``. ``triplet`` / ``softmax+triplet``: PML's ``TripletMarginLoss`` with its
    semi-hard ``TripletMarginMiner`` (``omega = 1`` for triplet alone). With
    ``distributed=True`` the metric loss and miner are wrapped in PML's distributed wrappers,
    so mining sees the global batch.
    """
    if config.loss == "softmax":
        return TrainingObjective()
    metric: nn.Module
    miner: nn.Module | None
    generators: dict[str, torch.Generator] = {}
    if config.loss == "multitask":
        constraints: dict[str, Any] = {
            "class_names": list(class_names),
            "margins": config.margins,
            "weighting": config.weighting,
            "wheel_margin": config.wheel_margin,
        }
        metric = SentimentConstraintLoss(**constraints)
        miner, omega = None, config.omega
        if config.strategy != "none":
            miner = SentimentSemiHardMiner(
                **constraints,
                strategy=config.strategy,  # type: ignore[arg-type]  # checked by TrainConfig
                seed=config.seed,
            )
            if miner.generator is not None:
                generators["miner"] = miner.generator
    else:
        metric = pml_losses.TripletMarginLoss(margin=config.triplet_margin)
        miner = pml_miners.TripletMarginMiner(
            margin=config.triplet_margin, type_of_triplets="semihard"
        )
        omega = 1.0 if config.loss == "triplet" else config.omega
    if distributed:
        metric = pml_dist.DistributedLossWrapper(metric)
        miner = None if miner is None else pml_dist.DistributedMinerWrapper(miner)
    multitask = MultiTaskSentimentLoss(omega=omega, metric_loss=metric, miner=miner)
    return TrainingObjective(multitask, generators)
