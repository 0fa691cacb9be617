"""Evaluate a trained model: classification and wheel-aware retrieval metrics.

:func:`compute_embeddings` runs a model over a dataset; :func:`evaluate_embeddings` turns the
embeddings and logits into one dict of metrics (:func:`~sentiment_metric.classification_report`
for the logits, :class:`~sentiment_metric.AffectiveAccuracyCalculator` for retrieval, every test
image a query against all the others); :func:`evaluate_checkpoint` does both for a checkpoint
written by :func:`~sentiment_metric.recipes.train.train` and writes ``metrics.json``,
``metrics.md`` and ``confusion.png``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import SentimentMetricError

__all__ = [
    "HEADLINE_METRICS",
    "compute_embeddings",
    "evaluate_checkpoint",
    "evaluate_embeddings",
    "evaluate_model",
    "metrics_markdown",
    "resolve_device",
]

HEADLINE_METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "polarity_accuracy": "polarity acc.",
    "mean_average_precision_at_r": "MAP@R",
    "wheel_ndcg_at_k": "wheel nDCG@{k}",
    "mean_wheel_distance_at_k": "mean wheel dist.@{k} (lower is better)",
}
"""The metrics of the comparison tables, in order (key -> column title)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA name without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise SentimentMetricError(f"device must be auto, cpu or cuda[:N], got {name!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SentimentMetricError(
            f"device {name!r} asked for CUDA, but torch.cuda.is_available() is False"
        )
    return dev


@torch.no_grad()
def compute_embeddings(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    workers: int = 0,
    amp: bool = True,
) -> dict[str, torch.Tensor]:
    """Run ``model`` (eval mode) over ``dataset`` in order.

    Args:
        model: returns ``(embedding (B, D), logits (B, C))``.
        dataset: ``ds[i] -> (image, label)``.
        batch_size: images per forward.
        device: where the model runs.
        workers: DataLoader worker processes.
        amp: float16 autocast on CUDA.

    Returns:
        ``{"embeddings": (N, D), "logits": (N, C), "labels": (N,)}`` on the CPU (float32,
        float32, int64).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers
    )
    embs, logits, labels = [], [], []
    try:
        for images, y in loader:
            with torch.autocast(
                device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"
            ):
                e, z = model(images.to(device))
            embs.append(e.float().cpu())
            logits.append(z.float().cpu())
            labels.append(torch.as_tensor(y, dtype=torch.int64))
    finally:
        model.train(was_training)
    if not embs:
        raise SentimentMetricError("the dataset is empty: nothing to evaluate")
    return {
        "embeddings": torch.cat(embs),
        "logits": torch.cat(logits),
        "labels": torch.cat(labels),
    }


def evaluate_embeddings(
    embeddings: torch.Tensor,
    logits: torch.Tensor | None,
    labels: torch.Tensor,
    class_names: Sequence[str],
    *,
    k: int = 10,
) -> dict[str, Any]:
    """All metrics of one model on one test set.

    Classification (from ``logits``): ``accuracy``, ``polarity_accuracy``,
    ``mean_wheel_distance_of_errors``, ``per_class``, ``confusion_matrix``. Retrieval (from
    ``embeddings``, L2-normalised as in training; each sample queries all the others):
    PML's ``precision_at_1``, ``r_precision``, ``mean_average_precision_at_r`` and the wheel-aware
    ``polarity_precision_at_k``, ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``, ... at ``k``
    (lowered to ``N - 1`` for a small test set; the ``k`` used is returned).

    Returns:
        A JSON-ready dict (numbers, lists, nested dicts), with ``"k"`` and ``"num_samples"``.
    """
    from ..metrics import AffectiveAccuracyCalculator, classification_report

    n = int(labels.shape[0])
    if n < 2:
        raise SentimentMetricError(f"retrieval metrics need at least 2 samples, got {n}")
    k = min(int(k), n - 1)  # each query ranks the n - 1 others
    out: dict[str, Any] = {"num_samples": n, "k": k}
    if logits is not None:
        report = classification_report(logits, labels, class_names=list(class_names))
        out.update(_jsonable(report))
    calc = AffectiveAccuracyCalculator(
        class_names=list(class_names),
        k=k,
        precision_at_ks=[p for p in (1, 5, 10) if p <= k] or [1],
    )
    # rank by the training distance: Euclidean between L2-normalised embeddings
    retrieval = calc.get_accuracy(torch.nn.functional.normalize(embeddings.float(), dim=1), labels)
    out.update({key: _jsonable(v) for key, v in retrieval.items()})
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist() if x.dim() else x.item()
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # numpy
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    class_names: Sequence[str],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
    k: int = 10,
    workers: int = 0,
) -> dict[str, Any]:
    """:func:`compute_embeddings` then :func:`evaluate_embeddings`."""
    res = compute_embeddings(model, dataset, batch_size=batch_size, device=device, workers=workers)
    return evaluate_embeddings(res["embeddings"], res["logits"], res["labels"], class_names, k=k)


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
    for key, name in HEADLINE_METRICS.items():
        if key in metrics:
            lines.append(f"| **{name.format(k=k)}** | {_fmt(metrics[key])} |")
            shown.add(key)
    for key, v in metrics.items():
        if key not in shown and isinstance(v, (int, float)) and not isinstance(v, bool):
            lines.append(f"| {key} | {_fmt(v)} |")
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
    the split file saved beside the checkpoint is reused. The dataset's classes must be the
    checkpoint's ``class_names``, in the same order.
    """
    from .train import make_dataset

    name = dataset or config.dataset
    if dataset is None or dataset == config.dataset:
        root = root if root is not None else config.root
    split_file = Path(checkpoint).resolve().parent / "split.json"
    ds = make_dataset(
        name,
        root,
        split,
        config.image_size,
        train=False,
        size=size,
        seed=config.seed,
        split_file=split_file if split_file.exists() else None,
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

    Returns:
        The metrics dict (as written to ``metrics.json``).
    """
    from .plots import plot_confusion_matrix
    from .train import TrainConfig, load_checkpoint, load_model

    ckpt = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(ckpt["config"])
    dev = resolve_device(device)
    model, _ = load_model(ckpt, dev)
    class_names = list(ckpt["class_names"])
    name = dataset or config.dataset
    ds = checkpoint_dataset(
        checkpoint, config, class_names, dataset, root, split, size=size, strict=strict
    )
    metrics = evaluate_model(
        model, ds, class_names, device=dev, batch_size=batch_size, k=k, workers=workers
    )
    metrics = {
        "checkpoint": str(checkpoint),
        "dataset": name,
        "split": split,
        "epoch": int(ckpt["epoch"]),
        **metrics,
    }
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
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
