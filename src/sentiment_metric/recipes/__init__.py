"""Reference recipes: datasets, transforms, the trainer and the ``sentiment-metric`` command.

Needs the ``[train]`` extra (torchvision, Pillow, matplotlib, tqdm). The core of
:mod:`sentiment_metric` never imports this package.
"""

from .ablation import ABLATION_ROWS, run_ablation
from .datasets import (
    DATASETS,
    FI,
    Abstract,
    ArtPhoto,
    EmoSet,
    EmotionImageDataset,
    EmotionImageFolder,
    build_dataset,
    stratified_split,
)
from .evaluate import compute_embeddings, evaluate_checkpoint, evaluate_embeddings, evaluate_model
from .retrieve import export_embeddings, retrieve_images, topk_neighbors
from .textures import AffectiveTextures, generate_textures
from .train import DistributedMPerClassSampler, TrainConfig, TrainResult, small_convnet
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
    "small_convnet",
    "stratified_split",
    "topk_neighbors",
    "train_transform",
]
