"""Evaluate a trained model: classification and wheel-aware retrieval metrics.

:func:`compute_embeddings` runs a model over a dataset; :func:`evaluate_embeddings` turns the
embeddings and logits into one dict of metrics (:func:`~sentiment_metric.classification_report`
for the logits, :class:`~sentiment_metric.AffectiveAccuracyCalculator` for retrieval, every test
image a query against all the others); :func:`evaluate_checkpoint` does both for a checkpoint
written by :func:`~sentiment_metric.recipes.loop.train` and writes ``metrics.json``,
``metrics.md`` and ``confusion.png``. The comparison tables show :data:`HEADLINE_METRICS`; which
way is better is read from the measure registry
(:data:`sentiment_metric.functional.retrieval.MEASURES`), never from a name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pytorch_metric_learning.distances import DotProductSimilarity
from torch import nn
from torch.utils.data import default_collate

from .. import (
    MIKELS_WHEEL,
    AffectiveAccuracyCalculator,
    SentimentMetricError,
    classification_report,
)
from .._checks import check_nonnegative_float
from ..functional.hierarchy import expected_cost_embedding, expected_cost_predictions
from ..functional.retrieval import MEASURES
from .build import load_trained
from .datasets import recipe_dataset
from .datasets.base import UnreadableImageError, set_substitution
from .files import jsonable, write_json
from .plots import plot_confusion_matrix

__all__ = [
    "HEADLINE_METRICS",
    "compute_embeddings",
    "evaluate_checkpoint",
    "evaluate_embeddings",
    "evaluate_model",
    "headline_title",
    "higher_is_better",
    "metric_label",
    "metrics_markdown",
    "plural",
]

HEADLINE_METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "polarity_accuracy": "polarity acc.",
    "mean_average_precision_at_r": "MAP@R",
    "wheel_ndcg_at_k": "wheel nDCG@{k}",
    "mean_wheel_distance_at_k": "mean wheel dist.@{k}",
    "hierarchical_average_precision": "H-AP",
    "group_miss_share_of_errors": "errors across polarity",
}
"""The metrics of the comparison tables, in order (key -> column title, ``{k}`` the depth)."""

LOWER_IS_BETTER_ERRORS = frozenset({"mean_wheel_distance_of_errors", "group_miss_share_of_errors"})
"""The classification measures where lower is better: how severe the mistakes are (the
retrieval measures say it in the registry)."""


def higher_is_better(key: str) -> bool:
    """Whether a larger value of the metric ``key`` is better: the measure registry's word
    for a retrieval measure; classification rates (accuracy, ...) are higher-is-better, the
    severities of the mistakes (:data:`LOWER_IS_BETTER_ERRORS`) lower-is-better.

    Example:
        >>> higher_is_better("wheel_ndcg_at_k"), higher_is_better("mean_wheel_distance_at_k")
        (True, False)
        >>> higher_is_better("accuracy"), higher_is_better("group_miss_share_of_errors")
        (True, False)
    """
    if key in MEASURES:
        return MEASURES[key].higher_is_better
    return key not in LOWER_IS_BETTER_ERRORS


def headline_title(key: str, k: int) -> str:
    """The column title of a headline metric, marked when lower is better.

    Example:
        >>> headline_title("mean_wheel_distance_at_k", 10)
        'mean wheel dist.@10 (lower is better)'
    """
    title = HEADLINE_METRICS[key].format(k=k)
    return title if higher_is_better(key) else f"{title} (lower is better)"


def plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, with an ``s`` unless ``n`` is 1.

    Example:
        >>> plural(1, "epoch"), plural(20, "epoch")
        ('1 epoch', '20 epochs')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


_WORDS = {"anmrr": "ANMRR", "nmrr": "NMRR", "ndcg": "nDCG", "map": "MAP", "r": "R"}
"""How :func:`metric_label` spells the abbreviations inside metric keys."""


def metric_label(key: str, k: int) -> str:
    """The printed name of any metric key: the headline title, else the key in words, ``@``
    for its depth, abbreviations spelled as in the literature, marked when lower is better.

    Example:
        >>> metric_label("mean_average_precision_at_r", 10), metric_label("anmrr", 10)
        ('MAP@R', 'ANMRR (lower is better)')
        >>> metric_label("polarity_precision_at_k", 5), metric_label("r_precision", 5)
        ('polarity precision@5', 'R-precision')
    """
    if key in HEADLINE_METRICS:
        return headline_title(key, k)
    head, at, depth = key.rpartition("_at_")
    words = [_WORDS.get(w, w) for w in (head if at else key).split("_")]
    label = "-".join(words) if words[0] == "R" else " ".join(words)
    if at:
        label += "@" + (str(k) if depth == "k" else _WORDS.get(depth, depth))
    return label if higher_is_better(key) else f"{label} (lower is better)"


class _Indexed(torch.utils.data.Dataset):
    """``ds[i] -> (i, image, label, None)``, or ``(i, None, None, reason)`` for an image that
    cannot be read (never another image in its place)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, Any, Any, str | None]:
        try:
            image, label = self.dataset[i]
        except UnreadableImageError as err:
            return i, None, None, str(err)
        return i, image, label, None


def _collate(items: Sequence[tuple[int, Any, Any, str | None]]) -> dict[str, Any]:
    ok = [it for it in items if it[3] is None]
    return {
        "index": [it[0] for it in ok],
        "batch": default_collate([(it[1], it[2]) for it in ok]) if ok else None,
        "skipped": [(it[0], it[3]) for it in items if it[3] is not None],
    }


@torch.no_grad()
def compute_embeddings(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    workers: int = 0,
    amp: bool = True,
) -> dict[str, Any]:
    """Run ``model`` (eval mode) over ``dataset`` in order.

    An image that cannot be decoded is left out and reported (a warning naming it; listed in
    ``"skipped"``), never replaced by another image: every row belongs to the sample
    ``"indices"`` names. A dataset built with ``strict=True`` raises instead.

    Args:
        model: returns ``(embedding (B, D), logits (B, C))``.
        dataset: ``ds[i] -> (image, label)``.
        batch_size: images per forward.
        device: where the model runs.
        workers: DataLoader worker processes.
        amp: float16 autocast on CUDA.

    Returns:
        ``{"embeddings": (N, D), "logits": (N, C), "labels": (N,), "indices": (N,),
        "skipped": [(index, reason), ...]}`` on the CPU (float32, float32, int64, int64).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    allowed = set_substitution(dataset, False)
    loader = torch.utils.data.DataLoader(
        _Indexed(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
    )
    embs, logits, labels, indices, skipped = [], [], [], [], []
    try:
        for part in loader:
            skipped += part["skipped"]
            if part["batch"] is None:
                continue
            images, y = part["batch"]
            with torch.autocast(
                device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"
            ):
                e, z = model(images.to(device))
            embs.append(e.float().cpu())
            logits.append(z.float().cpu())
            labels.append(torch.as_tensor(y, dtype=torch.int64))
            indices.append(torch.as_tensor(part["index"], dtype=torch.int64))
    finally:
        model.train(was_training)
        set_substitution(dataset, allowed)
    if skipped:
        shown = "\n".join(f"  #{i}: {r}" for i, r in skipped[:20])
        warnings.warn(
            f"left out {len(skipped)} unreadable image(s) (never replaced by another; listed "
            f"in 'skipped'; strict=True makes this an error):\n{shown}",
            stacklevel=2,
        )
    if not embs:
        raise SentimentMetricError(
            "the dataset is empty: nothing to evaluate"
            + (f" ({len(skipped)} unreadable image(s) left out)" if skipped else "")
        )
    return {
        "embeddings": torch.cat(embs),
        "logits": torch.cat(logits),
        "labels": torch.cat(labels),
        "indices": torch.cat(indices),
        "skipped": skipped,
    }


def evaluate_embeddings(
    embeddings: torch.Tensor,
    logits: torch.Tensor | None,
    labels: torch.Tensor,
    class_names: Sequence[str],
    *,
    k: int = 10,
    crm_weight: float | None = None,
) -> dict[str, Any]:
    """All metrics of one model on one test set.

    Classification (from ``logits``): ``accuracy``, ``polarity_accuracy``,
    ``mean_wheel_distance_of_errors``, ``per_class``, ``confusion_matrix``. Retrieval (from
    ``embeddings``, L2-normalised as in training; each sample queries all the others):
    PML's ``precision_at_1``, ``r_precision``, ``mean_average_precision_at_r`` and the wheel-aware
    ``polarity_precision_at_k``, ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``, ... at ``k``
    (lowered to ``N - 1`` for a small test set; the ``k`` used is returned).

    With ``crm_weight`` (``w >= 0``, needs ``logits``) both are read by conditional risk
    minimisation on the wheel: the predictions of least expected wheel cost
    (:func:`~sentiment_metric.functional.expected_cost_predictions`) and retrieval by distance
    plus ``w`` times the expected cost
    (:func:`~sentiment_metric.functional.expected_cost_embedding`, ranked by inner product).

    Returns:
        A JSON-ready dict (numbers, lists, nested dicts), with ``"k"`` and ``"num_samples"``.
    """
    n = int(labels.shape[0])
    if crm_weight is not None:
        crm_weight = check_nonnegative_float(crm_weight, "crm_weight")
        if logits is None:
            raise SentimentMetricError("crm_weight needs logits (the classifier's scores)")
    if n < 2:
        raise SentimentMetricError(f"retrieval metrics need at least 2 samples, got {n}")
    present = torch.unique(labels).tolist()
    if len(present) < 2:
        shown = [class_names[i] if 0 <= i < len(class_names) else i for i in present]
        raise SentimentMetricError(
            f"labels hold one class {shown}: the classification and retrieval measures need at "
            "least 2 classes (one class would score a meaningless 1.0)"
        )
    k = min(int(k), n - 1)  # each query ranks the n - 1 others
    out: dict[str, Any] = {"num_samples": n, "k": k}
    dis = MIKELS_WHEEL.relations(list(class_names)).dis
    if logits is not None:
        scores = logits if crm_weight is None else expected_cost_predictions(logits, dis)
        report = classification_report(scores, labels, class_names=list(class_names))
        out.update(jsonable(report))
    extra: dict[str, Any] = {}
    if crm_weight is None or logits is None:  # the training distance: L2-normalised Euclidean
        query = torch.nn.functional.normalize(embeddings.float(), dim=1)
    else:
        query = expected_cost_embedding(embeddings, logits, dis, crm_weight)
        extra["distance"] = DotProductSimilarity(normalize_embeddings=False)
        out["crm_weight"] = float(crm_weight)
    calc = AffectiveAccuracyCalculator(
        class_names=list(class_names),
        k=k,
        precision_at_ks=[p for p in (1, 5, 10) if p <= k] or [1],
        **extra,
    )
    retrieval = calc.get_accuracy(query, labels)
    out.update({key: jsonable(v) for key, v in retrieval.items()})
    return out


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    class_names: Sequence[str],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
    k: int = 10,
    workers: int = 0,
    crm_weight: float | None = None,
) -> dict[str, Any]:
    """:func:`compute_embeddings` then :func:`evaluate_embeddings` (``crm_weight``: read by
    conditional risk minimisation); unreadable images are left out and listed under
    ``"skipped"``."""
    res = compute_embeddings(model, dataset, batch_size=batch_size, device=device, workers=workers)
    out = evaluate_embeddings(
        res["embeddings"], res["logits"], res["labels"], class_names, k=k, crm_weight=crm_weight
    )
    if res["skipped"]:
        out["skipped"] = [reason for _, reason in res["skipped"]]
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def metrics_markdown(
    metrics: Mapping[str, Any], title: str | None = None, class_names: Sequence[str] | None = None
) -> str:
    """A markdown report: headline metrics, every other scalar, per-class recall."""
    k = metrics.get("k", 10)
    lines = [f"## {title}", ""] if title else []
    lines += ["| metric | value |", "|---|---|"]
    shown = set()
    for key in HEADLINE_METRICS:
        if key in metrics:
            lines.append(f"| **{headline_title(key, k)}** | {_fmt(metrics[key])} |")
            shown.add(key)
    for key, v in metrics.items():
        if key not in shown and isinstance(v, (int, float)) and not isinstance(v, bool):
            lines.append(f"| {metric_label(key, k)} | {_fmt(v)} |")
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        first = next(iter(per_class.values()))
        if isinstance(first, Mapping):
            cols = [c for c in first if isinstance(first[c], (int, float))]
            lines += ["", "| class | " + " | ".join(cols) + " |"]
            lines.append("|---|" + "---|" * len(cols))
            for name, row in per_class.items():
                lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _same_path(a: str | os.PathLike[str] | None, b: str | os.PathLike[str] | None) -> bool:
    """Whether two dataset roots name the same folder (both ``None``: the same default)."""
    if a is None or b is None:
        return a is None and b is None
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def checkpoint_dataset(
    checkpoint: str | os.PathLike[str],
    config: Any,
    class_names: Sequence[str],
    dataset: str | None,
    root: str | None,
    split: str,
    *,
    size: int | None = None,
    strict: bool = False,
) -> Any:
    """The dataset split to run a checkpoint on, with the evaluation transform.

    ``dataset``/``root`` default to the checkpoint's own (``config.dataset``, ``config.root``);
    the split file saved beside the checkpoint is reused for the checkpoint's own data only
    (another ``root`` or dataset gets its own split: the saved one lists the training
    folder's files). The dataset's classes must be the checkpoint's ``class_names``, in the
    same order.
    """
    name = dataset or config.dataset
    if dataset is None or dataset == config.dataset:
        root = root if root is not None else config.root
    same = name == config.dataset and _same_path(root, config.root)
    split_file = Path(checkpoint).resolve().parent / "split.json"
    ds = recipe_dataset(
        name,
        root,
        split,
        config.image_size,
        train=False,
        size=size,
        seed=config.seed,
        split_file=split_file if same and split_file.exists() else None,
        strict=strict,
    )
    ds_classes = [str(c) for c in ds.classes]
    if ds_classes != list(class_names):
        raise SentimentMetricError(
            f"the dataset's classes {ds_classes} differ from the checkpoint's "
            f"{list(class_names)}; use a dataset with the same emotions in the same order"
        )
    return ds


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    out: str | Path,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "test",
    size: int | None = None,
    k: int = 10,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 0,
    strict: bool = False,
    crm_weight: float | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset split; write ``metrics.json``, ``metrics.md``,
    ``confusion.png`` to ``out``.

    Args:
        checkpoint: a ``last.pt`` written by training.
        out: the folder to write to (created).
        dataset: a registry name; ``None``: the dataset the checkpoint was trained on.
        root: the dataset's folder; ``None``: the checkpoint's (for its own dataset).
        split: ``"test"`` (default), ``"val"``, ``"train"`` or ``"all"``.
        size: cap (or, for generated data, the number of images).
        k: the ``k`` of the ``@k`` retrieval metrics.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        batch_size: images per forward.
        workers: DataLoader worker processes.
        strict: an unreadable image is an error.
        crm_weight: read the model by conditional risk minimisation on the wheel, with this
            weight of the expected cost in retrieval (see :func:`evaluate_embeddings`).

    Returns:
        The metrics dict (as written to ``metrics.json``).
    """
    trained = load_trained(checkpoint, device)
    config, class_names = trained.config, trained.class_names
    name = dataset or config.dataset
    ds = checkpoint_dataset(
        checkpoint, config, class_names, dataset, root, split, size=size, strict=strict
    )
    metrics = evaluate_model(
        trained.model,
        ds,
        class_names,
        device=trained.device,
        batch_size=batch_size,
        k=k,
        workers=workers,
        crm_weight=crm_weight,
    )
    metrics = {
        "checkpoint": str(checkpoint),
        "dataset": name,
        "split": split,
        "epoch": int(trained.checkpoint["epoch"]),
        **metrics,
    }
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics, indent=2)
    title = f"{name} / {split} — {Path(checkpoint).name} (epoch {metrics['epoch']})"
    (out_dir / "metrics.md").write_text(metrics_markdown(metrics, title))
    if "confusion_matrix" in metrics:
        order = metrics.get("confusion_order") or class_names
        plot_confusion_matrix(
            metrics["confusion_matrix"],
            [class_names[i] if isinstance(i, int) else str(i) for i in order],
            out_dir / "confusion.png",
            title=f"{name} / {split}: confusion (row-normalised)",
        )
    return metrics
