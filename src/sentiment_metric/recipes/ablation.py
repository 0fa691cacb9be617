"""The paper's ablation as one function: which part of the method buys what.

Rows (:data:`ABLATION_ROWS`), each trained with the same backbone, data, schedule and seeds:

1. ``softmax`` — cross-entropy only; retrieval on the pooled (FC) features;
2. ``triplet`` — PML's triplet loss only (semi-hard ``TripletMarginMiner``), FC features;
3. ``softmax + triplet`` — ``(1 - ω)·CE + ω·triplet``, FC features;
4. ``softmax + SC (FC)`` — the sentiment constraints on the FC features;
5. ``softmax + SC + SV, random`` — the sentiment vector, random mining;
6. ``softmax + SC + SV, hard`` — the sentiment vector, hard mining;
7. ``softmax + SC + SV, semi-hard`` — the full method (sentiment vector, semi-hard mining).

Each row is trained once per seed and evaluated on the test split; the table shows mean ± std
(sample standard deviation over seeds) of accuracy, polarity accuracy, MAP@R, wheel nDCG@k and
mean wheel distance@k.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import SentimentMetricError
from .config import TrainConfig
from .datasets import recipe_dataset
from .distributed import resolve_device
from .evaluate import evaluate_model, higher_is_better, plural
from .files import write_json
from .loop import train

__all__ = [
    "ABLATION_QUICK",
    "ABLATION_ROWS",
    "ablation_config",
    "ablation_markdown",
    "row_options",
    "run_ablation",
]

ABLATION_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("softmax", {"loss": "softmax", "embedding": "fc"}),
    ("triplet", {"loss": "triplet", "embedding": "fc"}),
    ("softmax + triplet", {"loss": "softmax+triplet", "embedding": "fc"}),
    ("softmax + SC (FC)", {"loss": "multitask", "embedding": "fc", "strategy": "semihard"}),
    (
        "softmax + SC + SV, random",
        {"loss": "multitask", "embedding": "sentiment", "strategy": "random"},
    ),
    (
        "softmax + SC + SV, hard",
        {"loss": "multitask", "embedding": "sentiment", "strategy": "hard"},
    ),
    (
        "softmax + SC + SV, semi-hard",
        {"loss": "multitask", "embedding": "sentiment", "strategy": "semihard"},
    ),
]
"""``(row name, TrainConfig overrides)``; SC: sentiment constraints, SV: sentiment vector."""

ABLATION_QUICK: dict[str, Any] = {
    "dataset": "textures",
    "backbone": "small",
    "width": 8,
    "image_size": 32,
    "train_size": 128,
    "epochs": 1,
    "batch_size": 32,
    "m_per_class": 8,
    "lr": 0.05,
    "head_lr_mult": 1.0,
    "workers": 0,
    "progress": False,
}
"""The tiny base of ``sentiment-metric ablation --quick`` (seconds per row, for tests)."""

_COLUMNS = [
    ("accuracy", "accuracy"),
    ("polarity_accuracy", "polarity acc."),
    ("mean_average_precision_at_r", "MAP@R"),
    ("wheel_ndcg_at_k", "wheel nDCG@{k}"),
    ("mean_wheel_distance_at_k", "wheel dist.@{k}"),
]

Log = Callable[[str], Any]


def row_options() -> set[str]:
    """The :class:`~sentiment_metric.recipes.config.TrainConfig` fields the rows set (and the
    ablation leaves out of its options): the rows' overrides, and no validation."""
    return {key for _, overrides in ABLATION_ROWS for key in overrides} | {"val_size", "eval_every"}


def ablation_config(given: Mapping[str, Any], *, quick: bool = False) -> TrainConfig:
    """The shared base config: no validation, :data:`ABLATION_QUICK` with ``quick``, then
    the options ``given``."""
    base: dict[str, Any] = {"eval_every": 0, "val_size": 0}
    if quick:
        base.update(ABLATION_QUICK)
    base.update(given)
    return TrainConfig(**base)


def _title(key: str, template: str, k: int) -> str:
    return template.format(k=k) + ("" if higher_is_better(key) else " ↓")


def _mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def ablation_markdown(result: dict[str, Any]) -> str:
    """The markdown table of :func:`run_ablation`'s result."""
    k = result.get("k", 10)
    heads = [_title(key, t, k) for key, t in _COLUMNS]
    lines = [
        "| row | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for row in result["rows"]:
        cells = [f"{row['mean'][key]:.3f} ± {row['std'][key]:.3f}" for key, _ in _COLUMNS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    seeds = result.get("seeds", [])
    lines.append("")
    lines.append(
        f"Mean ± std over {len(seeds)} seed(s) {seeds}; dataset {result.get('dataset')!r}, "
        f"test split ({result.get('test_size')} images), backbone {result.get('backbone')!r}, "
        f"{plural(int(result.get('epochs', 0)), 'epoch')}."
    )
    return "\n".join(lines) + "\n"


def run_ablation(
    base: TrainConfig,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    out: str | Path = "ablation",
    test_size: int | None = None,
    k: int = 10,
    rows: Sequence[str] | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Train and evaluate every ablation row for every seed; write ``ablation.json`` and
    ``ablation.md`` to ``out``.

    Args:
        base: the shared :class:`~sentiment_metric.recipes.config.TrainConfig` (dataset,
            backbone, schedule...); each row overrides ``loss``/``embedding``/``strategy``,
            ``seed`` and ``out``.
        seeds: one training per row and seed.
        out: the folder for the results (each run's checkpoint goes to
            ``out/runs/<row>/seed<s>``).
        test_size: images of the test split (cap, or the generated count); ``None``: all.
        k: the ``@k`` of the retrieval metrics.
        rows: names of the rows to run (default: all of :data:`ABLATION_ROWS`).
        log: a ``print``-like function for progress lines.

    Returns:
        ``{"rows": [{"name", "overrides", "mean", "std", "runs": [per-seed metrics]}],
        "seeds", "k", ...}`` (as written to ``ablation.json``).
    """
    if not seeds:
        raise SentimentMetricError("seeds must hold at least one seed")
    chosen = _chosen_rows(rows)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(base.device)
    test_sets: dict[int, Any] = {}
    result_rows = []
    t_start = time.perf_counter()
    for name, overrides in ABLATION_ROWS:
        if name not in chosen:
            continue
        runs = []
        for seed in seeds:
            cfg = dataclasses.replace(
                base,
                **overrides,
                seed=int(seed),
                out=str(out_dir / "runs" / _slug(name) / f"seed{seed}"),
                resume=False,
            )
            runs.append(_run_row_seed(cfg, test_sets, test_size, k, device))
            log(f"[ablation] {name} seed {seed}: " + _scores_line(runs[-1], k))
        result_rows.append(_summarise(name, overrides, runs))
    result: dict[str, Any] = {
        "rows": result_rows,
        "seeds": [int(s) for s in seeds],
        "k": k,
        "dataset": base.dataset,
        "root": base.root,
        "backbone": base.backbone,
        "epochs": base.epochs,
        "test_size": len(next(iter(test_sets.values()))) if test_sets else test_size,
        "config": base.to_dict(),
        "wall_time_s": time.perf_counter() - t_start,
    }
    write_json(out_dir / "ablation.json", result, indent=2)
    (out_dir / "ablation.md").write_text(ablation_markdown(result))
    return result


def _chosen_rows(rows: Sequence[str] | None) -> list[str]:
    known = [name for name, _ in ABLATION_ROWS]
    chosen = list(rows) if rows else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise SentimentMetricError(f"unknown ablation row(s) {unknown}; known: {known}")
    return chosen


def _slug(name: str) -> str:
    """A folder name for a row: ``softmax + SC + SV, hard`` -> ``softmax_SC_SV_hard``."""
    for old, new in ((" ", ""), ("+", "_"), (",", "_"), ("(", ""), (")", ""), ("-", "")):
        name = name.replace(old, new)
    return name


def _run_row_seed(
    cfg: TrainConfig,
    test_sets: dict[int, Any],
    test_size: int | None,
    k: int,
    device: torch.device,
) -> dict[str, Any]:
    """Train one row for one seed and evaluate it on that seed's test split (cached)."""
    t0 = time.perf_counter()
    res = train(cfg)
    if cfg.seed not in test_sets:
        test_sets[cfg.seed] = recipe_dataset(
            cfg.dataset,
            cfg.root,
            "test",
            cfg.image_size,
            size=test_size,
            seed=cfg.seed,
            split_file=Path(cfg.out) / "split.json",
            strict=cfg.strict,
        )
    metrics = evaluate_model(
        res.model,
        test_sets[cfg.seed],
        res.class_names,
        device=device,
        batch_size=cfg.batch_size,
        k=k,
    )
    scalars = {
        key: v
        for key, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    scalars["train_time_s"] = time.perf_counter() - t0
    return {"seed": cfg.seed, **scalars}


def _scores_line(run: Mapping[str, Any], k: int) -> str:
    return ", ".join(f"{_title(key, t, k)} {run.get(key, float('nan')):.3f}" for key, t in _COLUMNS)


def _summarise(
    name: str, overrides: Mapping[str, Any], runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """One row of the result: mean and sample std over the seeds of every scalar."""
    keys = sorted({key for r in runs for key in r if key != "seed"})
    mean, std = {}, {}
    for key in keys:
        mean[key], std[key] = _mean_std([r.get(key) for r in runs])
    return {"name": name, "overrides": overrides, "mean": mean, "std": std, "runs": runs}
