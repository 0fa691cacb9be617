"""The reference training loop: a plain PyTorch loop you can read top to bottom and copy.

What one run does (:func:`train`):

1. seeds Python, NumPy and torch (CPU and CUDA) from ``config.seed``;
2. builds the datasets (any name of the datasets registry, or datasets you pass in), reads the
   class names (``dataset.classes``) and so the wheel relations, **by name**;
3. samples batches with PML's M-per-class scheme (:class:`DistributedMPerClassSampler`: batch
   128, at least 8 images per emotion by default), sharded over processes under ``torchrun``;
4. trains a :class:`~sentiment_metric.SentimentModel` with
   :class:`~sentiment_metric.MultiTaskSentimentLoss` (softmax + sentiment constraints, mined by
   :class:`~sentiment_metric.SentimentSemiHardMiner`), SGD with momentum and a step decay of the
   learning rate, mixed precision (AMP) on CUDA;
5. after every epoch appends one JSON line of metrics to ``<out>/metrics.jsonl`` and writes
   ``<out>/last.pt`` atomically (a temporary file, then :func:`os.replace`): the model,
   optimizer, scheduler, AMP scaler, sampler and every random-number state (torch, CUDA, NumPy,
   Python), so that ``resume=True`` continues **exactly** where it stopped.

Default schedule. The AAAI 2018 paper fine-tunes an ImageNet GoogLeNet with SGD; its exact
numbers were not recovered (see ``DESIGN.md``). The defaults follow the usual fine-tuning recipe
of the same lab's later public work and of GoogLeNet fine-tuning in general, and are documented
as such, not as the paper's verified values: learning rate ``1e-3`` for the backbone and 10x
that for the new layers (sentiment vector, classifier), momentum ``0.9``, weight decay
``5e-4``, the learning rate divided by 10 every 10 epochs, 30 epochs, batch 128 with 16 images
per emotion for 8 emotions (PML's ``MPerClassSampler``), ``ω = 0.2``, margins ``(0.2, 0.1)``.

Multi-GPU / multi-node: launch the same command with ``torchrun``; the loop reads ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``, uses NCCL on CUDA and gloo on CPU, wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel` and the metric loss and miner in PML's
``DistributedLossWrapper`` / ``DistributedMinerWrapper`` (so triplets are mined across the whole
global batch). ``batch_size`` is per process.

Example:
    >>> from sentiment_metric.recipes.train import TrainConfig
    >>> cfg = TrainConfig(epochs=2, batch_size=32, image_size=64)
    >>> cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_step, cfg.lr_gamma
    (0.001, 0.9, 0.0005, 10, 0.1)
    >>> cfg.resolved_m_per_class(num_classes=8)
    8
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_metric_learning import samplers
from torch import nn

from .._checks import SentimentMetricError, check_choice

__all__ = [
    "LOSSES",
    "DistributedMPerClassSampler",
    "TrainConfig",
    "TrainResult",
    "atomic_save",
    "build_loss",
    "build_model",
    "build_optimizer",
    "get_rng_state",
    "load_checkpoint",
    "load_model",
    "make_dataset",
    "seed_everything",
    "set_rng_state",
    "small_convnet",
    "train",
]

LOSSES = ("softmax", "triplet", "softmax+triplet", "multitask")
"""The objectives :func:`train` knows: softmax only; PML's triplet loss only; softmax + triplet;
softmax + sentiment constraints (``multitask``, the paper's)."""

EMBEDDINGS = ("sentiment", "fc")
STRATEGIES = ("semihard", "hard", "random", "all")
BACKBONES = ("googlenet", "resnet18", "resnet50", "small")
CHECKPOINT_FORMAT = "sentiment-metric-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"

# Fields that may change when a run is resumed; every other field must match the checkpoint.
_RESUMABLE_CHANGES = frozenset(
    {"epochs", "workers", "progress", "device", "resume", "eval_every", "out", "root"}
)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything one training run depends on (saved in every checkpoint).

    Args:
        dataset: a name of the datasets registry (``"textures"`` is generated, no download).
        root: the dataset's folder (``None`` for generated data).
        image_size: square input size in pixels.
        train_size: for generated data, the number of training images; for folders, a cap
            (a stratified subset) or ``None`` for all.
        val_size: as ``train_size``, for the validation split (0: no validation).
        backbone: ``"googlenet"``, ``"resnet18"``, ``"resnet50"`` (torchvision) or
            ``"small"`` (:func:`small_convnet`, for tiny images and the demo).
        layers: backbone layers the sentiment vector taps (``None``: the model's default).
        weights: torchvision weights name (``"DEFAULT"``) or ``None`` (train from scratch).
        embedding: ``"sentiment"`` (the Gram sentiment vector) or ``"fc"`` (pooled features).
        reduced_channels: ``N'``, channels after the 1x1 convolution per tapped layer.
        width: channel width of the ``"small"`` backbone.
        loss: one of :data:`LOSSES`.
        omega: weight ``ω`` of the metric loss, ``E = (1 - ω) E_cls + ω E_metric``.
        margins: ``(α1, α2)`` of the sentiment constraints.
        triplet_margin: margin of PML's triplet loss (``loss="triplet"`` or ``"softmax+triplet"``).
        strategy: mining strategy of the sentiment miner: semihard, hard, random or all.
        epochs: number of epochs.
        batch_size: images per step and process.
        m_per_class: images per emotion in a batch; ``None``: the smallest divisor of
            ``batch_size`` that is at least ``max(8, batch_size / C)`` (16 for 8 emotions and
            batch 128), see :meth:`resolved_m_per_class`.
        steps_per_epoch: optimizer steps per epoch; ``None``: one pass over the training set.
        lr: learning rate of the backbone.
        head_lr_mult: learning-rate factor of the new layers (sentiment vector, classifier).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        lr_step: divide the learning rate by ``1 / lr_gamma`` every ``lr_step`` epochs.
        lr_gamma: the step decay factor.
        amp: mixed precision (float16 autocast and gradient scaling); used on CUDA only.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        workers: DataLoader worker processes.
        seed: seeds everything: data generation, weights, sampling, mining.
        deterministic: ask torch for deterministic kernels (slower on CUDA).
        eval_every: evaluate on the validation split every this many epochs (0: never).
        progress: show a tqdm progress bar.
        out: the run folder (``last.pt``, ``metrics.jsonl``, ``config.json``).
        resume: continue from ``<out>/last.pt`` exactly where it stopped.
        strict: an unreadable image is an error (default: skipped and reported by path).
        extra: free-form notes stored with the run (not used by the loop).
    """

    dataset: str = "textures"
    root: str | None = None
    image_size: int = 224
    train_size: int | None = None
    val_size: int | None = None
    backbone: str = "googlenet"
    layers: list[str] | None = None
    weights: str | None = None
    embedding: str = "sentiment"
    reduced_channels: int = 16
    width: int = 16
    loss: str = "multitask"
    omega: float = 0.2
    margins: tuple[float, float] = (0.2, 0.1)
    triplet_margin: float = 0.2
    strategy: str = "semihard"
    epochs: int = 30
    batch_size: int = 128
    m_per_class: int | None = None
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int = 10
    lr_gamma: float = 0.1
    amp: bool = True
    device: str = "auto"
    workers: int = 2
    seed: int = 0
    deterministic: bool = False
    eval_every: int = 1
    progress: bool = True
    out: str = "runs/sentiment-metric"
    resume: bool = False
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.margins = (float(self.margins[0]), float(self.margins[1]))
        if self.layers is not None:
            self.layers = [str(x) for x in self.layers]
        self.validate()

    def validate(self) -> None:
        """Check every field; raise :class:`SentimentMetricError` naming the bad one."""
        check_choice(self.loss, LOSSES, "loss")
        check_choice(self.embedding, EMBEDDINGS, "embedding")
        check_choice(self.strategy, STRATEGIES, "strategy")
        for name in ("image_size", "epochs", "batch_size", "reduced_channels", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SentimentMetricError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("m_per_class", "steps_per_epoch", "train_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise SentimentMetricError(f"{name} must be None or an int >= 1, got {v!r}")
        for name in ("val_size", "workers", "eval_every", "lr_step", "seed"):
            v = getattr(self, name)
            if v is None and name == "val_size":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SentimentMetricError(f"{name} must be an int >= 0, got {v!r}")
        for name in ("lr", "head_lr_mult", "lr_gamma"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SentimentMetricError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("momentum", "weight_decay", "triplet_margin", *("margins",)):
            vals = self.margins if name == "margins" else (getattr(self, name),)
            for v in vals:
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise SentimentMetricError(
                        f"{name} must be finite and >= 0, got {getattr(self, name)!r}"
                    )
        if not (0.0 <= float(self.omega) <= 1.0):
            raise SentimentMetricError(f"omega must lie in [0, 1], got {self.omega!r}")
        if self.backbone not in BACKBONES:
            raise SentimentMetricError(
                f"backbone must be one of {', '.join(repr(b) for b in BACKBONES)}; "
                f"got {self.backbone!r}"
            )
        if self.m_per_class is not None and self.batch_size % self.m_per_class:
            raise SentimentMetricError(
                f"m_per_class ({self.m_per_class}) must divide batch_size ({self.batch_size})"
            )

    def resolved_m_per_class(self, num_classes: int) -> int:
        """Images per emotion in a batch.

        ``m_per_class`` if set; otherwise the smallest divisor ``m`` of ``batch_size`` with
        ``m >= max(min(8, batch_size), ceil(batch_size / C))``: at least 8 per emotion, and
        few enough emotions per batch that ``C`` classes can fill it.
        """
        if self.m_per_class is not None:
            return self.m_per_class
        lo = max(min(8, self.batch_size), math.ceil(self.batch_size / max(num_classes, 1)))
        for m in range(lo, self.batch_size + 1):
            if self.batch_size % m == 0:
                return m
        return self.batch_size

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the checkpoint stores)."""
        d = dataclasses.asdict(self)
        d["margins"] = list(self.margins)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config; unknown keys (from a newer version) raise a clear error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SentimentMetricError(f"unknown training option(s) {unknown}")
        d = dict(d)
        if "margins" in d:
            d["margins"] = tuple(d["margins"])
        return cls(**d)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (unwrapped from DDP), in eval mode.
        checkpoint: path of the last checkpoint (``None`` on ranks other than 0).
        history: one dict of metrics per epoch trained in this call.
        class_names: the training set's class names, in label order.
        config: the configuration that ran.
    """

    model: nn.Module
    checkpoint: Path | None
    history: list[dict[str, Any]]
    class_names: list[str]
    config: TrainConfig


# --------------------------------------------------------------------------------------------
# seeds and random-number states
# --------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (PML samples from NumPy's global generator)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Every global random-number state, in a form ``torch.load(weights_only=True)`` reads.

    Example:
        >>> s = get_rng_state(); a = torch.rand(1); set_rng_state(s); bool(torch.rand(1) == a)
        True
    """
    py = random.getstate()
    np_state: Any = np.random.get_state()  # noqa: NPY002 (PML samples from NumPy's global generator)
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(v) for v in py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002 (PML samples from NumPy's global generator)
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------------
# checkpoints and the metrics log
# --------------------------------------------------------------------------------------------
def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A crash mid-write leaves the previous checkpoint intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`train` (safely: ``weights_only=True``).

    Raises:
        SentimentMetricError: the file is missing, unreadable or not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SentimentMetricError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle/zip errors of every kind
        raise SentimentMetricError(
            f"checkpoint {str(path)!r} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SentimentMetricError(
            f"{str(path)!r} is not a sentiment-metric checkpoint (written by "
            "`sentiment-metric train` or sentiment_metric.recipes.train.train)"
        )
    return ckpt


def _append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
        f.flush()


def _truncate_jsonl(path: Path, last_epoch: int) -> None:
    """Keep only the lines of epochs ``<= last_epoch`` (a run killed after logging an epoch
    but before its checkpoint must not log it twice)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line).get("epoch", 0)) <= last_epoch:
                keep.append(line)
        except (ValueError, AttributeError):
            continue
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(k + "\n" for k in keep), encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
class DistributedMPerClassSampler(samplers.MPerClassSampler):
    """PML's ``MPerClassSampler``, seeded per epoch and sharded over processes.

    Every batch holds ``batch_size / m`` emotions with ``m`` images each (with replacement only
    for an emotion with fewer than ``m`` images), exactly PML's scheme. Unlike PML's sampler,
    which draws from NumPy's global generator, this one draws from a generator seeded by
    ``(seed, epoch)``, so its whole state is two integers (:meth:`state_dict`) and every
    process builds the same global list of batches, then keeps its share
    (batches ``rank, rank + W, ...``): a ``DistributedSampler``-style M-per-class sampler.
    Call :meth:`set_epoch` at the start of every epoch.

    Args:
        labels: ``(N,)`` integer labels of the dataset.
        m: images per class in a batch.
        batch_size: images per batch **per process**; ``m`` must divide it and
            ``m * (number of classes) >= batch_size``.
        length_before_new_iter: indices per epoch over all processes (default ``len(labels)``),
            rounded down to whole batches (at least one batch per process).
        num_replicas: number of processes (default: the ``torch.distributed`` world size).
        rank: this process's rank (default: from ``torch.distributed``).
        seed: the sampling seed.

    Example:
        >>> labels = [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
        >>> s = DistributedMPerClassSampler(labels, m=4, batch_size=8, seed=0)
        >>> s.set_epoch(0); idx = list(s); len(idx)
        40
        >>> sorted({labels[i] for i in idx[:4]}) == [labels[idx[0]]]   # 4 of one class
        True
    """

    def __init__(
        self,
        labels: Sequence[int] | torch.Tensor | np.ndarray,
        m: int,
        batch_size: int,
        length_before_new_iter: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        labels_np = np.asarray(
            labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
        ).reshape(-1)
        if labels_np.size == 0:
            raise SentimentMetricError("labels is empty: nothing to sample from")
        n_classes = len(np.unique(labels_np))
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise SentimentMetricError(f"m must be an int >= 1, got {m!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SentimentMetricError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if batch_size % m:
            raise SentimentMetricError(f"m ({m}) must divide batch_size ({batch_size})")
        if m * n_classes < batch_size:
            raise SentimentMetricError(
                f"a batch of {batch_size} with {m} per class needs {batch_size // m} classes, "
                f"but the labels hold only {n_classes}; raise m (m_per_class) to at least "
                f"{math.ceil(batch_size / n_classes)} or lower batch_size"
            )
        if num_replicas is None:
            num_replicas = _world_size()
        if rank is None:
            rank = _rank()
        if not 0 <= rank < num_replicas:
            raise SentimentMetricError(f"rank must lie in [0, {num_replicas - 1}], got {rank}")
        total = len(labels_np) if length_before_new_iter is None else int(length_before_new_iter)
        per_replica = max(batch_size, (total // num_replicas) // batch_size * batch_size)
        super().__init__(
            labels_np, m, batch_size=batch_size, length_before_new_iter=per_replica * num_replicas
        )
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = per_replica

    def set_epoch(self, epoch: int) -> None:
        """Use the batches of ``epoch`` (call before iterating, every epoch)."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch"}``: all it takes to redraw the same batches."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.RandomState([self.seed % 2**32, self.epoch % 2**32])
        classes = sorted(self.labels_to_indices)
        batch_size = int(self.batch_size or 0)
        per_batch = batch_size // self.m_per_class
        n_batches = self.num_samples // batch_size * self.num_replicas
        out: list[int] = []
        for b in range(n_batches):
            order = list(classes)
            rng.shuffle(order)
            batch: list[int] = []
            for label in order[:per_batch]:
                pool = self.labels_to_indices[label]
                replace = len(pool) < self.m_per_class
                batch.extend(
                    int(i) for i in rng.choice(pool, size=self.m_per_class, replace=replace)
                )
            if b % self.num_replicas == self.rank:
                out.extend(batch)
        return iter(out)


# --------------------------------------------------------------------------------------------
# distributed
# --------------------------------------------------------------------------------------------
def _world_size() -> int:
    d = torch.distributed
    return d.get_world_size() if d.is_available() and d.is_initialized() else 1


def _rank() -> int:
    d = torch.distributed
    return d.get_rank() if d.is_available() and d.is_initialized() else 0


def _init_distributed(device_name: str) -> tuple[bool, torch.device]:
    """Start the process group when launched by ``torchrun``; pick this process's device."""
    want_cuda = device_name != "cpu" and (
        device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    )
    if want_cuda and not torch.cuda.is_available():
        raise SentimentMetricError(
            f"device {device_name!r} asked for CUDA, but torch.cuda.is_available() is False"
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    started = False
    if world > 1:
        dist = torch.distributed
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if want_cuda else "gloo")
            started = True
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if want_cuda:
            torch.cuda.set_device(local)
            return started, torch.device("cuda", local)
        return started, torch.device("cpu")
    if want_cuda:
        return started, torch.device("cuda" if device_name == "auto" else device_name)
    return started, torch.device("cpu")


# --------------------------------------------------------------------------------------------
# model, loss, optimizer
# --------------------------------------------------------------------------------------------
def small_convnet(width: int = 16) -> nn.Sequential:
    """A small 4-stage CNN for 32-96 px images: the demo's and the tests' backbone.

    Stages ``stem``, ``layer1``, ``layer2``, ``layer3``, each one 3x3 convolution, batch norm
    and ReLU (``width``, ``2w``, ``4w``, ``4w`` channels; strides 2, 2, 2, 1), then ``pool``
    (global average) and ``flatten``. One convolution per stage keeps a training step cheap on
    a CPU. Give it to :class:`~sentiment_metric.SentimentModel` with ``layers=["layer1",
    "layer2", "layer3"]`` (what ``backbone="small"`` does).

    Example:
        >>> net = small_convnet(8)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 32])
    """

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    w = width
    return nn.Sequential(
        OrderedDict(
            stem=stage(3, w, 2),
            layer1=stage(w, 2 * w, 2),
            layer2=stage(2 * w, 4 * w, 2),
            layer3=stage(4 * w, 4 * w, 1),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
        )
    )


SMALL_LAYERS = ["layer1", "layer2", "layer3"]


def build_model(config: TrainConfig, num_classes: int, *, load_weights: bool = True) -> nn.Module:
    """The :class:`~sentiment_metric.SentimentModel` the config describes.

    ``config.weights`` (e.g. ``"DEFAULT"``) is handed to torchvision. When the weights cannot
    be downloaded (offline) a note says so and the model trains from scratch.
    ``load_weights=False`` skips them (a checkpoint's state dict is about to be loaded).
    """
    from ..layers import SentimentModel

    common: dict[str, Any] = {
        "num_classes": num_classes,
        "reduced_channels": config.reduced_channels,
        "embedding": config.embedding,
    }
    if config.backbone == "small":
        if config.weights is not None and load_weights:
            print("note: backbone 'small' has no pretrained weights; training from scratch")
        return SentimentModel(
            backbone=small_convnet(config.width),
            layers=config.layers or SMALL_LAYERS,
            dry_run_shape=(3, config.image_size, config.image_size),
            **common,
        )
    weights = config.weights if load_weights else None
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


class _SoftmaxLoss(nn.Module):
    """Cross-entropy only, with the same call and ``last_losses`` as the multi-task loss."""

    def __init__(self) -> None:
        super().__init__()
        self.last_losses: dict[str, torch.Tensor] = {}

    def forward(
        self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        loss = nn.functional.cross_entropy(logits, labels)
        zero = loss.detach() * 0
        self.last_losses = {"classification": loss.detach(), "metric": zero, "total": loss.detach()}
        return loss


def build_loss(
    config: TrainConfig, class_names: Sequence[str], *, distributed: bool = False
) -> nn.Module:
    """The objective ``loss(embeddings, logits, labels) -> scalar`` with ``.last_losses``.

    ``multitask``: :class:`~sentiment_metric.MultiTaskSentimentLoss` over
    :class:`~sentiment_metric.SentimentConstraintLoss` mined by
    :class:`~sentiment_metric.SentimentSemiHardMiner` (``config.strategy``). ``triplet`` /
    ``softmax+triplet``: PML's ``TripletMarginLoss`` with its semi-hard ``TripletMarginMiner``
    (``omega = 1`` for triplet alone). With ``distributed=True`` the metric loss and miner are
    wrapped in PML's distributed wrappers, so mining sees the global batch.
    """
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners

    from ..losses import MultiTaskSentimentLoss, SentimentConstraintLoss
    from ..miners import SentimentSemiHardMiner

    if config.loss == "softmax":
        return _SoftmaxLoss()
    metric: nn.Module
    miner: nn.Module
    if config.loss == "multitask":
        metric = SentimentConstraintLoss(class_names=list(class_names), margins=config.margins)
        miner = SentimentSemiHardMiner(
            class_names=list(class_names),
            margins=config.margins,
            strategy=config.strategy,  # type: ignore[arg-type]  # checked by TrainConfig
            seed=config.seed,
        )
        omega = config.omega
    else:
        metric = pml_losses.TripletMarginLoss(margin=config.triplet_margin)
        miner = pml_miners.TripletMarginMiner(
            margin=config.triplet_margin, type_of_triplets="semihard"
        )
        omega = 1.0 if config.loss == "triplet" else config.omega
    if distributed:
        from pytorch_metric_learning.utils import distributed as pml_dist

        metric = pml_dist.DistributedLossWrapper(metric)
        miner = pml_dist.DistributedMinerWrapper(miner)
    return MultiTaskSentimentLoss(omega=omega, metric_loss=metric, miner=miner)


def _generators(module: nn.Module) -> dict[str, torch.Generator]:
    """The private ``torch.Generator`` s of a module tree (a seeded miner's), by module name."""
    out: dict[str, torch.Generator] = {}
    for name, m in module.named_modules():
        g = getattr(m, "generator", None)
        if isinstance(g, torch.Generator):
            out[name] = g
    return out


def _head_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
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
    bb, head = _head_parameters(model)
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
    """Rebuild the model saved in a checkpoint (eval mode) -> ``(model, checkpoint dict)``."""
    ckpt = (
        dict(checkpoint)
        if isinstance(checkpoint, Mapping)
        else load_checkpoint(checkpoint, map_location="cpu")
    )
    config = TrainConfig.from_dict(ckpt["config"])
    model = build_model(config, num_classes=len(ckpt["class_names"]), load_weights=False)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, ckpt


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
class _Subset(torch.utils.data.Dataset):
    """A stratified subset that keeps ``.classes``, ``.targets`` (and ``.samples``)."""

    def __init__(self, base: Any, indices: Sequence[int]) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]
        self.classes = list(base.classes)
        self.targets = [int(base.targets[i]) for i in self.indices]
        if hasattr(base, "samples"):
            self.samples = [base.samples[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.base[self.indices[i]]


def _stratified_cap(dataset: Any, n: int, seed: int) -> Any:
    """At most ``n`` samples, every class keeping its share (at least one each)."""
    if n >= len(dataset):
        return dataset
    targets = np.asarray(dataset.targets)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        k = max(1, round(n * len(idx) / len(targets)))
        chosen.extend(rng.permutation(idx)[:k].tolist())
    return _Subset(dataset, sorted(chosen))


def make_dataset(
    name: str,
    root: str | None,
    split: str,
    image_size: int,
    *,
    train: bool = False,
    size: int | None = None,
    seed: int = 0,
    split_file: str | Path | None = None,
    strict: bool = False,
) -> Any:
    """One split of a registry dataset, with the recipe's transform.

    ``"textures"`` is generated at ``image_size`` (``size`` images, default the split's
    default size); file datasets get :func:`~sentiment_metric.recipes.train_transform`
    (``train=True``) or :func:`~sentiment_metric.recipes.eval_transform` and, where the reader
    generates a split, ``seed`` and ``split_file`` (read if it exists, else written). ``size``
    caps a file dataset to a stratified subset.
    """
    import inspect

    from .datasets import DATASETS, build_dataset
    from .transforms import eval_transform, train_transform

    check_choice(name, tuple(DATASETS), "dataset")
    if name == "textures":
        if root is not None:
            raise SentimentMetricError(
                f"--root is not used by the generated 'textures' dataset, got {root!r}"
            )
        return build_dataset(
            "textures", split=split, num_images=size, image_size=image_size, seed=seed
        )
    if root is None:
        raise SentimentMetricError(f"dataset {name!r} needs root= (--root), the dataset's folder")
    params = inspect.signature(DATASETS[name]).parameters
    kw: dict[str, Any] = {}
    if "seed" in params:
        kw["seed"] = seed
    if "split_file" in params and split_file is not None:
        kw["split_file"] = str(split_file)
    transform = train_transform(image_size) if train else eval_transform(image_size)
    ds: Any = build_dataset(name, root=root, split=split, transform=transform, strict=strict, **kw)
    if len(ds) == 0:
        raise SentimentMetricError(f"the {split!r} split of {name!r} at {root!r} is empty")
    return _stratified_cap(ds, size, seed) if size is not None else ds


def build_datasets(config: TrainConfig) -> tuple[Any, Any | None]:
    """The training and validation datasets the config names (validation may be ``None``).

    A split generated for a file dataset is written to ``<out>/split.json`` and reused.
    """
    split_file = Path(config.out) / "split.json"
    common: dict[str, Any] = {
        "seed": config.seed,
        "split_file": split_file,
        "strict": config.strict,
    }
    train_ds = make_dataset(
        config.dataset,
        config.root,
        "train",
        config.image_size,
        train=True,
        size=config.train_size,
        **common,
    )
    val_ds = None
    if config.val_size != 0 and config.eval_every:
        val_ds = make_dataset(
            config.dataset,
            config.root,
            "val",
            config.image_size,
            train=False,
            size=config.val_size,
            **common,
        )
    return train_ds, val_ds


def _targets(dataset: Any) -> list[int]:
    t = getattr(dataset, "targets", None)
    if t is None:
        raise SentimentMetricError(
            f"the dataset {type(dataset).__name__} has no .targets (integer labels); "
            "M-per-class sampling needs them"
        )
    return [int(v) for v in t]


def _classes(dataset: Any) -> list[str]:
    c = getattr(dataset, "classes", None)
    if not c:
        raise SentimentMetricError(
            f"the dataset {type(dataset).__name__} has no .classes (class names in label "
            "order); the wheel reads classes by name"
        )
    return [str(x) for x in c]


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002 (PML samples from NumPy's global generator)
    random.seed(s)


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    train_dataset: Any | None = None,
    val_dataset: Any | None = None,
    *,
    model: nn.Module | None = None,
    step_callback: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train one model as ``config`` says; see the module docstring for the steps.

    Args:
        config: the run's :class:`TrainConfig`.
        train_dataset: a dataset with ``.classes``, ``.targets`` and ``ds[i] -> (image,
            label)``; ``None`` builds ``config.dataset`` from the registry.
        val_dataset: evaluated every ``config.eval_every`` epochs (rank 0); ``None`` builds
            the registry's validation split when ``train_dataset`` is also ``None``.
        model: a model returning ``(embedding, logits)``; ``None`` builds
            :func:`build_model`. With ``resume`` it must match the checkpoint.
        step_callback: called after every optimizer step as ``(epoch, step, losses)``
            (``epoch`` from 0, ``step`` counted over the run); raising from it interrupts the
            run (the last checkpoint stays valid).

    Returns:
        :class:`TrainResult`.
    """
    started_pg, device = _init_distributed(config.device)
    try:
        return _train(config, train_dataset, val_dataset, model, step_callback, device)
    finally:
        if started_pg and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(
    config: TrainConfig,
    train_ds: Any | None,
    val_ds: Any | None,
    model: nn.Module | None,
    step_callback: Callable[[int, int, dict[str, float]], None] | None,
    device: torch.device,
) -> TrainResult:
    from tqdm.auto import tqdm

    rank, world = _rank(), _world_size()
    is_main = rank == 0
    out = Path(config.out)
    ckpt_path = out / CHECKPOINT_NAME
    log_path = out / METRICS_NAME

    ckpt: dict[str, Any] | None = None
    if config.resume:
        ckpt = load_checkpoint(ckpt_path)
        saved = TrainConfig.from_dict(ckpt["config"])
        diff = [
            f"{f.name}: checkpoint {getattr(saved, f.name)!r}, now {getattr(config, f.name)!r}"
            for f in dataclasses.fields(TrainConfig)
            if f.name not in _RESUMABLE_CHANGES
            and getattr(saved, f.name) != getattr(config, f.name)
        ]
        if diff:
            raise SentimentMetricError(
                "resume: these options differ from the checkpoint's (start a new run in "
                "another --out instead): " + "; ".join(diff)
            )
        if int(ckpt.get("world_size", 1)) != world:
            warnings.warn(
                f"resuming a run of {ckpt.get('world_size')} process(es) on {world}: the "
                "sampling differs from an uninterrupted run",
                stacklevel=2,
            )
    elif ckpt_path.exists():
        raise SentimentMetricError(
            f"{str(ckpt_path)!r} exists: pass resume=True (--resume) to continue that run, "
            "or choose another out folder"
        )

    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(config.seed)

    if train_ds is None:
        train_ds, built_val = build_datasets(config)
        val_ds = val_ds if val_ds is not None else built_val
    class_names = _classes(train_ds)
    targets = _targets(train_ds)
    if ckpt is not None and list(ckpt["class_names"]) != class_names:
        raise SentimentMetricError(
            f"resume: the dataset's classes {class_names} differ from the checkpoint's "
            f"{list(ckpt['class_names'])}"
        )

    if model is None:
        model = build_model(config, num_classes=len(class_names), load_weights=ckpt is None)
    model.to(device)
    loss_fn = build_loss(config, class_names, distributed=world > 1).to(device)
    optimizer, scheduler = build_optimizer(config, model)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    m = config.resolved_m_per_class(len(class_names))
    length = (
        config.steps_per_epoch * config.batch_size * world
        if config.steps_per_epoch is not None
        else None
    )
    sampler = DistributedMPerClassSampler(
        targets,
        m=m,
        batch_size=config.batch_size,
        length_before_new_iter=length,
        num_replicas=world,
        rank=rank,
        seed=config.seed,
    )

    start_epoch = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        sampler.load_state_dict(ckpt["sampler"])
        start_epoch = int(ckpt["epoch"])
        rng = ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0]
        set_rng_state(rng)
        for name, g in _generators(loss_fn).items():
            if name in rng.get("generators", {}):
                g.set_state(rng["generators"][name])
        if is_main:
            _truncate_jsonl(log_path, start_epoch)

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=config.loss in ("softmax", "triplet"),
        )

    loader = torch.utils.data.DataLoader(
        train_ds,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_seed_worker,
        persistent_workers=False,
    )

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    history: list[dict[str, Any]] = []
    step = start_epoch * len(loader)
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        ddp_model.train()
        sums = {"classification": 0.0, "metric": 0.0, "total": 0.0}
        correct = seen = 0
        t0 = time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and is_main),
            leave=False,
            dynamic_ncols=True,
        )
        for images, labels in bar:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                embeddings, logits = ddp_model(images)
            loss = loss_fn(embeddings.float(), logits.float(), labels)
            if not torch.isfinite(loss):
                raise SentimentMetricError(
                    f"the loss became {float(loss)} at epoch {epoch + 1}, step {step + 1}; "
                    "lower the learning rate (lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            last: dict[str, torch.Tensor] = getattr(loss_fn, "last_losses", {})
            parts = {k: float(v) for k, v in last.items()}
            for k in sums:
                sums[k] += parts.get(k, 0.0) * labels.shape[0]
            correct += int((logits.detach().argmax(1) == labels).sum())
            seen += labels.shape[0]
            bar.set_postfix(loss=f"{parts.get('total', 0.0):.4f}")
            if step_callback is not None:
                step_callback(epoch, step, parts)
        bar.close()
        scheduler.step()
        elapsed = time.perf_counter() - t0

        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "loss": sums["total"] / max(seen, 1),
            "loss_classification": sums["classification"] / max(seen, 1),
            "loss_metric": sums["metric"] / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "time_s": elapsed,
            "images_per_s": seen * world / max(elapsed, 1e-9),
            "world_size": world,
        }
        if (
            val_ds is not None
            and config.eval_every
            and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs)
            and is_main
        ):
            from .evaluate import evaluate_model

            metrics = evaluate_model(
                model, val_ds, class_names, device=device, batch_size=config.batch_size
            )
            record.update({f"val_{k}": v for k, v in metrics.items() if _is_number(v)})

        rng_states = [get_rng_state()]
        rng_states[0]["generators"] = {
            name: g.get_state() for name, g in _generators(loss_fn).items()
        }
        if world > 1:
            gathered: list[Any] = [None] * world
            torch.distributed.all_gather_object(gathered, rng_states[0])
            rng_states = gathered
        if is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "config": config.to_dict(),
                "class_names": class_names,
                "epoch": epoch + 1,
                "step": step,
                "world_size": world,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "sampler": {"seed": sampler.seed, "epoch": epoch + 1},
                "rng": rng_states,
                "metrics": record,
            }
            atomic_save(state, ckpt_path)
            _append_jsonl(log_path, record)
            if config.progress:
                print(_epoch_line(record), flush=True)
        if world > 1:
            torch.distributed.barrier()
        history.append(record)

    model.eval()
    return TrainResult(
        model=model,
        checkpoint=ckpt_path if is_main else None,
        history=history,
        class_names=class_names,
        config=config,
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _epoch_line(r: Mapping[str, Any]) -> str:
    s = (
        f"epoch {r['epoch']}: loss {r['loss']:.4f} (cls {r['loss_classification']:.4f}, "
        f"metric {r['loss_metric']:.4f}), train acc {r['train_accuracy']:.3f}, "
        f"{r['images_per_s']:.0f} img/s"
    )
    if "val_accuracy" in r:
        s += f", val acc {r['val_accuracy']:.3f}"
    if "val_mean_average_precision_at_r" in r:
        s += f", val MAP@R {r['val_mean_average_precision_at_r']:.3f}"
    return s
