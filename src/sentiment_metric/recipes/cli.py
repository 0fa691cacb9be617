"""The ``sentiment-metric`` command: demo, train, evaluate, retrieve, embed, ablation.

``main(argv)`` returns the exit status: 0 on success, 1 for a bad value or path (one line on
stderr, never a traceback), 2 for a bad command line (argparse), 130 when interrupted.

Example:
    >>> from sentiment_metric.recipes.cli import build_parser
    >>> args = build_parser().parse_args(["demo", "--quick", "--out", "x"])
    >>> args.command, args.quick, args.out
    ('demo', True, 'x')
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .._checks import SentimentMetricError

__all__ = ["build_parser", "main", "run_demo"]

PROG = "sentiment-metric"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (``prog: error: message (see --help)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
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


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _dataset_names() -> list[str]:
    from .datasets import DATASETS

    return list(DATASETS)


# --------------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------------
def _add_train_options(p: argparse.ArgumentParser, *, ablation: bool = False) -> None:
    """Every TrainConfig field as an option; defaults are SUPPRESSed so that only the options
    actually given reach the config (which matters for ``--resume``)."""
    from .train import BACKBONES, LOSSES, STRATEGIES, TrainConfig

    d = TrainConfig()
    S = argparse.SUPPRESS
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        default=S,
        choices=_dataset_names(),
        help=f"dataset name (default {d.dataset!r}: generated, no download)",
    )
    g.add_argument("--root", default=S, help="the dataset's folder (not for 'textures')")
    g.add_argument(
        "--image-size", type=_positive_int, default=S, help=f"input size (default {d.image_size})"
    )
    g.add_argument(
        "--train-size",
        type=_positive_int,
        default=S,
        help="training images: generated count, or a stratified cap for folders (default all)",
    )
    if not ablation:
        g.add_argument(
            "--val-size", type=_nonneg_int, default=S, help="validation images (0: none)"
        )
    g.add_argument("--strict", action="store_true", default=S, help="unreadable image = error")
    g = p.add_argument_group("model")
    g.add_argument(
        "--backbone", choices=BACKBONES, default=S, help=f"backbone (default {d.backbone!r})"
    )
    g.add_argument("--layers", nargs="+", default=S, help="layers the sentiment vector taps")
    g.add_argument(
        "--weights",
        default=S,
        help="torchvision weights, e.g. DEFAULT (offline: trains from scratch, with a note)",
    )
    if not ablation:
        g.add_argument(
            "--embedding",
            choices=("sentiment", "fc"),
            default=S,
            help=f"embedding (default {d.embedding!r})",
        )
    g.add_argument(
        "--reduced-channels",
        type=_positive_int,
        default=S,
        help=f"N' per tapped layer (default {d.reduced_channels})",
    )
    g.add_argument(
        "--width",
        type=_positive_int,
        default=S,
        help=f"width of the 'small' backbone (default {d.width})",
    )
    g = p.add_argument_group("objective")
    if not ablation:
        g.add_argument("--loss", choices=LOSSES, default=S, help=f"objective (default {d.loss!r})")
        g.add_argument(
            "--strategy",
            choices=STRATEGIES,
            default=S,
            help=f"mining strategy (default {d.strategy!r})",
        )
    g.add_argument("--omega", type=_float, default=S, help=f"ω (default {d.omega})")
    g.add_argument(
        "--margins",
        type=_float,
        nargs=2,
        metavar=("ALPHA1", "ALPHA2"),
        default=S,
        help=f"sentiment-constraint margins (default {d.margins[0]} {d.margins[1]})",
    )
    g.add_argument("--triplet-margin", type=_float, default=S, help="PML triplet margin")
    g = p.add_argument_group("optimisation (defaults: see sentiment_metric.recipes.train)")
    g.add_argument("--epochs", type=_positive_int, default=S, help=f"(default {d.epochs})")
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        default=S,
        help=f"per process (default {d.batch_size})",
    )
    g.add_argument(
        "--m-per-class",
        type=_positive_int,
        default=S,
        help="images per emotion in a batch (default: >= 8, batch / C)",
    )
    g.add_argument("--steps-per-epoch", type=_positive_int, default=S)
    g.add_argument("--lr", type=_float, default=S, help=f"(default {d.lr})")
    g.add_argument("--head-lr-mult", type=_float, default=S, help=f"(default {d.head_lr_mult})")
    g.add_argument("--momentum", type=_float, default=S, help=f"(default {d.momentum})")
    g.add_argument("--weight-decay", type=_float, default=S, help=f"(default {d.weight_decay})")
    g.add_argument("--lr-step", type=_nonneg_int, default=S, help=f"(default {d.lr_step})")
    g.add_argument("--lr-gamma", type=_float, default=S, help=f"(default {d.lr_gamma})")
    g.add_argument("--no-amp", dest="amp", action="store_false", default=S, help="no AMP on CUDA")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default=S, help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--workers", type=_nonneg_int, default=S, help=f"(default {d.workers})")
    g.add_argument("--seed", type=_nonneg_int, default=S, help=f"(default {d.seed})")
    g.add_argument("--deterministic", action="store_true", default=S)
    if not ablation:
        g.add_argument("--eval-every", type=_nonneg_int, default=S, help="epochs (0: never)")
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", default=S, help="no progress bar"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``sentiment-metric`` argument parser."""
    p = _Parser(
        prog=PROG,
        description="Affective image retrieval and classification by deep metric learning "
        "(Yang et al., AAAI 2018). Start with `sentiment-metric demo`.",
    )
    from .. import __version__

    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser(
        "demo",
        help="train softmax vs sentiment-vector models on generated textures and compare",
        description="Trains a softmax-only model and the multi-task sentiment-vector model on "
        "generated affective textures (no download), prints a comparison table and writes "
        "metrics.json, embedding.png and retrieval.png.",
    )
    d.add_argument("--out", default="sentiment-metric-demo", help="output folder")
    d.add_argument("--quick", action="store_true", help="a tiny run (seconds), for tests")
    d.add_argument("--epochs", type=_positive_int, default=None, help="override the epochs")
    d.add_argument("--train-size", type=_positive_int, default=None, help="training images")
    d.add_argument("--test-size", type=_positive_int, default=None, help="test images")
    d.add_argument("--seed", type=_nonneg_int, default=0)
    d.add_argument("--device", default="auto")
    d.add_argument("--no-progress", dest="progress", action="store_false")

    t = sub.add_parser(
        "train",
        help="train a model on a dataset",
        description="Train SentimentModel with the multi-task loss (or an ablation objective). "
        "Writes <out>/last.pt every epoch, <out>/metrics.jsonl, <out>/config.json and, at "
        "the end, the test metrics to <out>/test/. Launch with torchrun for several GPUs.",
    )
    t.add_argument("--out", default=argparse.SUPPRESS, help="run folder (default runs/<dataset>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    t.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    t.add_argument("--test-size", type=_positive_int, default=None, help="test images (cap)")
    _add_train_options(t)

    e = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint: JSON + markdown + confusion matrix",
    )
    e.add_argument("checkpoint", help="a last.pt written by `sentiment-metric train`")
    e.add_argument("--dataset", choices=_dataset_names(), default=None)
    e.add_argument("--root", default=None)
    e.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    e.add_argument("--size", type=_positive_int, default=None, help="images (cap)")
    e.add_argument("--k", type=_positive_int, default=10, help="depth of the @k metrics")
    e.add_argument("--out", default=None, help="default: <checkpoint folder>/eval-<split>")
    e.add_argument("--device", default="auto")
    e.add_argument("--batch-size", type=_positive_int, default=128)
    e.add_argument("--workers", type=_nonneg_int, default=0)
    e.add_argument("--strict", action="store_true")

    r = sub.add_parser("retrieve", help="top k gallery images for query images: table + grid")
    r.add_argument("checkpoint")
    r.add_argument("--query", nargs="+", required=True, help="query image files or folders")
    r.add_argument("--gallery", required=True, help="folder of images (emotion sub-folders ok)")
    r.add_argument("--k", type=_positive_int, default=5)
    r.add_argument("--out", default="retrieval")
    r.add_argument("--device", default="auto")
    r.add_argument("--batch-size", type=_positive_int, default=64)

    m = sub.add_parser("embed", help="export embeddings + labels + paths (.pt, .npz or .npy)")
    m.add_argument("checkpoint")
    m.add_argument("--out", required=True, help="file ending in .pt, .npz or .npy")
    m.add_argument("--dataset", choices=_dataset_names(), default=None)
    m.add_argument("--root", default=None)
    m.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    m.add_argument("--size", type=_positive_int, default=None)
    m.add_argument("--images", nargs="+", default=None, help="image files/folders instead")
    m.add_argument("--device", default="auto")
    m.add_argument("--batch-size", type=_positive_int, default=128)
    m.add_argument("--strict", action="store_true")

    a = sub.add_parser(
        "ablation",
        help="the paper's ablation: 7 objectives, mean ± std over seeds",
    )
    a.add_argument("--out", default="ablation")
    a.add_argument("--seeds", type=_nonneg_int, nargs="+", default=None, help="default 0 1 2")
    a.add_argument("--quick", action="store_true", help="tiny sizes (seconds per row), for tests")
    a.add_argument("--test-size", type=_positive_int, default=None)
    a.add_argument("--k", type=_positive_int, default=10)
    a.add_argument("--rows", nargs="+", default=None, help="row names to run (default all)")
    _add_train_options(a, ablation=True)
    return p


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
_NOT_CONFIG = {
    "command",
    "out",
    "resume",
    "no_test",
    "test_size",
    "quick",
    "seeds",
    "k",
    "rows",
}


def _given(args: argparse.Namespace) -> dict[str, Any]:
    d = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}
    if "margins" in d:
        d["margins"] = tuple(d["margins"])
    return d


def _cmd_train(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint
    from .train import CHECKPOINT_NAME, TrainConfig, load_checkpoint, train

    given = _given(args)
    out = getattr(args, "out", None) or f"runs/{given.get('dataset', 'textures')}"
    if args.resume:
        ckpt = load_checkpoint(Path(out) / CHECKPOINT_NAME)
        base = TrainConfig.from_dict(ckpt["config"])
        config = dataclasses.replace(base, **given, out=out, resume=True)
        print(f"resuming {out} after epoch {ckpt['epoch']}", flush=True)
    else:
        config = TrainConfig(**given, out=out)
    t0 = time.perf_counter()
    result = train(config)
    if result.checkpoint is None:  # a non-zero rank under torchrun
        return 0
    print(f"trained in {time.perf_counter() - t0:.1f} s; checkpoint: {result.checkpoint}")
    if not args.no_test:
        metrics = evaluate_checkpoint(
            result.checkpoint,
            out=Path(out) / "test",
            size=args.test_size,
            device=config.device,
            batch_size=config.batch_size,
            strict=config.strict,
        )
        print(_headline(metrics))
        print(f"test metrics: {Path(out) / 'test' / 'metrics.json'}")
    return 0


def _headline(metrics: dict[str, Any]) -> str:
    from .evaluate import HEADLINE_METRICS

    k = metrics.get("k", 10)
    parts = []
    for key, name in HEADLINE_METRICS.items():
        v = metrics.get(key)
        if isinstance(v, (int, float)):
            parts.append(f"{name.format(k=k).split(' (')[0]} {v:.3f}")
    return "test: " + ", ".join(parts)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint, metrics_markdown

    out = args.out or str(Path(args.checkpoint).parent / f"eval-{args.split}")
    metrics = evaluate_checkpoint(
        args.checkpoint,
        out=out,
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        size=args.size,
        k=args.k,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        strict=args.strict,
    )
    print(metrics_markdown(metrics), end="")
    print(f"wrote {out}/metrics.json, metrics.md, confusion.png")
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from .retrieve import retrieve_images

    doc = retrieve_images(
        args.checkpoint,
        args.query,
        args.gallery,
        out=args.out,
        k=args.k,
        device=args.device,
        batch_size=args.batch_size,
    )
    print(doc["table"], end="")
    print(f"wrote {args.out}/retrieval.md, retrieval.json, retrieval.png")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .retrieve import export_embeddings

    info = export_embeddings(
        args.checkpoint,
        args.out,
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        images=args.images,
        size=args.size,
        device=args.device,
        batch_size=args.batch_size,
        strict=args.strict,
    )
    print(f"wrote {info['num']} embeddings of dimension {info['dim']} to {info['path']}")
    return 0


def _cmd_ablation(args: argparse.Namespace) -> int:
    from .ablation import ablation_markdown, run_ablation
    from .train import TrainConfig

    given = _given(args)
    base: dict[str, Any] = {"eval_every": 0, "val_size": 0}
    if args.quick:
        base.update(
            dataset="textures",
            backbone="small",
            width=8,
            image_size=32,
            train_size=128,
            epochs=1,
            batch_size=32,
            m_per_class=8,
            lr=0.05,
            head_lr_mult=1.0,
            workers=0,
            progress=False,
        )
    base.update(given)
    config = TrainConfig(**base)
    seeds = args.seeds if args.seeds is not None else ([0, 1] if args.quick else [0, 1, 2])
    test_size = args.test_size if args.test_size is not None else (64 if args.quick else None)
    result = run_ablation(
        config, seeds=seeds, out=args.out, test_size=test_size, k=args.k, rows=args.rows
    )
    print(ablation_markdown(result), end="")
    print(f"wrote {args.out}/ablation.md and ablation.json")
    return 0


# --------------------------------------------------------------------------------------------
# the demo
# --------------------------------------------------------------------------------------------
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
"""The demo's sizes: ``full`` fits about 5 minutes on 2 CPU cores; ``quick`` is for tests."""


def run_demo(
    out: str | Path = "sentiment-metric-demo",
    *,
    quick: bool = False,
    epochs: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Train softmax-only and multi-task sentiment-vector models on generated textures and
    compare them on the test split.

    Both models share the backbone (:func:`~sentiment_metric.recipes.train.small_convnet`),
    data, schedule and seed; the first uses the pooled (FC) features and cross-entropy, the
    second the Gram sentiment vector and ``(1 - ω)·CE + ω·sentiment constraints``. Writes
    ``metrics.json``, ``embedding.png`` (PCA of both models' test embeddings, coloured on the
    wheel) and ``retrieval.png`` (four queries and their top 5, sentiment-vector model) to
    ``out``, and returns the metrics document.

    The full setting (:data:`DEMO_SETTINGS`): 4096 training and 1024 test textures at 64 px,
    the small CNN at width 16 trained from scratch, batch 64 (8 per emotion), SGD with
    momentum 0.9 and weight decay 5e-4, learning rate 0.02 (x5 for the new layers), divided
    by 10 every 8 epochs, 20 epochs (about 100 s on 2 idle CPU cores). This is a
    from-scratch schedule chosen for the small CNN on a CPU, not the paper's fine-tuning
    schedule (the trainer's defaults). The retrieval metrics rank the L2-normalised
    embeddings of the test set against each other.
    """
    import torch

    from ..wheel import MIKELS_WHEEL
    from .evaluate import HEADLINE_METRICS, compute_embeddings, evaluate_embeddings
    from .plots import plot_embedding, plot_retrieval
    from .retrieve import topk_neighbors
    from .textures import TEXTURE_MEAN, TEXTURE_STD
    from .train import TrainConfig, make_dataset, train

    t_start = time.perf_counter()
    s = dict(DEMO_SETTINGS["quick" if quick else "full"])
    if epochs is not None:
        s["epochs"] = epochs
    if train_size is not None:
        s["train_size"] = train_size
    if test_size is not None:
        s["test_size"] = test_size
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
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
    models: dict[str, dict[str, Any]] = {
        "softmax": {"loss": "softmax", "embedding": "fc"},
        "sentiment vector (multi-task)": {"loss": "multitask", "embedding": "sentiment"},
    }
    test_ds = make_dataset(
        "textures", None, "test", s["image_size"], size=s["test_size"], seed=seed
    )
    class_names = list(test_ds.classes)
    results: dict[str, Any] = {}
    embeddings: dict[str, Any] = {}
    for name, overrides in models.items():
        slug = "softmax" if overrides["loss"] == "softmax" else "sentiment"
        run_dir = out_dir / "runs" / slug
        for stale in ("last.pt", "metrics.jsonl"):
            if (run_dir / stale).exists():
                (run_dir / stale).unlink()
        cfg = TrainConfig(**common, **overrides, out=str(run_dir))
        log(
            f"[demo] training {name} ({cfg.epochs} epochs, {cfg.train_size} images, "
            f"{cfg.image_size} px)..."
        )
        t0, c0 = time.perf_counter(), time.process_time()
        res = train(cfg)
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
        dev = next(res.model.parameters()).device
        emb = compute_embeddings(res.model, test_ds, batch_size=256, device=dev)
        metrics = evaluate_embeddings(
            emb["embeddings"], emb["logits"], emb["labels"], class_names, k=10
        )
        metrics["train_time_s"] = train_s
        metrics["train_cpu_time_s"] = train_cpu
        metrics["embedding_size"] = int(emb["embeddings"].shape[1])
        results[name] = metrics
        embeddings[name] = emb
        log(f"[demo] {name}: trained in {train_s:.1f} s")

    # comparison table
    k = 10
    names = list(models)
    heads = [HEADLINE_METRICS[key].format(k=k) for key in HEADLINE_METRICS]
    lines = ["| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for name in names:
        vals = [results[name].get(key) for key in HEADLINE_METRICS]
        lines.append(
            f"| {name} | "
            + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals)
            + " |"
        )
    winners = {}
    for key in HEADLINE_METRICS:
        a, b = (results[n].get(key) for n in names)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b:
            lower_better = key == "mean_wheel_distance_at_k"
            winners[key] = names[int((b < a) if lower_better else (b > a))]
        else:
            winners[key] = "tie"
    table = "\n".join(lines)

    # figures
    plot_embedding(
        None,
        None,
        class_names,
        out_dir / "embedding.png",
        panels={n: (embeddings[n]["embeddings"], embeddings[n]["labels"]) for n in names},
        title="test embeddings (PCA), coloured by place on Mikels' wheel",
    )
    best = names[1]
    emb = embeddings[best]
    labels = emb["labels"]
    queries = []
    for c in (0, 2, 4, 6):  # amusement, awe, fear, disgust: one per quarter of the wheel
        hits = (labels == c).nonzero().flatten()
        if len(hits):
            queries.append(int(hits[0]))
    q = torch.tensor(queries, dtype=torch.long)
    sims_d, sims_i = topk_neighbors(emb["embeddings"][q], emb["embeddings"], 6)
    res_idx, res_d = [], []
    for row in range(len(queries)):  # drop the query itself
        keep = [j for j in range(6) if int(sims_i[row, j]) != queries[row]][:5]
        res_idx.append([int(sims_i[row, j]) for j in keep])
        res_d.append([float(sims_d[row, j]) for j in keep])
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
    wall = time.perf_counter() - t_start
    doc = {
        "models": results,
        "winners": winners,
        "table": table,
        "settings": {**s, "seed": seed, "quick": quick},
        "wall_time_s": wall,
        "cpu_time_s": time.process_time(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    from .evaluate import _jsonable

    (out_dir / "metrics.json").write_text(json.dumps(_jsonable(doc), indent=2) + "\n")
    return doc


def _cmd_demo(args: argparse.Namespace) -> int:
    doc = run_demo(
        args.out,
        quick=args.quick,
        epochs=args.epochs,
        train_size=args.train_size,
        test_size=args.test_size,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    print()
    print(doc["table"])
    print()
    for key, who in doc["winners"].items():
        print(f"  {key}: {'tie' if who == 'tie' else who + ' better'}")
    print(
        f"\n{'Measured' if not args.quick else 'Quick run (not meaningful)'}: "
        f"{doc['settings']['train_size']} training / {doc['settings']['test_size']} test "
        f"images, {doc['settings']['epochs']} epochs; wall time {doc['wall_time_s']:.0f} s."
    )
    print(f"wrote {args.out}/metrics.json, embedding.png, retrieval.png")
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "retrieve": _cmd_retrieve,
    "embed": _cmd_embed,
    "ablation": _cmd_ablation,
}


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and getattr(err, "filename", None) and err.strerror:
        text = f"{err.strerror}: {err.filename!r}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, argparse errors (status 2)
        return int(exit_.code) if isinstance(exit_.code, int) else 2
    try:
        return _COMMANDS[args.command](args)
    except SentimentMetricError as err:
        print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except ImportError as err:  # an optional dependency is missing
        missing = getattr(err, "name", None) or _one_line(err)
        print(
            f"{PROG} {args.command}: error: the package {missing!r} is needed here and is not "
            "installed (pip install 'sentiment-metric[train]')",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
