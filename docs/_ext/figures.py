"""Figures drawn from the library's own objects when the docs are built (matplotlib, Agg).

Nothing here is committed as an image: ``sm_docs`` calls :func:`draw_all` at build time and
writes the PNGs under ``docs/_generated/`` (git-ignored).
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["draw_all", "draw_level_matrices", "draw_wheel"]

POSITIVE = ["#f4a259", "#f6c85f", "#e9d985", "#f28f3b"]
NEGATIVE = ["#5b8cbe", "#3d5a80", "#6c5b7b", "#8e7dbe"]


def draw_wheel(path: Path) -> None:
    """Mikels' wheel: the eight emotions in circular order, coloured by polarity.

    The arcs from *amusement* show the wheel distance ``dis = 1 + steps`` to every emotion.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Wedge

    import sentiment_metric as sm

    wheel = sm.MIKELS_WHEEL
    n = len(wheel.emotions)
    fig, ax = plt.subplots(figsize=(5.2, 5.2), dpi=110)
    ax.set_aspect("equal")
    ax.axis("off")
    step = 360.0 / n
    pos_i = neg_i = 0
    for i, emo in enumerate(wheel.emotions):
        # clockwise from the top: amusement first
        theta1 = 90 - (i + 1) * step
        theta2 = 90 - i * step
        if wheel.polarity(emo) == "positive":
            color = POSITIVE[pos_i % len(POSITIVE)]
            pos_i += 1
        else:
            color = NEGATIVE[neg_i % len(NEGATIVE)]
            neg_i += 1
        ax.add_patch(Wedge((0, 0), 1.0, theta1, theta2, width=0.42, fc=color, ec="white", lw=2))
        mid = math.radians((theta1 + theta2) / 2)
        ax.text(
            0.79 * math.cos(mid),
            0.79 * math.sin(mid),
            f"{emo}\n{i}",
            ha="center",
            va="center",
            fontsize=8.5,
            color="white" if wheel.polarity(emo) == "negative" else "#222222",
        )
        dis = wheel.dis("amusement", emo)
        ax.text(
            1.13 * math.cos(mid),
            1.13 * math.sin(mid),
            f"dis={dis}",
            ha="center",
            va="center",
            fontsize=7.5,
            color="#444444",
        )
    # polarity ring
    ax.add_patch(Wedge((0, 0), 0.55, -90, 90, width=0.08, fc="#f4a259", ec="white"))
    ax.add_patch(Wedge((0, 0), 0.55, 90, 270, width=0.08, fc="#3d5a80", ec="white"))
    ax.text(0.22, 0.0, "positive", ha="center", va="center", fontsize=9, color="#a0522d")
    ax.text(-0.22, 0.0, "negative", ha="center", va="center", fontsize=9, color="#3d5a80")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_title("Mikels' wheel (sm.MIKELS_WHEEL): position and dis from amusement", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_level_matrices(path: Path) -> None:
    """``level``, ``dis`` and ``θ = 1/dis`` in FI's alphabetical folder order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sentiment_metric as sm

    names = sorted(sm.MIKELS_WHEEL.emotions)  # FI's folders sort alphabetically
    rel = sm.MIKELS_WHEEL.relations(names)
    mats = [
        ("level (0 same, 1 relative, 2 negative)", rel.level.numpy(), "{:d}"),
        ("dis = 1 + steps", rel.dis.numpy(), "{:.0f}"),
        ("θ = 1 / dis (inverse_wheel)", rel.weights("inverse_wheel").numpy(), "{:.2f}"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.0), dpi=100)
    for ax, (title, m, fmt) in zip(axes, mats):
        lo, hi = float(m.min()), float(m.max())
        ax.imshow(m, cmap="YlOrBr" if "θ" not in title else "PuBu", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(names)), names, rotation=50, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for r in range(len(names)):
            for c in range(len(names)):
                v = m[r, c]
                dark = (float(v) - lo) / max(hi - lo, 1e-9) > 0.6
                text = fmt.format(int(v) if fmt == "{:d}" else v)
                color = "white" if dark else "black"
                ax.text(c, r, text, ha="center", va="center", fontsize=7, color=color)
    fig.suptitle("MIKELS_WHEEL.relations(sorted(emotions)): FI label order", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_all(out_dir: Path) -> list[Path]:
    """Draw every figure into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for name, fn in [
        ("mikels_wheel.png", draw_wheel),
        ("label_relations.png", draw_level_matrices),
    ]:
        path = out_dir / name
        fn(path)
        done.append(path)
    return done
