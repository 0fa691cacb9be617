"""The commands of ``sentiment-metric``: each one's options and its work.

:mod:`~sentiment_metric.recipes.cli` parses the command line and imports this module only once
a command is named, so ``sentiment-metric --help`` and ``--version`` load no torch. Here each
command adds its options (:data:`COMMANDS`) and runs the recipe modules.

Example:
    >>> from sentiment_metric.recipes.cli import build_parser
    >>> args = build_parser().parse_args(["textures", "--out", "x"])
    >>> args.command, args.size, args.split
    ('textures', 80, 'test')
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .ablation import ablation_config, ablation_markdown, row_options, run_ablation
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import (
    TrainConfig,
    add_config_options,
    config_options_given,
    int_at_least,
)
from .datasets import DATASETS, SPLITS, AffectiveTextures
from .demo import demo_summary, run_demo
from .evaluate import HEADLINE_METRICS, evaluate_checkpoint, metrics_markdown
from .loop import train
from .notices import cpu_cost_notice, cpu_notice_due, not_learned_note
from .retrieve import export_embeddings, retrieve_images

__all__ = ["COMMANDS", "add_options", "run"]

Run = Callable[[argparse.Namespace], int]

_positive_int = int_at_least(1)
_nonneg_int = int_at_least(0)


def _add_demo(d: argparse.ArgumentParser) -> None:
    d.description = (
        "Trains three models that differ only in the objective (softmax; softmax + "
        "PML's triplet loss; softmax + the sentiment constraints), each embedding images by its "
        "pooled features, on generated affective textures (no download), and reads the last "
        "also by conditional risk minimisation on the wheel (the '+ CRM' row, no training); "
        "prints a mean ± std table and writes metrics.json, embedding.png and retrieval.png."
    )
    d.add_argument("--out", default="sentiment-metric-demo", help="output folder")
    d.add_argument("--quick", action="store_true", help="a tiny run (seconds), for tests")
    d.add_argument("--epochs", type=_positive_int, default=None, help="override the epochs")
    d.add_argument("--train-size", type=_positive_int, default=None, help="training images")
    d.add_argument("--test-size", type=_positive_int, default=None, help="test images")
    d.add_argument(
        "--seeds", type=_nonneg_int, nargs="+", default=None, help="default 0 1 (--quick: 0)"
    )
    d.add_argument("--device", default="auto")
    d.add_argument("--no-progress", dest="progress", action="store_false")


def _add_train(t: argparse.ArgumentParser) -> None:
    t.description = (
        "Train SentimentModel with the multi-task loss (or an ablation objective). "
        "Writes <out>/last.pt every epoch, <out>/metrics.jsonl, <out>/config.json and, at "
        "the end, the test metrics to <out>/test/. Launch with torchrun for several GPUs."
    )
    t.add_argument("--out", default=argparse.SUPPRESS, help="run folder (default runs/<dataset>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    t.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    t.add_argument("--test-size", type=_positive_int, default=None, help="test images (cap)")
    add_config_options(t)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--root``, ``--split``, ``--size`` of evaluate and embed."""
    p.add_argument("--dataset", choices=list(DATASETS), default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--split", default="test", choices=SPLITS)


def _add_evaluate(e: argparse.ArgumentParser) -> None:
    e.add_argument("checkpoint", help="a last.pt written by `sentiment-metric train`")
    _add_data_options(e)
    e.add_argument("--size", type=_positive_int, default=None, help="images (cap)")
    e.add_argument("--k", type=_positive_int, default=10, help="depth of the @k metrics")
    e.add_argument("--out", default=None, help="default: <checkpoint's folder>/eval-<split>")
    e.add_argument("--device", default="auto")
    e.add_argument("--batch-size", type=_positive_int, default=128)
    e.add_argument("--workers", type=_nonneg_int, default=0)
    e.add_argument("--strict", action="store_true")
    e.add_argument(
        "--crm-weight", type=float, default=None, metavar="W",
        help="read the model by conditional risk minimisation on the wheel: predictions of "
        "least expected wheel cost, retrieval by distance + W x expected cost (the efficacy "
        "study chose W=4)",
    )  # fmt: skip


def _add_retrieve(r: argparse.ArgumentParser) -> None:
    r.add_argument("checkpoint")
    r.add_argument("--query", nargs="+", required=True, help="query image files or folders")
    r.add_argument("--gallery", required=True, help="folder of images (emotion sub-folders ok)")
    r.add_argument("--k", type=_positive_int, default=5)
    r.add_argument("--out", default=None, help="default: <checkpoint's folder>/retrieval")
    r.add_argument("--device", default="auto")
    r.add_argument("--batch-size", type=_positive_int, default=64)
    r.add_argument("--strict", action="store_true", help="an unreadable image is an error")


def _add_embed(m: argparse.ArgumentParser) -> None:
    m.add_argument("checkpoint")
    m.add_argument("--out", required=True, help="file ending in .pt, .npz or .npy")
    _add_data_options(m)
    m.add_argument("--size", type=_positive_int, default=None)
    m.add_argument("--images", nargs="+", default=None, help="image files/folders instead")
    m.add_argument("--device", default="auto")
    m.add_argument("--batch-size", type=_positive_int, default=128)
    m.add_argument("--strict", action="store_true")


def _add_ablation(a: argparse.ArgumentParser) -> None:
    a.add_argument("--out", default="ablation")
    a.add_argument("--seeds", type=_nonneg_int, nargs="+", default=None, help="default 0 1 2")
    a.add_argument("--quick", action="store_true", help="tiny sizes (seconds per row), for tests")
    a.add_argument("--test-size", type=_positive_int, default=None)
    a.add_argument("--k", type=_positive_int, default=10)
    a.add_argument("--rows", nargs="+", default=None, help="row names to run (default all)")
    add_config_options(a, exclude=row_options())


def _add_textures(x: argparse.ArgumentParser) -> None:
    x.description = (
        "Writes the generated affective textures of one split as "
        "<out>/<emotion>/<split>-<index>.png: an emotion image folder for --gallery, --query "
        "or --dataset folder --root."
    )
    x.add_argument("--out", required=True, help="the folder to write (created)")
    x.add_argument("--split", default="test", choices=("train", "val", "test"))
    x.add_argument("--size", type=_positive_int, default=80, help="images (default 80)")
    x.add_argument("--image-size", type=_positive_int, default=64, help="pixels (default 64)")
    x.add_argument("--seed", type=_nonneg_int, default=0)


def _cmd_demo(args: argparse.Namespace) -> int:
    doc = run_demo(
        args.out,
        quick=args.quick,
        epochs=args.epochs,
        train_size=args.train_size,
        test_size=args.test_size,
        seeds=args.seeds,
        device=args.device,
        progress=args.progress,
    )
    print(demo_summary(doc, args.out))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    given = config_options_given(args)
    out = getattr(args, "out", None) or f"runs/{given.get('dataset', 'textures')}"
    if args.resume:
        ckpt = load_checkpoint(Path(out) / CHECKPOINT_NAME)
        base = TrainConfig.from_dict(ckpt["config"])
        config = dataclasses.replace(base, **given, out=out, resume=True)
        print(f"resuming {out} after epoch {ckpt['epoch']}", flush=True)
    else:
        config = TrainConfig(**given, out=out)
    due = not args.resume and cpu_notice_due(config, given)

    def notice() -> None:  # once the run's checks have passed
        print(cpu_cost_notice(config), file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = train(config, on_ready=notice if due else None)
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
        note = not_learned_note(metrics, result.class_names)
        if note:
            print(note)
        print(f"test metrics: {Path(out) / 'test' / 'metrics.json'}")
    return 0


def _headline(metrics: dict[str, Any]) -> str:
    k = metrics.get("k", 10)
    parts = []
    for key, name in HEADLINE_METRICS.items():
        v = metrics.get(key)
        if isinstance(v, (int, float)):
            parts.append(f"{name.format(k=k)} {v:.3f}")
    return "test: " + ", ".join(parts)


def _beside(checkpoint: str, out: str | None, name: str) -> Path:
    """Where a command that reads a checkpoint writes: ``out``, else ``name`` in the
    checkpoint's folder (the one rule of evaluate and retrieve)."""
    return Path(out) if out is not None else Path(checkpoint).parent / name


def _cmd_evaluate(args: argparse.Namespace) -> int:
    out = _beside(args.checkpoint, args.out, f"eval-{args.split}")
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
        crm_weight=args.crm_weight,
    )
    print(metrics_markdown(metrics), end="")
    _report_skipped(metrics.get("skipped", []))
    print(f"wrote {out / 'metrics.json'}, metrics.md, confusion.png")
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    out = _beside(args.checkpoint, args.out, "retrieval")
    doc = retrieve_images(
        args.checkpoint,
        args.query,
        args.gallery,
        out=out,
        k=args.k,
        device=args.device,
        batch_size=args.batch_size,
        strict=args.strict,
    )
    print(doc["table"], end="")
    _report_skipped(doc["skipped"])
    print(f"wrote {out / 'retrieval.md'}, retrieval.json, retrieval.png")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
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
    _report_skipped(info["skipped"])
    return 0


def _report_skipped(skipped: Sequence[str]) -> None:
    """Name on stderr every image left out (unreadable; never replaced by another)."""
    if skipped:
        print(f"left out {len(skipped)} unreadable image(s):", file=sys.stderr)
        for reason in skipped:
            print(f"  {reason}", file=sys.stderr)


def _cmd_ablation(args: argparse.Namespace) -> int:
    config = ablation_config(config_options_given(args), quick=args.quick)
    seeds = args.seeds if args.seeds is not None else ([0, 1] if args.quick else [0, 1, 2])
    test_size = args.test_size if args.test_size is not None else (64 if args.quick else None)
    result = run_ablation(
        config, seeds=seeds, out=args.out, test_size=test_size, k=args.k, rows=args.rows
    )
    print(ablation_markdown(result), end="")
    print(f"wrote {args.out}/ablation.md and ablation.json")
    return 0


def _cmd_textures(args: argparse.Namespace) -> int:
    ds = AffectiveTextures(
        num_images=args.size, image_size=args.image_size, seed=args.seed, split=args.split
    )
    files = ds.save_images(args.out)
    folders = len({f.parent for f in files})
    print(f"wrote {len(files)} images in {folders} emotion folders to {Path(args.out)}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Run]] = {
    "demo": (_add_demo, _cmd_demo),
    "train": (_add_train, _cmd_train),
    "evaluate": (_add_evaluate, _cmd_evaluate),
    "retrieve": (_add_retrieve, _cmd_retrieve),
    "embed": (_add_embed, _cmd_embed),
    "ablation": (_add_ablation, _cmd_ablation),
    "textures": (_add_textures, _cmd_textures),
}
"""Each command's options (added to the parser :mod:`~.cli` made for it) and its work."""


def add_options(command: str, parser: argparse.ArgumentParser) -> None:
    """Add ``command``'s description and options to its sub-parser."""
    COMMANDS[command][0](parser)


def run(args: argparse.Namespace) -> int:
    """Do the command ``args.command`` names; its exit status."""
    return COMMANDS[args.command][1](args)
