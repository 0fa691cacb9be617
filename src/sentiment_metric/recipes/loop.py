"""The reference training loop: a plain PyTorch loop you can read top to bottom and copy.

What one run does (:func:`train`):

1. seeds Python, NumPy and torch (CPU and CUDA) from ``config.seed``;
2. builds the datasets (any name of the datasets registry, or datasets you pass in), reads the
   class names (``dataset.classes``) and so the wheel relations, **by name**;
3. samples batches with PML's M-per-class scheme
   (:class:`~sentiment_metric.recipes.distributed.DistributedMPerClassSampler`: batch 128, at
   least 8 images per emotion by default), sharded over processes under ``torchrun``;
4. trains a :class:`~sentiment_metric.SentimentModel` with the objective of
   :func:`~sentiment_metric.recipes.objective.build_objective` (by default
   :class:`~sentiment_metric.MultiTaskSentimentLoss`: softmax + sentiment constraints, mined
   by :class:`~sentiment_metric.SentimentSemiHardMiner`), SGD with momentum and a step decay
   of the learning rate, mixed precision (AMP) on CUDA;
5. after every epoch writes ``<out>/last.pt`` atomically (the model, optimizer, scheduler,
   AMP scaler, sampler, every random-number state (torch, CUDA, NumPy, Python, the
   miner's) and every metrics line so far), then appends the epoch's JSON line to
   ``<out>/metrics.jsonl``; ``resume=True`` continues **exactly** where it stopped and
   rewrites the log from the checkpoint, so after a kill at any point the log and the
   checkpoint agree. Temporary files left by an interrupted write are removed at start.

The defaults and their provenance: :mod:`sentiment_metric.recipes.config`.

Multi-GPU / multi-node: launch the same command with ``torchrun``; the loop reads ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``, uses NCCL on CUDA and gloo on CPU, wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel` and the metric loss and miner in PML's
``DistributedLossWrapper`` / ``DistributedMinerWrapper`` (so triplets are mined across the whole
global batch). ``batch_size`` is per process.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import SentimentMetricError
from .build import build_model, build_optimizer
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    CHECKPOINT_VERSION,
    RESUME_KEYS,
    atomic_save,
    check_checkpoint_keys,
    get_rng_state,
    load_checkpoint,
    seed_everything,
    seed_worker,
    set_rng_state,
)
from .config import TrainConfig
from .datasets import recipe_dataset
from .distributed import DistributedMPerClassSampler, init_distributed, process_rank, world_size
from .evaluate import evaluate_model
from .files import (
    append_jsonl,
    remove_stale_temporaries,
    truncate_jsonl,
    write_json,
    write_jsonl,
)
from .objective import TrainingObjective, build_objective

__all__ = ["METRICS_NAME", "TrainResult", "build_datasets", "train"]

METRICS_NAME = "metrics.jsonl"
"""The per-epoch metrics log inside a run's ``out`` folder."""

StepCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (unwrapped from DDP), in eval mode.
        checkpoint: path of the last checkpoint (``None`` on ranks other than 0).
        history: one dict of metrics per epoch trained in this call.
        class_names: the training set's class names, in label order.
        config: the configuration that ran.
    """

    model: nn.Module
    checkpoint: Path | None
    history: list[dict[str, Any]]
    class_names: list[str]
    config: TrainConfig


@dataclass
class _Run:
    """Everything one run holds while it trains."""

    config: TrainConfig
    device: torch.device
    model: nn.Module
    ddp_model: nn.Module
    objective: TrainingObjective
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: DistributedMPerClassSampler
    loader: torch.utils.data.DataLoader[Any]
    val_ds: Any | None
    class_names: list[str]
    rank: int = 0
    world: int = 1
    start_epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def use_amp(self) -> bool:
        return self.config.amp and self.device.type == "cuda"


def train(
    config: TrainConfig,
    train_dataset: Any | None = None,
    val_dataset: Any | None = None,
    *,
    model: nn.Module | None = None,
    step_callback: StepCallback | None = None,
    on_ready: Callable[[], object] | None = None,
) -> TrainResult:
    """Train one model as ``config`` says; see the module docstring for the steps.

    Args:
        config: the run's :class:`~sentiment_metric.recipes.config.TrainConfig`.
        train_dataset: a dataset with ``.classes``, ``.targets`` and ``ds[i] -> (image,
            label)``; ``None`` builds ``config.dataset`` from the registry.
        val_dataset: evaluated every ``config.eval_every`` epochs (rank 0); ``None`` builds
            the registry's validation split when ``train_dataset`` is also ``None``.
        model: a model returning ``(embedding, logits)``; ``None`` builds
            :func:`~sentiment_metric.recipes.build.build_model`. With ``resume`` it must
            match the checkpoint.
        step_callback: called after every optimizer step as ``(epoch, step, losses)``
            (``epoch`` from 0, ``step`` counted over the run); raising from it interrupts the
            run (the last checkpoint stays valid).
        on_ready: called once on the first process when the checks passed and the data,
            model and optimizer are built, before the first step (the CPU-cost notice).

    Returns:
        :class:`TrainResult`.
    """
    started_pg, device = init_distributed(config.device)
    try:
        run = _start(config, train_dataset, val_dataset, model, device)
        if on_ready is not None and run.is_main:
            on_ready()
        for epoch in range(run.start_epoch, config.epochs):
            _train_epoch(run, epoch, step_callback)
        run.model.eval()
        return TrainResult(
            model=run.model,
            checkpoint=Path(config.out) / CHECKPOINT_NAME if run.is_main else None,
            history=run.history,
            class_names=run.class_names,
            config=config,
        )
    finally:
        if started_pg and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def build_datasets(config: TrainConfig) -> tuple[Any, Any | None]:
    """The training and validation datasets the config names (validation may be ``None``).

    A split generated for a file dataset is written to ``<out>/split.json`` and reused.
    """
    common: dict[str, Any] = {
        "seed": config.seed,
        "split_file": Path(config.out) / "split.json",
        "strict": config.strict,
    }
    name, root, size = config.dataset, config.root, config.image_size
    train_ds = recipe_dataset(
        name, root, "train", size, train=True, size=config.train_size, **common
    )
    val_ds = None
    if config.val_size != 0 and config.eval_every:
        val_ds = recipe_dataset(name, root, "val", size, size=config.val_size, **common)
    return train_ds, val_ds


def _previous_checkpoint(config: TrainConfig, world: int) -> dict[str, Any] | None:
    """The checkpoint to resume from (``None`` for a new run), checked against ``config``."""
    path = Path(config.out) / CHECKPOINT_NAME
    if not config.resume:
        if path.exists():
            raise SentimentMetricError(
                f"{str(path)!r} exists: pass resume=True (--resume) to continue that run, "
                "or choose another out folder"
            )
        return None
    ckpt = load_checkpoint(path)
    check_checkpoint_keys(ckpt, RESUME_KEYS, "resume its run")
    if config.epochs < ckpt["epoch"]:  # refused before config.json is rewritten
        raise SentimentMetricError(
            f"resume: the run in {str(config.out)!r} has trained {ckpt['epoch']} epoch(s) but "
            f"epochs is {config.epochs}; pass epochs >= {ckpt['epoch']} (--epochs) to continue"
        )
    diff = config.resume_conflicts(TrainConfig.from_dict(ckpt["config"]))
    if diff:
        raise SentimentMetricError(
            "resume: these options differ from the checkpoint's (start a new run in "
            "another --out instead): " + "; ".join(diff)
        )
    if int(ckpt.get("world_size", 1)) != world:
        warnings.warn(
            f"resuming a run of {ckpt.get('world_size')} process(es) on {world}: the "
            "sampling differs from an uninterrupted run",
            stacklevel=3,
        )
    return ckpt


def _dataset_labels(dataset: Any) -> tuple[list[str], list[int]]:
    """``(class names, integer targets)`` of a training dataset, with clear errors."""
    name = type(dataset).__name__
    classes, targets = getattr(dataset, "classes", None), getattr(dataset, "targets", None)
    if not classes:
        raise SentimentMetricError(
            f"the dataset {name} has no .classes (class names in label order); the wheel "
            "reads classes by name"
        )
    if targets is None:
        raise SentimentMetricError(
            f"the dataset {name} has no .targets (integer labels); M-per-class sampling needs them"
        )
    names, labels = [str(x) for x in classes], [int(v) for v in targets]
    present = sorted(set(labels))
    if len(present) < 2:
        shown = [names[i] if 0 <= i < len(names) else i for i in present]
        raise SentimentMetricError(
            f"the dataset {name} holds {len(present)} class(es) {shown}: metric learning and "
            "its measures need at least 2 classes with images (one class would train nothing "
            "and score a perfect 1.0)"
        )
    return names, labels


def _sampler(
    config: TrainConfig, targets: list[int], n_classes: int, rank: int, world: int
) -> DistributedMPerClassSampler:
    """The M-per-class sampler of this process (``steps_per_epoch`` sets the epoch length)."""
    length = None
    if config.steps_per_epoch is not None:
        length = config.steps_per_epoch * config.batch_size * world
    return DistributedMPerClassSampler(
        targets,
        m=config.resolved_m_per_class(n_classes),
        batch_size=config.batch_size,
        length_before_new_iter=length,
        num_replicas=world,
        rank=rank,
        seed=config.seed,
    )


def _start(
    config: TrainConfig,
    train_ds: Any | None,
    val_ds: Any | None,
    model: nn.Module | None,
    device: torch.device,
) -> _Run:
    """Check the out folder, seed, build data, model, objective, optimizer; resume."""
    rank, world = process_rank(), world_size()
    if rank == 0:
        remove_stale_temporaries(config.out)
    ckpt = _previous_checkpoint(config, world)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(config.seed)
    if train_ds is None:
        train_ds, built_val = build_datasets(config)
        val_ds = val_ds if val_ds is not None else built_val
    class_names, targets = _dataset_labels(train_ds)
    if ckpt is not None and list(ckpt["class_names"]) != class_names:
        raise SentimentMetricError(
            f"resume: the dataset's classes {class_names} differ from the checkpoint's "
            f"{list(ckpt['class_names'])}"
        )
    if model is None:
        model = build_model(config, num_classes=len(class_names), load_weights=ckpt is None)
    model.to(device)
    objective = build_objective(config, class_names, distributed=world > 1).to(device)
    optimizer, scheduler = build_optimizer(config, model)
    sampler = _sampler(config, targets, len(class_names), rank, world)
    run = _Run(
        config=config,
        device=device,
        model=model,
        ddp_model=model,
        objective=objective,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda"),
        sampler=sampler,
        loader=_loader(train_ds, sampler, config, device),
        val_ds=val_ds,
        class_names=class_names,
        rank=rank,
        world=world,
    )
    if ckpt is not None:
        _restore(run, ckpt)
    if world > 1:
        run.ddp_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=config.loss in ("softmax", "triplet"),
        )
    if run.is_main:
        out = Path(config.out)
        write_json(out / "config.json", config.to_dict(), indent=2)
        if ckpt is None:  # a new run starts a new log
            write_jsonl(out / METRICS_NAME, [])
    return run


def _loader(
    dataset: Any, sampler: DistributedMPerClassSampler, config: TrainConfig, device: torch.device
) -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=seed_worker,
        persistent_workers=False,
    )


def _restore(run: _Run, ckpt: Mapping[str, Any]) -> None:
    """Load every state of the checkpoint; drop log lines written after it."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    run.sampler.load_state_dict(ckpt["sampler"])
    run.start_epoch = int(ckpt["epoch"])
    run.step = run.start_epoch * len(run.loader)
    rng = ckpt["rng"][run.rank] if run.rank < len(ckpt["rng"]) else ckpt["rng"][0]
    set_rng_state(rng, run.objective.generators)
    if run.is_main:
        log_path = Path(run.config.out) / METRICS_NAME
        if "log" in ckpt:  # the checkpoint carries every line up to its epoch
            run.log = [dict(r) for r in ckpt["log"]]
            write_jsonl(log_path, run.log)
        else:  # an older checkpoint: keep the lines up to its epoch
            truncate_jsonl(log_path, run.start_epoch)


def _train_epoch(run: _Run, epoch: int, step_callback: StepCallback | None) -> None:
    """One pass over the loader, then the epoch's record, validation and checkpoint."""
    from tqdm.auto import tqdm

    config = run.config
    run.sampler.set_epoch(epoch)
    run.ddp_model.train()
    sums = {"classification": 0.0, "metric": 0.0, "total": 0.0, "correct": 0.0, "seen": 0.0}
    t0 = time.perf_counter()
    bar = tqdm(
        run.loader,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not (config.progress and run.is_main),
        leave=False,
        dynamic_ncols=True,
    )
    for images, labels in bar:
        parts = _train_step(run, epoch, images, labels, sums)
        bar.set_postfix(loss=f"{parts.get('total', 0.0):.4f}")
        if step_callback is not None:
            step_callback(epoch, run.step, parts)
    bar.close()
    run.scheduler.step()
    record = _epoch_record(run, epoch, sums, time.perf_counter() - t0)
    _checkpoint(run, epoch, record)
    run.history.append(record)


def _train_step(
    run: _Run, epoch: int, images: torch.Tensor, labels: torch.Tensor, sums: dict[str, float]
) -> dict[str, float]:
    """One optimizer step; adds the batch's losses and hits to ``sums``; returns its parts."""
    images = images.to(run.device, non_blocking=True)
    labels = labels.to(run.device, non_blocking=True)
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        embeddings, logits = run.ddp_model(images)
    loss, losses = run.objective(embeddings.float(), logits.float(), labels)
    if not torch.isfinite(loss):
        raise SentimentMetricError(
            f"the loss became {float(loss)} at epoch {epoch + 1}, step {run.step + 1}; "
            "lower the learning rate (lr)"
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    parts = {k: float(v) for k, v in losses.items()}
    n = labels.shape[0]
    for k in ("classification", "metric", "total"):
        sums[k] += parts[k] * n
    sums["correct"] += int((logits.detach().argmax(1) == labels).sum())
    sums["seen"] += n
    return parts


def _epoch_record(
    run: _Run, epoch: int, sums: Mapping[str, float], elapsed: float
) -> dict[str, Any]:
    """The epoch's line of the metrics log (with validation metrics when it is due)."""
    config, seen = run.config, max(sums["seen"], 1)
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "step": run.step,
        "lr": run.optimizer.param_groups[0]["lr"],
        "loss": sums["total"] / seen,
        "loss_classification": sums["classification"] / seen,
        "loss_metric": sums["metric"] / seen,
        "train_accuracy": sums["correct"] / seen,
        "time_s": elapsed,
        "images_per_s": sums["seen"] * run.world / max(elapsed, 1e-9),
        "world_size": run.world,
    }
    due = config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs)
    if run.val_ds is not None and due and run.is_main:
        metrics = evaluate_model(
            run.model, run.val_ds, run.class_names, device=run.device, batch_size=config.batch_size
        )
        record.update({f"val_{k}": v for k, v in metrics.items() if _is_number(v)})
    return record


def _checkpoint(run: _Run, epoch: int, record: dict[str, Any]) -> None:
    """Gather every rank's RNG state; rank 0 writes ``last.pt`` and the log line."""
    rng_states = [get_rng_state(run.objective.generators)]
    if run.world > 1:
        gathered: list[Any] = [None] * run.world
        torch.distributed.all_gather_object(gathered, rng_states[0])
        rng_states = gathered
    if run.is_main:
        config = run.config
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "class_names": run.class_names,
            "epoch": epoch + 1,
            "step": run.step,
            "world_size": run.world,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "sampler": {"seed": run.sampler.seed, "epoch": epoch + 1},
            "rng": rng_states,
            "metrics": record,
            "log": [*run.log, record],
        }
        atomic_save(state, Path(config.out) / CHECKPOINT_NAME)
        run.log.append(record)
        append_jsonl(Path(config.out) / METRICS_NAME, record)
        if config.progress:
            print(_epoch_line(record), flush=True)
    if run.world > 1:
        torch.distributed.barrier()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _epoch_line(r: Mapping[str, Any]) -> str:
    s = (
        f"epoch {r['epoch']}: loss {r['loss']:.4f} (cls {r['loss_classification']:.4f}, "
        f"metric {r['loss_metric']:.4f}), train acc {r['train_accuracy']:.3f}, "
        f"{r['images_per_s']:.0f} img/s"
    )
    if "val_accuracy" in r:
        s += f", val acc {r['val_accuracy']:.3f}"
    if "val_mean_average_precision_at_r" in r:
        s += f", val MAP@R {r['val_mean_average_precision_at_r']:.3f}"
    return s
