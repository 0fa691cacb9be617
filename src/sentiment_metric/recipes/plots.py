"""Figures written by the recipes: embedding map, retrieval grid, confusion matrix.

Everything here draws on a bare :class:`matplotlib.figure.Figure` (no ``pyplot`` global state,
no display needed) and writes a PNG. Colours follow the emotion wheel: each emotion gets the
hue of its place on the circle, so neighbouring emotions get neighbouring colours and a map
where the colours run round in order is a map that learned the wheel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .. import MIKELS_WHEEL, EmotionWheel, SentimentMetricError

__all__ = [
    "image_to_display",
    "legend_label",
    "pca_2d",
    "plot_confusion_matrix",
    "plot_embedding",
    "plot_retrieval",
    "wheel_colors",
]

LEVEL_COLORS = {0: "#1a9850", 1: "#fdae61", 2: "#d73027"}
"""Frame colours in retrieval grids: same emotion, same polarity, opposite polarity."""


def _figure(width: float, height: float, layout: Literal["constrained"] | None = None) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def wheel_colors(
    class_names: Sequence[str], wheel: EmotionWheel | None = None
) -> list[tuple[float, float, float]]:
    """One RGB colour per class: the hue of the class's place on the wheel.

    Class names unknown to the wheel get grey.

    Example:
        >>> cols = wheel_colors(["amusement", "anger", "fear"])
        >>> len(cols), all(0.0 <= c <= 1.0 for rgb in cols for c in rgb)
        (3, True)
    """
    from matplotlib.colors import hsv_to_rgb

    wheel = MIKELS_WHEEL if wheel is None else wheel
    out: list[tuple[float, float, float]] = []
    for name in class_names:
        if name in wheel:
            hue = wheel.index(name) / len(wheel)
            r, g, b = hsv_to_rgb((hue, 0.75, 0.85))
            out.append((float(r), float(g), float(b)))
        else:
            out.append((0.5, 0.5, 0.5))
    return out


def legend_label(name: str, wheel: EmotionWheel | None = None) -> str:
    """A class's legend entry: its name and polarity group (the hues alone do not say it).

    Example:
        >>> legend_label("awe"), legend_label("anger"), legend_label("cat")
        ('awe (positive)', 'anger (negative)', 'cat')
    """
    wheel = MIKELS_WHEEL if wheel is None else wheel
    return f"{name} ({wheel.polarity(name)})" if name in wheel else name


def pca_2d(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Project ``(N, D)`` rows on their first two principal components -> ``(N, 2)``.

    Plain SVD of the centred data (no scikit-learn needed); signs fixed so the largest
    loading of each component is positive, which makes the picture deterministic.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> pca_2d(torch.randn(10, 5, generator=g)).shape
        (10, 2)
    """
    a = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if a.dim() != 2 or a.shape[0] == 0:
        raise SentimentMetricError(f"x must be a non-empty (N, D) array, got {tuple(a.shape)}")
    a = a - a.mean(dim=0, keepdim=True)
    if a.shape[1] == 1:
        return torch.cat([a, torch.zeros_like(a)], dim=1).numpy()
    _, _, vh = torch.linalg.svd(a, full_matrices=False)
    comps = vh[:2]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    proj = a @ comps.T
    if proj.shape[1] < 2:
        proj = torch.cat([proj, torch.zeros(proj.shape[0], 2 - proj.shape[1])], dim=1)
    return proj.numpy()


def image_to_display(
    image: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """A ``(3, H, W)`` image tensor as an ``(H, W, 3)`` array in ``[0, 1]`` for ``imshow``.

    With ``mean``/``std`` (the normalisation the transform applied) it is undone; without,
    the image is rescaled by its own min and max (one scale for all channels, so hues keep).

    Example:
        >>> image_to_display(torch.zeros(3, 4, 5)).shape
        (4, 5, 3)
    """
    x = image.detach().to("cpu", torch.float32)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    if mean is not None and std is not None:
        m = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        s = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)
        x = x * s + m
    elif x.numel() > 0 and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / max(hi - lo, 1e-8)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def plot_embedding(
    embeddings: torch.Tensor | np.ndarray | None,
    labels: torch.Tensor | np.ndarray | Sequence[int] | None,
    class_names: Sequence[str],
    path: str | Path,
    *,
    wheel: EmotionWheel | None = None,
    title: str | None = None,
    panels: dict[str, tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]] | None = None,
) -> Path:
    """Scatter the 2-D PCA projection of embeddings, coloured by emotion on the wheel.

    Args:
        embeddings: ``(N, D)`` embeddings (ignored when ``panels`` is given).
        labels: ``(N,)`` integer labels indexing ``class_names``.
        class_names: the class names in label order.
        path: the PNG to write.
        wheel: the wheel that gives the colours (default Mikels').
        title: figure title.
        panels: several embeddings side by side, ``{panel title: (embeddings, labels)}``.

    Returns:
        The path written.
    """
    if panels is None:
        if embeddings is None or labels is None:
            raise SentimentMetricError("give embeddings and labels, or panels")
        panels_ = {title or "embedding": (embeddings, labels)}
    items = panels if panels is not None else panels_
    colors = wheel_colors(class_names, wheel)
    fig = _figure(5.0 * len(items) + 3.0, 5.0)
    for i, (name, (emb, lab)) in enumerate(items.items()):
        ax = fig.add_subplot(1, len(items), i + 1)
        xy = pca_2d(emb)
        lab_np = np.asarray(torch.as_tensor(np.asarray(lab)).cpu().numpy())
        for c, cname in enumerate(class_names):
            sel = lab_np == c
            if sel.any():
                label = legend_label(cname, wheel)
                ax.scatter(xy[sel, 0], xy[sel, 1], s=10, color=colors[c], label=label, alpha=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        loc="center right",
        fontsize=8,
        markerscale=2,
        frameon=False,
        title="emotion (polarity)",
        title_fontsize=8,
    )
    if panels and title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(right=1.0 - 2.8 / (5.0 * len(items) + 3.0), wspace=0.08)
    path = Path(path)
    fig.savefig(path)
    return path


def plot_retrieval(
    query_images: Sequence[torch.Tensor],
    query_labels: Sequence[int],
    result_images: Sequence[Sequence[torch.Tensor]],
    result_labels: Sequence[Sequence[int]],
    result_distances: Sequence[Sequence[float]],
    class_names: Sequence[str],
    path: str | Path,
    *,
    level: torch.Tensor | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
    query_titles: Sequence[str] | None = None,
) -> Path:
    """A grid like the paper's retrieval figure: one query per row, then its top ``k``.

    Each retrieved image is captioned with its emotion and distance; with ``level`` (the
    ``(C, C)`` relation levels) its frame is green (same emotion), orange (same polarity)
    or red (opposite polarity). Labels of ``-1`` mean unknown (no caption colour).

    Returns:
        The path written.
    """
    fig = _retrieval_figure(
        query_images,
        query_labels,
        result_images,
        result_labels,
        result_distances,
        class_names,
        level=level,
        mean=mean,
        std=std,
        title=title,
        query_titles=query_titles,
    )
    path = Path(path)
    fig.savefig(path)
    return path


def _retrieval_figure(
    query_images: Sequence[torch.Tensor],
    query_labels: Sequence[int],
    result_images: Sequence[Sequence[torch.Tensor]],
    result_labels: Sequence[Sequence[int]],
    result_distances: Sequence[Sequence[float]],
    class_names: Sequence[str],
    *,
    level: torch.Tensor | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    title: str | None,
    query_titles: Sequence[str] | None,
) -> Any:
    """The figure of :func:`plot_retrieval` (constrained layout: no title overlaps the row
    above)."""
    n = len(query_images)
    if n == 0:
        raise SentimentMetricError("plot_retrieval needs at least one query")
    k = max((len(r) for r in result_images), default=0)
    fig = _figure(1.7 * (k + 1) + 0.3, 2.1 * n + (0.4 if title else 0.0), layout="constrained")

    def name_of(label: int) -> str:
        return class_names[label] if 0 <= label < len(class_names) else "?"

    for row in range(n):
        ax = fig.add_subplot(n, k + 1, row * (k + 1) + 1)
        ax.imshow(image_to_display(query_images[row], mean, std))
        q_lab = int(query_labels[row])
        qt = query_titles[row] if query_titles is not None else f"query: {name_of(q_lab)}"
        ax.set_title(qt, fontsize=8, fontweight="bold")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_linewidth(2.5)
        for j in range(len(result_images[row])):
            ax = fig.add_subplot(n, k + 1, row * (k + 1) + j + 2)
            ax.imshow(image_to_display(result_images[row][j], mean, std))
            r_lab = int(result_labels[row][j])
            ax.set_title(f"{name_of(r_lab)}\nd={float(result_distances[row][j]):.3g}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if level is not None and q_lab >= 0 and r_lab >= 0:
                color = LEVEL_COLORS[int(level[q_lab, r_lab])]
                for spine in ax.spines.values():
                    spine.set_edgecolor(color)
                    spine.set_linewidth(3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_confusion_matrix(
    matrix: torch.Tensor | np.ndarray | Sequence[Sequence[float]],
    class_names: Sequence[str],
    path: str | Path,
    *,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Heat map of a ``(C, C)`` confusion matrix (rows: true, columns: predicted).

    With ``normalize`` each row is divided by its total (recall per class on the diagonal).

    Returns:
        The path written.
    """
    m = np.asarray(torch.as_tensor(np.asarray(matrix, dtype=np.float64)).numpy())
    c = len(class_names)
    if m.shape != (c, c):
        raise SentimentMetricError(
            f"matrix must have shape ({c}, {c}) for {c} class names, got {m.shape}"
        )
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    fig = _figure(1.0 + 0.65 * c, 0.8 + 0.6 * c)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    hi = float(m.max()) if m.size else 1.0
    for i in range(c):
        for j in range(c):
            txt = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(
                j,
                i,
                txt,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > 0.6 * hi else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or "confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path
