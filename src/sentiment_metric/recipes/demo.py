"""``sentiment-metric demo``: softmax, softmax + PML's triplet loss and the recommended
sentiment constraints, on generated textures.

Every arm (:data:`DEMO_ARMS`) shares the backbone
(:func:`~sentiment_metric.models.small_convnet`), data, schedule and seeds, and is embedded by
its pooled (FC) features; they differ only in the objective. :func:`run_demo` trains them
with each seed (two by default: what fits in about two minutes on two CPU cores), compares
their mean ± std on one test split and writes ``metrics.json``, ``embedding.png`` and
``retrieval.png``. The efficacy study (``benchmarks/efficacy.py``, the docs' "Does it help?")
has five seeds, more data sets and the ablations.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import MIKELS_WHEEL
from ..errors import SentimentMetricError
from .config import TrainConfig
from .datasets import TEXTURE_MEAN, TEXTURE_STD, recipe_dataset
from .evaluate import (
    HEADLINE_METRICS,
    compute_embeddings,
    evaluate_embeddings,
    headline_title,
    higher_is_better,
    metric_label,
    plural,
)
from .files import jsonable, write_json
from .loop import train
from .plots import plot_embedding, plot_retrieval
from .retrieve import topk_neighbors

__all__ = ["DEMO_ARMS", "DEMO_SEEDS", "DEMO_SETTINGS", "demo_summary", "mean_metrics", "run_demo"]

DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "image_size": 64,
        "train_size": 4096,
        "test_size": 1024,
        "epochs": 20,
        "width": 16,
        "batch_size": 64,
        "lr": 0.02,
        "head_lr_mult": 5.0,
        "lr_step": 8,
    },
    "quick": {
        "image_size": 32,
        "train_size": 128,
        "test_size": 64,
        "epochs": 1,
        "width": 8,
        "batch_size": 32,
        "lr": 0.02,
        "head_lr_mult": 5.0,
        "lr_step": 10,
    },
}
"""The demo's sizes: ``full`` takes about a minute per seed on 2 CPU cores; ``quick`` is for
tests."""
DEMO_SEEDS = {"full": (0, 1), "quick": (0,)}
"""The default seeds of each setting."""

DEMO_ARMS: dict[str, dict[str, Any]] = {
    "softmax": {"loss": "softmax", "embedding": "fc"},
    "softmax + PML triplet": {"loss": "softmax+triplet", "embedding": "fc", "omega": 0.2},
    "sentiment constraints": {"loss": "multitask", "embedding": "fc", "strategy": "none"},
}
"""The compared models: table name -> :class:`~sentiment_metric.recipes.config.TrainConfig`
overrides. The last one is the recommended configuration (the first round of the efficacy
study's choice on the textures' validation split: the loss's own weighting ``θ = 1/dis``, every
ranked triplet, the pooled features); it is shown in ``retrieval.png``."""

CRM = " + CRM"
K = 10
"""The depth of the ``@k`` retrieval metrics."""

DEMO_CRM_WEIGHT = 4.0
"""The recommended arm is also read with conditional risk minimisation on the wheel (the
"+ CRM" row: no training, the same model's predictions and retrieval by least expected wheel
cost, :func:`~sentiment_metric.recipes.evaluate.evaluate_embeddings`'s ``crm_weight``); ``w``
is the efficacy study's validation choice."""

Log = Callable[[str], Any]


def run_demo(
    out: str | Path = "sentiment-metric-demo",
    *,
    quick: bool = False,
    epochs: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seeds: Sequence[int] | None = None,
    device: str = "auto",
    progress: bool = True,
    log: Log = print,
) -> dict[str, Any]:
    """Train every arm of :data:`DEMO_ARMS` with each of ``seeds`` (default
    :data:`DEMO_SEEDS`) on generated textures and compare their mean ± std on the test split
    (generated with the first seed; each seed draws its own training textures and
    initialisation).

    Writes ``metrics.json``, ``embedding.png`` (PCA of the arms' test embeddings, coloured on
    the wheel) and ``retrieval.png`` (four queries and their top 5, last arm), both of the
    first seed's models, to ``out``, and returns the metrics document.

    The full setting (:data:`DEMO_SETTINGS`): 4096 training and 1024 test textures at 64 px,
    the small CNN at width 16 trained from scratch, batch 64 (8 per emotion), SGD with
    momentum 0.9 and weight decay 5e-4, learning rate 0.02 (x5 for the new layers), divided
    by 10 every 8 epochs, 20 epochs (about a minute per seed on 2 idle CPU cores). This is a
    from-scratch schedule chosen for the small CNN on a CPU, not the paper's fine-tuning
    schedule (the trainer's defaults). The retrieval metrics rank the L2-normalised
    embeddings of the test set against each other.
    """
    t_start = time.perf_counter()
    s = dict(DEMO_SETTINGS["quick" if quick else "full"])
    overrides = {"epochs": epochs, "train_size": train_size, "test_size": test_size}
    s.update({key: v for key, v in overrides.items() if v is not None})
    seeds = list(DEMO_SEEDS["quick" if quick else "full"] if seeds is None else seeds)
    if not seeds:
        raise SentimentMetricError("seeds must name at least one seed")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_ds = recipe_dataset(
        "textures", None, "test", s["image_size"], size=s["test_size"], seed=seeds[0]
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in DEMO_ARMS}
    recommended = list(DEMO_ARMS)[-1]
    embeddings: dict[str, Any] = {}
    for seed in seeds:
        common = _common_config(s, seed, device, progress)
        for name, arm in DEMO_ARMS.items():
            metrics, emb = _train_arm(name, arm, common, out_dir, test_ds, log)
            runs[name].append(metrics)
            embeddings.setdefault(name, emb)  # the first seed's, for the figures
            if name == recommended:  # the same model, read by CRM (no training)
                crm = _crm_metrics(emb, list(test_ds.classes))
                runs.setdefault(f"{name}{CRM}", []).append(crm)
    _plot(out_dir, test_ds, list(DEMO_ARMS), embeddings)
    names = list(runs)
    results = {name: mean_metrics(runs[name]) for name in names}
    doc = {
        "models": results,
        "runs": runs,
        "winners": winners(results, names),
        "table": comparison_table(results, names),
        "settings": {**s, "seeds": seeds, "quick": quick},
        "wall_time_s": time.perf_counter() - t_start,
        "cpu_time_s": time.process_time(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    write_json(out_dir / "metrics.json", jsonable(doc), indent=2)
    return doc


def _common_config(s: Mapping[str, Any], seed: int, device: str, progress: bool) -> dict[str, Any]:
    """The :class:`~sentiment_metric.recipes.config.TrainConfig` fields every arm shares."""
    return {
        "dataset": "textures",
        "backbone": "small",
        "width": s["width"],
        "image_size": s["image_size"],
        "train_size": s["train_size"],
        "val_size": 0,
        "eval_every": 0,
        "epochs": s["epochs"],
        "batch_size": s["batch_size"],
        "m_per_class": s["batch_size"] // 8,
        "lr": s["lr"],
        "head_lr_mult": s["head_lr_mult"],
        "lr_step": s["lr_step"],
        "workers": 0,
        "seed": seed,
        "device": device,
        "progress": progress,
    }


def _train_arm(
    name: str,
    arm: Mapping[str, Any],
    common: Mapping[str, Any],
    out_dir: Path,
    test_ds: Any,
    log: Log,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Train one arm afresh in ``out/runs/<slug>-seed<seed>``; its test metrics and
    embeddings."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    run_dir = out_dir / "runs" / f"{slug}-seed{common['seed']}"
    for stale in ("last.pt", "metrics.jsonl"):
        if (run_dir / stale).exists():
            (run_dir / stale).unlink()
    cfg = TrainConfig(**common, **arm, out=str(run_dir))
    log(
        f"[demo] training {name}, seed {cfg.seed} ({plural(cfg.epochs, 'epoch')}, {cfg.train_size} "
        f"images, {cfg.image_size} px)..."
    )
    t0, c0 = time.perf_counter(), time.process_time()
    res = train(cfg)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    dev = next(res.model.parameters()).device
    emb = compute_embeddings(res.model, test_ds, batch_size=256, device=dev)
    metrics = evaluate_embeddings(
        emb["embeddings"], emb["logits"], emb["labels"], list(test_ds.classes), k=K
    )
    metrics["train_time_s"] = train_s
    metrics["train_cpu_time_s"] = train_cpu
    metrics["embedding_size"] = int(emb["embeddings"].shape[1])
    log(f"[demo] {name}: trained in {train_s:.1f} s")
    return metrics, emb


def _crm_metrics(emb: Mapping[str, torch.Tensor], class_names: list[str]) -> dict[str, Any]:
    """The recommended arm's test metrics read by conditional risk minimisation."""
    return evaluate_embeddings(
        emb["embeddings"], emb["logits"], emb["labels"], class_names, k=K,
        crm_weight=DEMO_CRM_WEIGHT,
    )  # fmt: skip


def mean_metrics(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of each numeric metric over ``runs`` (one dict per seed), and under ``"std"``
    their standard deviations (0 for one run); a metric a run has no value for (``None``,
    e.g. the share of errors across polarity without an error) is averaged over the others.

    Example:
        >>> m = mean_metrics([{"accuracy": 0.5}, {"accuracy": 0.7}])
        >>> round(m["accuracy"], 3), round(m["std"]["accuracy"], 3)
        (0.6, 0.141)
    """
    out: dict[str, Any] = {"std": {}}
    for key in dict.fromkeys(key for r in runs for key in r):
        vals = [float(r[key]) for r in runs if _is_number(r.get(key))]
        if vals:
            out[key] = statistics.fmean(vals)
            out["std"][key] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def comparison_table(results: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    """The markdown table of the headline metrics, one row per model (mean ± std when the
    results carry a spread over seeds)."""
    heads = [headline_title(key, K) for key in HEADLINE_METRICS]
    lines = ["| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for name in names:
        std = results[name].get("std") or {}
        cells = []
        for key in HEADLINE_METRICS:
            v = results[name].get(key)
            cell = f"{v:.3f}" if isinstance(v, float) else str(v)
            if std.get(key):
                cell += f" ± {std[key]:.3f}"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def winners(results: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> dict[str, str]:
    """For each headline metric, the best model (``"tie"`` when the best value is shared).

    Example:
        >>> winners({"a": {"accuracy": 0.5}, "b": {"accuracy": 0.7}}, ["a", "b"])["accuracy"]
        'b'
    """
    out = {}
    for key in HEADLINE_METRICS:
        vals = {n: results[n].get(key) for n in names}
        if not all(isinstance(v, (int, float)) for v in vals.values()):
            out[key] = "tie"
            continue
        sign = 1.0 if higher_is_better(key) else -1.0
        best = max(sign * float(v) for v in vals.values())  # type: ignore[arg-type]
        top = [n for n, v in vals.items() if sign * float(v) == best]  # type: ignore[arg-type]
        out[key] = top[0] if len(top) == 1 else "tie"
    return out


def _plot(out_dir: Path, test_ds: Any, names: Sequence[str], embeddings: Mapping[str, Any]) -> None:
    """``embedding.png`` (every arm) and ``retrieval.png`` (the last arm)."""
    class_names = list(test_ds.classes)
    plot_embedding(
        None,
        None,
        class_names,
        out_dir / "embedding.png",
        panels={n: (embeddings[n]["embeddings"], embeddings[n]["labels"]) for n in names},
        title="test embeddings (PCA), coloured by place on Mikels' wheel",
    )
    best = names[-1]
    emb, labels = embeddings[best]["embeddings"], embeddings[best]["labels"]
    queries, res_idx, res_d = _example_retrievals(emb, labels)
    plot_retrieval(
        [test_ds[i][0] for i in queries],
        [int(labels[i]) for i in queries],
        [[test_ds[i][0] for i in r] for r in res_idx],
        [[int(labels[i]) for i in r] for r in res_idx],
        res_d,
        class_names,
        out_dir / "retrieval.png",
        level=MIKELS_WHEEL.relations(class_names).level,
        mean=TEXTURE_MEAN,
        std=TEXTURE_STD,
        title=f"{best}: queries and their top 5 (frame: green same emotion, orange same "
        "polarity, red opposite)",
    )


def _example_retrievals(
    emb: torch.Tensor, labels: torch.Tensor
) -> tuple[list[int], list[list[int]], list[list[float]]]:
    """One query per quarter of the wheel and its top 5 (the query itself left out)."""
    queries = []
    for c in (0, 2, 4, 6):  # amusement, awe, fear, disgust: one per quarter of the wheel
        hits = (labels == c).nonzero().flatten()
        if len(hits):
            queries.append(int(hits[0]))
    q = torch.tensor(queries, dtype=torch.long)
    sims_d, sims_i = topk_neighbors(emb[q], emb, 6)
    res_idx, res_d = [], []
    for row in range(len(queries)):  # drop the query itself
        keep = [j for j in range(6) if int(sims_i[row, j]) != queries[row]][:5]
        res_idx.append([int(sims_i[row, j]) for j in keep])
        res_d.append([float(sims_d[row, j]) for j in keep])
    return queries, res_idx, res_d


def demo_summary(doc: Mapping[str, Any], out: str | Path) -> str:
    """What ``sentiment-metric demo`` prints after :func:`run_demo`: the table, the winners,
    the sizes and the files written."""
    s = doc["settings"]
    lines = ["", doc["table"], ""]
    lines += [
        f"  {metric_label(key, K)}: {'tie' if who == 'tie' else who + ' better'}"
        for key, who in doc["winners"].items()
    ]
    seeds = s["seeds"]
    n = "one seed" if len(seeds) == 1 else f"mean ± std over {len(seeds)} seeds"
    lines.append(
        f"\n{'Measured' if not s['quick'] else 'Quick run (not meaningful)'}: "
        f"{s['train_size']} training / {s['test_size']} test "
        f"images, {plural(s['epochs'], 'epoch')}, {n} ({', '.join(map(str, seeds))}); wall time "
        f"{doc['wall_time_s']:.0f} s. With so few seeds, differences within the spread mean "
        "little: five seeds, six studies and the hierarchy-aware objectives are in "
        "benchmarks/efficacy.py (docs: Does it help?)."
    )
    lines.append(f"wrote {out}/metrics.json, embedding.png, retrieval.png")
    return "\n".join(lines)
