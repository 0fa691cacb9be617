"""The training configuration, its checks, and the command-line options generated from it.

Every :class:`TrainConfig` field carries its own command-line spelling in its metadata (help
text, option group, lower bound or allowed values): :func:`add_config_options` turns the
fields into ``argparse`` options, and :meth:`TrainConfig.validate` checks the same bounds and
choices, so the two cannot drift apart. A new field with metadata is a new option.

Default schedule. The AAAI 2018 paper fine-tunes an ImageNet GoogLeNet with SGD; its exact
numbers were not recovered. The defaults follow the usual fine-tuning recipe of the same lab's
later public work and of GoogLeNet fine-tuning in general, and are documented as such, not as
the paper's verified values: learning rate ``1e-3`` for the backbone and 10x that for the new
layers (sentiment vector, classifier), momentum ``0.9``, weight decay ``5e-4``, the learning
rate divided by 10 every 10 epochs, 30 epochs, batch 128 with 16 images per emotion for 8
emotions (PML's ``MPerClassSampler``), ``ω = 0.2``, margins ``(0.2, 0.1)``.

Default objective. The first round of the efficacy study (``benchmarks/efficacy.py`` at commit
``41a9986``, issue 13) found the pooled features a better embedding than the paper's raw
sentiment vector, and every ranked triplet better than semi-hard mining, on both of its data
sets: the defaults are
``embedding="fc"`` and ``strategy="none"``. The paper's model is ``embedding="sentiment"``,
``strategy="semihard"``.

Example:
    >>> from sentiment_metric.recipes.config import TrainConfig
    >>> cfg = TrainConfig(epochs=2, batch_size=32, image_size=64)
    >>> cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_step, cfg.lr_gamma
    (0.001, 0.9, 0.0005, 10, 0.1)
    >>> cfg.resolved_m_per_class(num_classes=8)
    8
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import SentimentMetricError
from .._checks import check_choice, check_margins, check_seed
from ..functional import MINING_STRATEGIES
from ..models import BACKBONES
from ..weighting import WEIGHTINGS
from .datasets.registry import DATASETS

__all__ = [
    "EMBEDDINGS",
    "LOSSES",
    "STRATEGIES",
    "TrainConfig",
    "add_config_options",
    "config_options_given",
    "finite_float",
    "int_at_least",
]

LOSSES = ("softmax", "triplet", "softmax+triplet", "multitask")
"""The objectives the trainer knows: softmax only; PML's triplet loss only; softmax + triplet;
softmax + sentiment constraints (``multitask``, the paper's)."""

STRATEGIES = ("none", *MINING_STRATEGIES)
"""The ``strategy`` values: ``"none"`` (no miner: the loss uses every ranked triplet of the
batch, exactly) or a mining strategy of :class:`~sentiment_metric.SentimentSemiHardMiner`."""

EMBEDDINGS = ("sentiment", "fc")
"""The embeddings: the Gram sentiment vector, or the backbone's pooled features."""


def _meta(
    group: str = "runtime",
    help: str | None = None,
    *,
    minimum: int | None = None,
    check: str | None = None,
    choices: Sequence[str] | None = None,
    cli_choices: Callable[[], Sequence[str]] | None = None,
    metavar: tuple[str, ...] | None = None,
    cli: bool = True,
    resumable: bool = False,
) -> dict[str, Any]:
    """A field's command-line spelling and check, for its ``metadata``.

    ``help`` may name ``{default}``; ``minimum`` bounds an int (``None`` allowed when the
    type is optional); ``check`` is ``"positive"``, ``"nonneg"`` or ``"unit"`` for numbers;
    ``choices`` are checked and offered, ``cli_choices`` only offered; ``resumable`` fields
    may change when a run is resumed; ``cli=False`` fields are not options.
    """
    return {
        "group": group,
        "help": help,
        "minimum": minimum,
        "check": check,
        "choices": None if choices is None else tuple(choices),
        "cli_choices": cli_choices,
        "metavar": metavar,
        "cli": cli,
        "resumable": resumable,
    }


def _datasets() -> Sequence[str]:
    return tuple(DATASETS)


_OPTIM = "optimisation (defaults: see sentiment_metric.recipes.config)"


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
        strict: an unreadable image is an error (default: skipped and reported by path).
        backbone: a name of :data:`sentiment_metric.models.BACKBONES`: ``"googlenet"``,
            ``"resnet18"``, ``"resnet50"`` (torchvision) or ``"small"``
            (:func:`~sentiment_metric.models.small_convnet`, for tiny images and the demo).
        layers: backbone layers the sentiment vector taps (``None``: the model's default).
        weights: torchvision weights name (``"DEFAULT"``) or ``None`` (train from scratch).
        embedding: ``"fc"`` (pooled features, the default) or ``"sentiment"`` (the Gram
            sentiment vector, the paper's).
        reduced_channels: ``N'``, channels after the 1x1 convolution per tapped layer.
        width: channel width of the ``"small"`` backbone.
        loss: one of :data:`LOSSES`.
        strategy: ``"none"`` (the default): no miner, every ranked triplet of the batch
            (exact); or a strategy of the sentiment miner: semihard (the paper's), hard,
            random or all.
        omega: weight ``ω`` of the metric loss, ``E = (1 - ω) E_cls + ω E_metric``.
        margins: ``(α1, α2)`` of the sentiment constraints.
        weighting: ``θ`` of the sentiment constraints: ``"inverse_wheel"`` (the paper) or
            ``"none"``.
        wheel_margin: ``β``, extra margin per wheel step of the sentiment constraints.
        triplet_margin: margin of PML's triplet loss (``loss="triplet"`` or ``"softmax+triplet"``).
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
        extra: free-form notes stored with the run (not used by the loop).
    """

    dataset: str = field(
        default="textures",
        metadata=_meta(
            "data",
            "dataset name (default {default!r}: generated, no download)",
            cli_choices=_datasets,
        ),
    )
    root: str | None = field(
        default=None,
        metadata=_meta("data", "the dataset's folder (not for 'textures')", resumable=True),
    )
    image_size: int = field(
        default=224, metadata=_meta("data", "input size (default {default})", minimum=1)
    )
    train_size: int | None = field(
        default=None,
        metadata=_meta(
            "data",
            "training images: generated count, or a stratified cap for folders (default all)",
            minimum=1,
        ),
    )
    val_size: int | None = field(
        default=None, metadata=_meta("data", "validation images (0: none)", minimum=0)
    )
    strict: bool = field(default=False, metadata=_meta("data", "unreadable image = error"))
    backbone: str = field(
        default="googlenet",
        metadata=_meta("model", "backbone (default {default!r})", choices=tuple(BACKBONES)),
    )
    layers: list[str] | None = field(
        default=None, metadata=_meta("model", "layers the sentiment vector taps")
    )
    weights: str | None = field(
        default=None,
        metadata=_meta(
            "model", "torchvision weights, e.g. DEFAULT (offline: trains from scratch, with a note)"
        ),
    )
    embedding: str = field(
        default="fc",
        metadata=_meta("model", "embedding (default {default!r})", choices=EMBEDDINGS),
    )
    reduced_channels: int = field(
        default=16, metadata=_meta("model", "N' per tapped layer (default {default})", minimum=1)
    )
    width: int = field(
        default=16,
        metadata=_meta("model", "width of the 'small' backbone (default {default})", minimum=1),
    )
    loss: str = field(
        default="multitask",
        metadata=_meta("objective", "objective (default {default!r})", choices=LOSSES),
    )
    strategy: str = field(
        default="none",
        metadata=_meta(
            "objective",
            "mining strategy; 'none': every ranked triplet, exactly (default {default!r})",
            choices=STRATEGIES,
        ),
    )
    omega: float = field(
        default=0.2, metadata=_meta("objective", "ω (default {default})", check="unit")
    )
    margins: tuple[float, float] = field(
        default=(0.2, 0.1),
        metadata=_meta(
            "objective",
            "sentiment-constraint margins (default {default[0]} {default[1]})",
            check="nonneg",
            metavar=("ALPHA1", "ALPHA2"),
        ),
    )
    weighting: str = field(
        default="inverse_wheel",
        metadata=_meta(
            "objective", "distance weighting θ (default {default!r})", choices=WEIGHTINGS
        ),
    )
    wheel_margin: float = field(
        default=0.0,
        metadata=_meta(
            "objective", "extra margin per wheel step, β (default {default})", check="nonneg"
        ),
    )
    triplet_margin: float = field(
        default=0.2, metadata=_meta("objective", "PML triplet margin", check="nonneg")
    )
    epochs: int = field(
        default=30, metadata=_meta(_OPTIM, "(default {default})", minimum=1, resumable=True)
    )
    batch_size: int = field(
        default=128, metadata=_meta(_OPTIM, "per process (default {default})", minimum=1)
    )
    m_per_class: int | None = field(
        default=None,
        metadata=_meta(
            _OPTIM, "images per emotion in a batch (default: >= 8, batch / C)", minimum=1
        ),
    )
    steps_per_epoch: int | None = field(default=None, metadata=_meta(_OPTIM, minimum=1))
    lr: float = field(default=1e-3, metadata=_meta(_OPTIM, "(default {default})", check="positive"))
    head_lr_mult: float = field(
        default=10.0, metadata=_meta(_OPTIM, "(default {default})", check="positive")
    )
    momentum: float = field(
        default=0.9, metadata=_meta(_OPTIM, "(default {default})", check="nonneg")
    )
    weight_decay: float = field(
        default=5e-4, metadata=_meta(_OPTIM, "(default {default})", check="nonneg")
    )
    lr_step: int = field(default=10, metadata=_meta(_OPTIM, "(default {default})", minimum=0))
    lr_gamma: float = field(
        default=0.1, metadata=_meta(_OPTIM, "(default {default})", check="positive")
    )
    amp: bool = field(default=True, metadata=_meta(_OPTIM, "no AMP on CUDA"))
    device: str = field(
        default="auto",
        metadata=_meta("runtime", "auto (default), cpu, cuda, cuda:N", resumable=True),
    )
    workers: int = field(
        default=2, metadata=_meta("runtime", "(default {default})", minimum=0, resumable=True)
    )
    seed: int = field(default=0, metadata=_meta("runtime", "(default {default})", minimum=0))
    deterministic: bool = field(default=False, metadata=_meta("runtime"))
    eval_every: int = field(
        default=1, metadata=_meta("runtime", "epochs (0: never)", minimum=0, resumable=True)
    )
    progress: bool = field(
        default=True, metadata=_meta("runtime", "no progress bar", resumable=True)
    )
    out: str = field(default="runs/sentiment-metric", metadata=_meta(cli=False, resumable=True))
    resume: bool = field(default=False, metadata=_meta(cli=False, resumable=True))
    extra: dict[str, Any] = field(default_factory=dict, metadata=_meta(cli=False))

    def __post_init__(self) -> None:
        if isinstance(self.margins, list):
            self.margins = tuple(self.margins)
        if self.layers is not None:
            self.layers = [str(x) for x in self.layers]
        self.validate()
        self.margins = check_margins(self.margins)  # the loss's rule: two, each in [0, 1e12]
        check_seed(self.seed)

    def validate(self) -> None:
        """Check every field against its metadata; raise :class:`SentimentMetricError` naming
        the bad one."""
        hints = _type_hints()
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name), _is_optional(hints[f.name]))
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

    def resume_conflicts(self, saved: TrainConfig) -> list[str]:
        """The fields that differ from ``saved`` and may not change on resume, described."""
        return [
            f"{f.name}: checkpoint {getattr(saved, f.name)!r}, now {getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if not f.metadata["resumable"] and getattr(saved, f.name) != getattr(self, f.name)
        ]

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


def _type_hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _is_optional(tp: Any) -> bool:
    return type(None) in typing.get_args(tp)


def _base_type(tp: Any) -> Any:
    """``int`` for ``int | None``, ``list`` for ``list[str] | None``, ``tuple`` for tuples."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    inner = args[0] if _is_optional(tp) and args else tp
    return typing.get_origin(inner) or inner


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_field(f: dataclasses.Field[Any], value: Any, optional: bool) -> None:
    meta = f.metadata
    if meta["choices"] is not None:
        check_choice(value, meta["choices"], f.name)
    minimum = meta["minimum"]
    if minimum is not None and not (optional and value is None):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            allowed = "None or an int" if optional else "an int"
            raise SentimentMetricError(f"{f.name} must be {allowed} >= {minimum}, got {value!r}")
    check = meta["check"]
    values = value if isinstance(value, tuple) else (value,)
    if check == "positive" and not all(_is_number(v) and v > 0 for v in values):
        raise SentimentMetricError(f"{f.name} must be a finite number > 0, got {value!r}")
    if check == "nonneg" and not all(_is_number(v) and v >= 0 for v in values):
        raise SentimentMetricError(f"{f.name} must be finite and >= 0, got {value!r}")
    if check == "unit" and not all(_is_number(v) and 0.0 <= v <= 1.0 for v in values):
        raise SentimentMetricError(f"{f.name} must lie in [0, 1], got {value!r}")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = minimum - 1
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {s!r}")
        return v

    return parse


def finite_float(s: str) -> float:
    """An argparse type: a finite number."""
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _option_kwargs(f: dataclasses.Field[Any], tp: Any) -> tuple[str, dict[str, Any]]:
    """The flag and ``add_argument`` keywords of one field (default ``SUPPRESS``)."""
    meta = f.metadata
    default = f.default
    kw: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name}
    if meta["help"] is not None:
        kw["help"] = meta["help"].format(default=default)
    flag = "--" + f.name.replace("_", "-")
    base = _base_type(tp)
    if base is bool:
        kw["action"] = "store_false" if default else "store_true"
        return ("--no-" + flag[2:] if default else flag), kw
    choices = meta["choices"] or (meta["cli_choices"]() if meta["cli_choices"] else None)
    if choices is not None:
        kw["choices"] = list(choices)
    if base is list:
        kw["nargs"] = "+"
    elif base is tuple:
        kw.update(nargs=len(meta["metavar"]), type=finite_float, metavar=meta["metavar"])
    elif base is int:
        kw["type"] = int_at_least(meta["minimum"] if meta["minimum"] is not None else 0)
    elif base is float:
        kw["type"] = finite_float
    return flag, kw


def add_config_options(parser: argparse.ArgumentParser, *, exclude: Collection[str] = ()) -> None:
    """Add every command-line :class:`TrainConfig` field (but ``exclude``) to ``parser``, in
    argument groups.

    Defaults are ``argparse.SUPPRESS``: only the options actually given reach the namespace
    (which matters for ``--resume``); read them with :func:`config_options_given`.
    """
    hints = _type_hints()
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata["cli"] or f.name in exclude:
            continue
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        flag, kw = _option_kwargs(f, hints[f.name])
        groups[group].add_argument(flag, **kw)


def config_options_given(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`TrainConfig` fields given on the command line (see
    :func:`add_config_options`), ready for ``TrainConfig(**given)``."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.metadata["cli"] and hasattr(args, f.name)
    }
    if "margins" in given:
        given["margins"] = tuple(given["margins"])
    return given
