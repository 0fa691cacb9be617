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
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import SentimentMetricError

__all__ = ["ABLATION_ROWS", "ablation_markdown", "run_ablation"]

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

_COLUMNS = [
    ("accuracy", "accuracy"),
    ("polarity_accuracy", "polarity acc."),
    ("mean_average_precision_at_r", "MAP@R"),
    ("wheel_ndcg_at_k", "wheel nDCG@{k}"),
    ("mean_wheel_distance_at_k", "wheel dist.@{k} ↓"),
]


def _mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def ablation_markdown(result: dict[str, Any]) -> str:
    """The markdown table of :func:`run_ablation`'s result."""
    k = result.get("k", 10)
    heads = [t.format(k=k) for _, t in _COLUMNS]
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
        f"{result.get('epochs')} epochs."
    )
    return "\n".join(lines) + "\n"


def run_ablation(
    base: Any,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    out: str | Path = "ablation",
    test_size: int | None = None,
    k: int = 10,
    rows: Sequence[str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Train and evaluate every ablation row for every seed; write ``ablation.json`` and
    ``ablation.md`` to ``out``.

    Args:
        base: the shared :class:`~sentiment_metric.recipes.train.TrainConfig` (dataset,
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
    from .evaluate import evaluate_model, resolve_device
    from .train import make_dataset, train

    if not seeds:
        raise SentimentMetricError("seeds must hold at least one seed")
    known = [name for name, _ in ABLATION_ROWS]
    chosen = list(rows) if rows else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise SentimentMetricError(f"unknown ablation row(s) {unknown}; known: {known}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(base.device)
    test_cache: dict[int, Any] = {}
    result_rows = []
    t_start = time.perf_counter()
    for name, overrides in ABLATION_ROWS:
        if name not in chosen:
            continue
        runs = []
        for seed in seeds:
            slug = name.replace(" ", "").replace("+", "_").replace(",", "_").replace("(", "")
            slug = slug.replace(")", "").replace("-", "")
            cfg = dataclasses.replace(
                base,
                **overrides,
                seed=int(seed),
                out=str(out_dir / "runs" / slug / f"seed{seed}"),
                resume=False,
            )
            t0 = time.perf_counter()
            res = train(cfg)
            if seed not in test_cache:
                test_cache[seed] = make_dataset(
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
                test_cache[seed],
                res.class_names,
                device=device,
                batch_size=cfg.batch_size,
                k=k,
            )
            scalars = {
                key: metrics[key]
                for key, v in metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            scalars["train_time_s"] = time.perf_counter() - t0
            runs.append({"seed": int(seed), **scalars})
            log(
                f"[ablation] {name} seed {seed}: "
                + ", ".join(
                    f"{t.format(k=k)} {scalars.get(key, float('nan')):.3f}" for key, t in _COLUMNS
                )
            )
        keys = sorted({key for r in runs for key in r if key != "seed"})
        mean, std = {}, {}
        for key in keys:
            mean[key], std[key] = _mean_std([r.get(key) for r in runs])
        result_rows.append(
            {"name": name, "overrides": overrides, "mean": mean, "std": std, "runs": runs}
        )
    result: dict[str, Any] = {
        "rows": result_rows,
        "seeds": [int(s) for s in seeds],
        "k": k,
        "dataset": base.dataset,
        "root": base.root,
        "backbone": base.backbone,
        "epochs": base.epochs,
        "test_size": len(next(iter(test_cache.values()))) if test_cache else test_size,
        "config": base.to_dict(),
        "wall_time_s": time.perf_counter() - t_start,
    }
    (out_dir / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "ablation.md").write_text(ablation_markdown(result))
    return result
