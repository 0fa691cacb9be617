"""Readers for affective image datasets, one module per data set, and their registry.

Every dataset here is a :class:`torch.utils.data.Dataset` with the same surface
(``.classes`` spelt as on the wheel, ``.targets``, ``.samples``, ``ds[i] -> (image, label)``,
``.skipped``; see :mod:`~sentiment_metric.recipes.datasets.base`). The modules:

- :mod:`~.base`: the common base :class:`EmotionImageDataset` and the file helpers;
- :mod:`~.splits`: generated stratified splits, split files, stratified subsets;
- :mod:`~.folder`, :mod:`~.fi`, :mod:`~.emoset`, :mod:`~.artphoto`, :mod:`~.abstract`: the
  readers; :mod:`~.textures`: the generated default dataset;
- :mod:`~.registry`: :data:`DATASETS` and the factory :func:`build_dataset`.
"""

from .abstract import Abstract
from .artphoto import ArtPhoto
from .base import IMG_EXTENSIONS, SPLITS, EmotionImageDataset
from .emoset import EMOSET_CLASSES, EmoSet
from .fi import FI
from .folder import EmotionImageFolder
from .registry import DATASETS, build_dataset, recipe_dataset
from .splits import DEFAULT_FRACTIONS, stratified_split, stratified_subset
from .textures import TEXTURE_MEAN, TEXTURE_STD, AffectiveTextures, generate_textures

__all__ = [
    "DATASETS",
    "DEFAULT_FRACTIONS",
    "EMOSET_CLASSES",
    "FI",
    "IMG_EXTENSIONS",
    "SPLITS",
    "TEXTURE_MEAN",
    "TEXTURE_STD",
    "Abstract",
    "AffectiveTextures",
    "ArtPhoto",
    "EmoSet",
    "EmotionImageDataset",
    "EmotionImageFolder",
    "build_dataset",
    "generate_textures",
    "recipe_dataset",
    "stratified_split",
    "stratified_subset",
]
