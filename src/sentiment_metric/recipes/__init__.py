"""Reference recipes: datasets, transforms, the trainer and the ``sentiment-metric`` command.

Needs the ``[train]`` extra (torchvision, Pillow, matplotlib, tqdm). The core of
:mod:`sentiment_metric` never imports this package. The modules, inner first:

- :mod:`~.datasets`: one module per data set, splits and the registry; :mod:`~.transforms`;
- :mod:`~.files` (the one atomic writer, JSON), :mod:`~.checkpoint` (checkpoints, random
  states), :mod:`~.distributed` (processes, devices, the sharded sampler);
- :mod:`~.config` (:class:`TrainConfig` and the options generated from it),
  :mod:`~.build` (model, optimizer), :mod:`~.objective` (the training loss);
- :mod:`~.evaluate`, :mod:`~.plots`, :mod:`~.retrieve`; :mod:`~.loop` (the trainer);
- :mod:`~.demo`, :mod:`~.ablation`: whole experiments; :mod:`~.cli`: parse and dispatch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ablation import ABLATION_ROWS, run_ablation
    from .config import TrainConfig
    from .datasets import (
        DATASETS,
        FI,
        Abstract,
        AffectiveTextures,
        ArtPhoto,
        EmoSet,
        EmotionImageDataset,
        EmotionImageFolder,
        build_dataset,
        generate_textures,
        stratified_split,
    )
    from .distributed import DistributedMPerClassSampler
    from .evaluate import (
        compute_embeddings,
        evaluate_checkpoint,
        evaluate_embeddings,
        evaluate_model,
    )
    from .loop import TrainResult, train
    from .retrieve import export_embeddings, retrieve_images, topk_neighbors
    from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

_LAZY = {
    "ABLATION_ROWS": "ablation",
    "run_ablation": "ablation",
    "TrainConfig": "config",
    "DATASETS": "datasets",
    "FI": "datasets",
    "Abstract": "datasets",
    "AffectiveTextures": "datasets",
    "ArtPhoto": "datasets",
    "EmoSet": "datasets",
    "EmotionImageDataset": "datasets",
    "EmotionImageFolder": "datasets",
    "build_dataset": "datasets",
    "generate_textures": "datasets",
    "stratified_split": "datasets",
    "DistributedMPerClassSampler": "distributed",
    "compute_embeddings": "evaluate",
    "evaluate_checkpoint": "evaluate",
    "evaluate_embeddings": "evaluate",
    "evaluate_model": "evaluate",
    "TrainResult": "loop",
    "train": "loop",
    "export_embeddings": "retrieve",
    "retrieve_images": "retrieve",
    "topk_neighbors": "retrieve",
    "IMAGENET_MEAN": "transforms",
    "IMAGENET_STD": "transforms",
    "eval_transform": "transforms",
    "train_transform": "transforms",
}
"""Public name -> its module, imported on first use (as :mod:`sentiment_metric` does), so
that ``sentiment-metric --help`` loads no torch."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ABLATION_ROWS",
    "DATASETS",
    "FI",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Abstract",
    "AffectiveTextures",
    "ArtPhoto",
    "DistributedMPerClassSampler",
    "EmoSet",
    "EmotionImageDataset",
    "EmotionImageFolder",
    "TrainConfig",
    "TrainResult",
    "build_dataset",
    "compute_embeddings",
    "eval_transform",
    "evaluate_checkpoint",
    "evaluate_embeddings",
    "evaluate_model",
    "export_embeddings",
    "generate_textures",
    "retrieve_images",
    "run_ablation",
    "stratified_split",
    "topk_neighbors",
    "train",
    "train_transform",
]
