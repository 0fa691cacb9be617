"""The model and the optimizer a :class:`~sentiment_metric.recipes.config.TrainConfig`
describes, and a trained model rebuilt from a checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import SentimentMetricError, SentimentModel
from ..models import BACKBONES, small_convnet
from .checkpoint import check_checkpoint_keys, load_checkpoint
from .config import TrainConfig
from .distributed import resolve_device

__all__ = ["TrainedModel", "build_model", "build_optimizer", "load_model", "load_trained"]


def build_model(config: TrainConfig, num_classes: int, *, load_weights: bool = True) -> nn.Module:
    """The :class:`~sentiment_metric.SentimentModel` the config describes.

    ``config.weights`` (e.g. ``"DEFAULT"``) is handed to torchvision. When the weights cannot
    be downloaded (offline) a note says so and the model trains from scratch.
    ``load_weights=False`` skips them (a checkpoint's state dict is about to be loaded).
    ``backbone="small"`` is :func:`~sentiment_metric.models.small_convnet` at ``config.width``.
    """
    common: dict[str, Any] = {
        "num_classes": num_classes,
        "reduced_channels": config.reduced_channels,
        "embedding": config.embedding,
    }
    spec = BACKBONES[config.backbone]
    if not spec.pretrained and config.weights is not None and load_weights:
        print(
            f"note: backbone {config.backbone!r} has no pretrained weights; training from scratch"
        )
    if config.backbone == "small":
        return SentimentModel(
            backbone=small_convnet(config.width),
            layers=config.layers or list(spec.layers),
            dry_run_shape=(3, config.image_size, config.image_size),
            **common,
        )
    weights = config.weights if load_weights and spec.pretrained else None
    try:
        return SentimentModel(
            backbone=config.backbone,
            layers=config.layers,
            weights=weights,
            progress=False,
            **common,
        )
    except SentimentMetricError as err:
        if weights is None or "could not download" not in str(err):
            raise
        print(
            f"note: the pretrained weights {weights!r} of {config.backbone} could not be "
            "downloaded (offline?); training from scratch",
            flush=True,
        )
        return SentimentModel(backbone=config.backbone, layers=config.layers, **common)


def _split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(backbone parameters, new-layer parameters)`` that require gradients."""
    backbone = getattr(model, "backbone", None)
    bb_ids = {id(p) for p in backbone.parameters()} if isinstance(backbone, nn.Module) else set()
    bb: list[nn.Parameter] = []
    head: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (bb if id(p) in bb_ids else head).append(p)
    return bb, head


def build_optimizer(
    config: TrainConfig, model: nn.Module
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.StepLR]:
    """SGD (backbone at ``lr``, new layers at ``lr * head_lr_mult``) and the step decay."""
    bb, head = _split_parameters(model)
    groups = [
        {"params": bb, "lr": config.lr, "name": "backbone"},
        {"params": head, "lr": config.lr * config.head_lr_mult, "name": "head"},
    ]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(config.lr_step, 1) if config.lr_step else 10**9, gamma=config.lr_gamma
    )
    return opt, sched


def load_model(
    checkpoint: str | Path | Mapping[str, Any], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in a checkpoint (eval mode) -> ``(model, checkpoint dict)``.

    Raises:
        SentimentMetricError: the checkpoint lacks its config, class names or weights, or its
            config describes another model than its weights (one line naming the mismatch).
    """
    ckpt = (
        dict(checkpoint)
        if isinstance(checkpoint, Mapping)
        else load_checkpoint(checkpoint, map_location="cpu")
    )
    check_checkpoint_keys(ckpt, ("config", "class_names", "model"), "rebuild its model")
    try:
        config = TrainConfig.from_dict(ckpt["config"])
        model = build_model(config, num_classes=len(ckpt["class_names"]), load_weights=False)
    except (TypeError, ValueError, KeyError) as err:
        raise SentimentMetricError(
            f"the checkpoint's config does not describe a model ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    _check_weights(model.state_dict(), ckpt["model"], config, len(ckpt["class_names"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, ckpt


def _check_weights(
    expected: Mapping[str, torch.Tensor], saved: Any, config: TrainConfig, num_classes: int
) -> None:
    """One-line error when the saved weights are not those of the model the config builds."""
    if not isinstance(saved, Mapping):
        raise SentimentMetricError(
            f"the checkpoint's model is a {type(saved).__name__}, not weights"
        )
    lacking = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]
    shapes = [
        f"{k} {tuple(saved[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and isinstance(saved[k], torch.Tensor) and saved[k].shape != v.shape
    ]
    if not (lacking or extra or shapes):
        return
    what = []
    if lacking:
        what.append(f"{len(lacking)} tensor(s) missing (e.g. {lacking[0]})")
    if extra:
        what.append(f"{len(extra)} unexpected tensor(s) (e.g. {extra[0]})")
    if shapes:
        what.append(f"{len(shapes)} of another shape (e.g. {shapes[0]}, saved vs built)")
    raise SentimentMetricError(
        f"the checkpoint's weights do not match the model its config describes (backbone "
        f"{config.backbone!r}, width {config.width}, embedding {config.embedding}, "
        f"{num_classes} class names): " + "; ".join(what)
    )


@dataclass
class TrainedModel:
    """A model rebuilt from a checkpoint, with what it was trained on.

    Attributes:
        model: the model, in eval mode on ``device``.
        config: the run's configuration.
        class_names: the training set's class names, in label order.
        checkpoint: the checkpoint dict.
        device: where the model is.
    """

    model: nn.Module
    config: TrainConfig
    class_names: list[str]
    checkpoint: dict[str, Any]
    device: torch.device


def load_trained(checkpoint: str | Path, device: str = "auto") -> TrainedModel:
    """Read a checkpoint and rebuild its model on ``device`` (``"auto"``, ``"cpu"``, ...)."""
    ckpt = load_checkpoint(checkpoint)
    check_checkpoint_keys(ckpt, ("config", "class_names", "model", "epoch"), "be evaluated")
    dev = resolve_device(device)
    model, _ = load_model(ckpt, dev)
    config = TrainConfig.from_dict(ckpt["config"])
    return TrainedModel(model, config, list(ckpt["class_names"]), ckpt, dev)
