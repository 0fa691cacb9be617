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
from .evaluate import compute_embeddings, evaluate_checkpoint, evaluate_embeddings, evaluate_model
from .loop import TrainResult, train
from .retrieve import export_embeddings, retrieve_images, topk_neighbors
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

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
