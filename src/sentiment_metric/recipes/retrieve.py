"""Retrieval with a trained model: the top ``k`` gallery images of query images, and embedding
export (for faiss or anything else).

Distances are the training distance: squared Euclidean between L2-normalised embeddings
(PML's ``LpDistance(power=2)``), in ``[0, 4]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import MIKELS_WHEEL, SentimentMetricError
from ..functional import exact_knn
from .build import load_trained
from .datasets import EmotionImageFolder
from .datasets.base import UnreadableImageError, image_files, unique_files
from .evaluate import checkpoint_dataset, compute_embeddings
from .files import atomic_write, write_json
from .plots import plot_retrieval
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform

__all__ = [
    "export_embeddings",
    "list_images",
    "retrieve_images",
    "topk_neighbors",
]


def topk_neighbors(
    query: torch.Tensor, gallery: torch.Tensor, k: int, *, exclude_self: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest gallery rows of every query row.

    Args:
        query: ``(Q, D)`` embeddings.
        gallery: ``(G, D)`` embeddings.
        k: neighbours per query (at most ``G``, or ``G - 1`` with ``exclude_self``).
        exclude_self: ``query`` *is* ``gallery``: never return a row as its own neighbour.

    Returns:
        ``(distances (Q, k), indices (Q, k))``, nearest first; the distance is the squared
        Euclidean distance between L2-normalised embeddings.

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
        >>> d, i = topk_neighbors(q, q, 1, exclude_self=True)
        >>> i.flatten().tolist()
        [2, 2, 0]
    """
    if query.dim() != 2 or gallery.dim() != 2 or query.shape[1] != gallery.shape[1]:
        raise SentimentMetricError(
            f"query (Q, D) and gallery (G, D) must share D, got {tuple(query.shape)} and "
            f"{tuple(gallery.shape)}"
        )
    n_max = gallery.shape[0] - (1 if exclude_self else 0)
    if k < 1 or k > n_max:
        raise SentimentMetricError(f"k must lie in [1, {n_max}] for this gallery, got {k}")
    q = torch.nn.functional.normalize(query.float(), dim=1)
    g = torch.nn.functional.normalize(gallery.float(), dim=1)
    return exact_knn(q, g, k, ref_includes_query=exclude_self)


def list_images(paths: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``paths`` (files, or folders searched recursively), in order,
    each file once (:func:`~sentiment_metric.recipes.datasets.base.image_files`)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = image_files(p)
            if not found:
                raise SentimentMetricError(f"folder {str(p)!r} holds no images")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise SentimentMetricError(f"{str(p)!r} does not exist")
    return unique_files(out)


class _Files(torch.utils.data.Dataset):
    """Image files with a transform; labels -1 unless given. An unreadable file raises
    :class:`UnreadableImageError` naming it (left out and reported by
    :func:`compute_embeddings`), or, with ``strict``, a plain error that stops the run."""

    def __init__(
        self,
        files: Sequence[Path],
        transform: Any,
        labels: Sequence[int] | None = None,
        strict: bool = False,
    ):
        self.files = list(files)
        self.transform = transform
        self.strict = strict
        self.targets = list(labels) if labels is not None else [-1] * len(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.files[i]) as im:
                img = im.convert("RGB")
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            reason = f"{type(err).__name__}: {err}"
            if self.strict:
                raise SentimentMetricError(
                    f"unreadable image {str(self.files[i])!r} ({reason}); strict stops here"
                ) from err
            raise UnreadableImageError(str(self.files[i]), reason) from err
        return self.transform(img), self.targets[i]


def _gallery(
    folder: Path, transform: Any, strict: bool = False
) -> tuple[Any, list[str], list[int]]:
    """An emotion ImageFolder when the sub-folders are emotions (labels known), else files."""
    if not folder.is_dir():
        raise SentimentMetricError(f"gallery {str(folder)!r} is not a folder")
    try:
        ds = EmotionImageFolder(folder, transform=transform, strict=strict)
        return ds, [p for p, _ in ds.samples], list(ds.targets)
    except SentimentMetricError:
        if strict and any(folder.iterdir()) and _has_emotion_folders(folder):
            raise
        files = list_images([folder])
        return _Files(files, transform, strict=strict), [str(f) for f in files], [-1] * len(files)


def _has_emotion_folders(folder: Path) -> bool:
    return any(p.is_dir() and p.name in MIKELS_WHEEL for p in folder.iterdir())


def _kept(res: dict[str, Any], items: Sequence[Any]) -> list[Any]:
    """The entries of ``items`` whose images were read (``res["indices"]``), in order."""
    return [items[int(i)] for i in res["indices"]]


def retrieve_images(
    checkpoint: str | Path,
    queries: Sequence[str | Path],
    gallery: str | Path,
    *,
    out: str | Path,
    k: int = 5,
    device: str = "auto",
    batch_size: int = 64,
    strict: bool = False,
) -> dict[str, Any]:
    """The top ``k`` gallery images of each query image; writes ``retrieval.md``,
    ``retrieval.json`` and ``retrieval.png`` (the grid) to ``out``.

    Args:
        checkpoint: a checkpoint written by training.
        queries: query image files or folders of them.
        gallery: a folder of images; when its sub-folders are emotions (an emotion
            ImageFolder) the results show each image's emotion and the grid frames them green
            (same emotion), orange (same polarity) or red (opposite polarity).
        out: the folder to write to.
        k: results per query.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        batch_size: images per forward.
        strict: an unreadable image is an error (default: left out and listed under
            ``"skipped"``; never replaced by another image).

    Returns:
        ``{"queries": [{"query": path, "results": [{"path", "distance", "emotion"}, ...]}],
        "skipped": [reason, ...]}``.
    """
    trained = load_trained(checkpoint, device)
    class_names, dev = trained.class_names, trained.device
    transform = eval_transform(trained.config.image_size)
    q_files = list_images(queries)
    g_ds, g_paths, g_labels = _gallery(Path(gallery), transform, strict)
    g_classes = list(getattr(g_ds, "classes", []) or [])
    if g_classes and any(c not in class_names for c in g_classes):
        raise SentimentMetricError(
            f"the gallery's emotions {g_classes} are not all among the model's {class_names}"
        )
    model = trained.model
    q_res = compute_embeddings(
        model, _Files(q_files, transform, strict=strict), batch_size=batch_size, device=dev
    )
    g_res = compute_embeddings(model, g_ds, batch_size=batch_size, device=dev)
    skipped = [r for _, r in q_res["skipped"]] + [r for _, r in g_res["skipped"]]
    q_files = _kept(q_res, q_files)
    g_index = _kept(g_res, list(range(len(g_paths))))  # row -> the gallery's own index
    g_paths, g_labels = _kept(g_res, g_paths), _kept(g_res, g_labels)
    if len(g_paths) < k:
        raise SentimentMetricError(f"k={k} but the gallery holds only {len(g_paths)} images")
    # gallery labels in the model's label order (for the level colours)
    g_lab_model = [class_names.index(g_classes[t]) if t >= 0 else -1 for t in g_labels]
    dist, idx = topk_neighbors(q_res["embeddings"], g_res["embeddings"], k)
    pred = q_res["logits"].argmax(1).tolist()

    results = _results(q_files, pred, dist, idx, g_paths, g_lab_model, class_names)
    table = _results_table(results, k)
    out_dir = Path(out)
    doc = {
        "checkpoint": str(checkpoint),
        "gallery": str(gallery),
        "k": k,
        "queries": results,
        "skipped": skipped,
    }
    write_json(out_dir / "retrieval.json", doc, indent=2)
    (out_dir / "retrieval.md").write_text(table)
    grid = _Grid(_Files(q_files, transform, strict=strict), g_ds, g_index, g_lab_model)
    _plot_grid(grid, q_files, pred, dist, idx, class_names, bool(g_classes), out_dir)
    doc["table"] = table
    return doc


class _Grid(NamedTuple):
    """What the retrieval figure reads: the query images, the gallery and its labels."""

    queries: Any
    gallery: Any
    gallery_index: list[int]
    gallery_labels: list[int]


def _plot_grid(
    grid: _Grid,
    q_files: list[Path],
    pred: list[int],
    dist: torch.Tensor,
    idx: torch.Tensor,
    class_names: list[str],
    emotion_gallery: bool,
    out_dir: Path,
) -> None:
    """``retrieval.png``: each query and its top ``k``, framed by level when the gallery's
    emotions are known."""
    rows = range(len(q_files))
    plot_retrieval(
        [grid.queries[i][0] for i in rows],
        [-1] * len(q_files),
        [[grid.gallery[grid.gallery_index[int(gi)]][0] for gi in idx[qi]] for qi in rows],
        [[grid.gallery_labels[int(gi)] for gi in idx[qi]] for qi in rows],
        dist.tolist(),
        class_names,
        out_dir / "retrieval.png",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        query_titles=[f"{qf.name}\n(pred. {class_names[pred[i]]})" for i, qf in enumerate(q_files)],
        level=MIKELS_WHEEL.relations(class_names).level if emotion_gallery else None,
    )


def _results(
    q_files: Sequence[Path],
    pred: Sequence[int],
    dist: torch.Tensor,
    idx: torch.Tensor,
    g_paths: Sequence[str],
    g_labels: Sequence[int],
    class_names: Sequence[str],
) -> list[dict[str, Any]]:
    """Per query: its path, predicted emotion and ``k`` results (path, distance, emotion)."""
    results = []
    for qi, qf in enumerate(q_files):
        row = []
        for j in range(idx.shape[1]):
            gi = int(idx[qi, j])
            lab = g_labels[gi]
            emotion = class_names[lab] if lab >= 0 else None
            row.append({"path": g_paths[gi], "distance": float(dist[qi, j]), "emotion": emotion})
        results.append(
            {"query": str(qf), "predicted_emotion": class_names[pred[qi]], "results": row}
        )
    return results


def _results_table(results: Sequence[dict[str, Any]], k: int) -> str:
    """The markdown table of :func:`_results`: one row per query."""
    lines = ["| query | predicted | " + " | ".join(f"#{j + 1}" for j in range(k)) + " |"]
    lines.append("|---|---|" + "---|" * k)
    for q in results:
        cells = [
            f"{os.path.basename(r['path'])} ({r['emotion'] + ', ' if r['emotion'] else ''}"
            f"{r['distance']:.3f})"
            for r in q["results"]
        ]
        name = Path(q["query"]).name
        lines.append(f"| {name} | {q['predicted_emotion']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _check_line_paths(paths: Sequence[str], out: Path) -> None:
    """``<stem>.paths.txt`` holds one path per line: a path with a line break would shift
    every later line against the embeddings."""
    bad = next((p for p in paths if "\n" in p or "\r" in p), None)
    if bad is not None:
        raise SentimentMetricError(
            f"out {str(out)!r}: the path {bad!r} holds a line break, which would desynchronise "
            "the one-path-per-line paths.txt; export to .pt or .npz instead"
        )


def _save_export(
    out: Path, emb: torch.Tensor, labels: torch.Tensor, paths: list[str], class_names: list[str]
) -> None:
    """Write the export atomically, file by file (a temporary file renamed over the target,
    as checkpoints are): a failed write (a full disk) leaves the previous export whole."""
    files: list[tuple[Path, Any]] = []
    if out.suffix == ".pt":
        blob = {"embeddings": emb, "labels": labels, "paths": paths, "class_names": class_names}
        files.append((out, lambda f: torch.save(blob, f)))
    elif out.suffix == ".npz":
        files.append((out, lambda f: np.savez(
            f, embeddings=emb.numpy(), labels=labels.numpy(), paths=np.asarray(paths),
            class_names=np.asarray(class_names),
        )))  # fmt: skip
    else:
        text = "".join(p + "\n" for p in paths).encode()
        files += [
            (out, lambda f: np.save(f, emb.numpy())),
            (out.with_name(out.stem + ".labels.npy"), lambda f: np.save(f, labels.numpy())),
            (out.with_name(out.stem + ".paths.txt"), lambda f: f.write(text)),
        ]
    for path, write in files:
        try:
            atomic_write(path, write)
        except (OSError, RuntimeError) as err:  # torch.save on a full disk: RuntimeError
            raise SentimentMetricError(
                f"out {str(path)!r} could not be written ({type(err).__name__}: {err}); the "
                "file that was there, if any, is left as it was"
            ) from err


def export_embeddings(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    size: int | None = None,
    device: str = "auto",
    batch_size: int = 128,
    strict: bool = False,
) -> dict[str, Any]:
    """Embed a dataset split (or image files) and save embeddings, labels and paths.

    ``out`` ending in ``.pt``: one ``torch.save`` dict (``embeddings`` ``(N, D)`` float32,
    ``labels`` ``(N,)`` int64 (``-1`` when unknown), ``paths``, ``class_names``). ``.npz``: the
    same arrays in one NumPy archive. ``.npy``: the embeddings, with
    ``<stem>.labels.npy`` and ``<stem>.paths.txt`` beside it.

    Args:
        checkpoint: a checkpoint written by training.
        out: the file to write (``.pt``, ``.npz`` or ``.npy``).
        dataset, root, split, size: which data (default: the checkpoint's dataset, test split).
        images: image files or folders instead of a dataset (labels -1).
        device, batch_size: where and how the model runs.
        strict: an unreadable image is an error (default: left out, never replaced by
            another image, and listed under ``"skipped"``).

    Returns:
        ``{"path": out, "num": N, "dim": D, "skipped": [reason, ...]}``.
    """
    out = Path(out)
    if out.suffix not in (".pt", ".npz", ".npy"):
        raise SentimentMetricError(f"out must end in .pt, .npz or .npy, got {str(out)!r}")
    trained = load_trained(checkpoint, device)
    config, class_names = trained.config, trained.class_names
    if images:
        files = list_images(images)
        ds: Any = _Files(files, eval_transform(config.image_size), strict=strict)
        paths = [str(f) for f in files]
    else:
        name = dataset or config.dataset
        ds = checkpoint_dataset(
            checkpoint, config, class_names, dataset, root, split, size=size, strict=strict
        )
        samples = getattr(ds, "samples", None)
        paths = (
            [str(p) for p, _ in samples]
            if samples is not None
            else [f"{name}:{split}:{i}" for i in range(len(ds))]
        )
    if out.suffix == ".npy":
        _check_line_paths(paths, out)
    res = compute_embeddings(trained.model, ds, batch_size=batch_size, device=trained.device)
    emb, labels, paths = res["embeddings"], res["labels"], _kept(res, paths)
    _save_export(out, emb, labels, paths, list(class_names))
    return {
        "path": str(out),
        "num": int(emb.shape[0]),
        "dim": int(emb.shape[1]),
        "skipped": [r for _, r in res["skipped"]],
    }
