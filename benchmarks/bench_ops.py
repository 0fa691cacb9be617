"""Operator counts beside timings: how many ops (each at least one launch on a GPU) per step.

Question (issue 12): how many PyTorch operators does one call of the exhaustive loss, the miner,
miner + loss and the sentiment-vector head issue, against PML's semi-hard miner + triplet loss?
On a GPU every op is at least one kernel launch (~5–10 µs), so at small batches the op count,
not the arithmetic, sets the time; the count is the same on every device.

**Top-level op**: a ``torch.profiler`` event (eager mode, CPU activity) whose name starts with
``aten::`` and none of whose ancestors in the profiler's tree (``cpu_parent`` chain) is an
``aten::`` event, recorded during one call, forward and backward. Backward ops hang under the
autograd engine's ``autograd::engine::evaluate_function: …Backward…`` records (not ``aten::``),
so each of them counts too. A composite op (``aten::einsum``, ``aten::linalg_vector_norm``)
counts once however many ops it dispatches to, and a view counts like any other op; on CUDA
the table also gives the number of device kernels, which keeps the composites honest.
The step is counted after two warm-up calls (caches filled).

Methods (B = 128, D = 680, 8 balanced classes, default arguments of ours; PML's pair with
margin 0.2 as in ``bench_loss.py``/``bench_miner.py``):

- ``loss``: ``SentimentConstraintLoss`` forward + backward, exhaustive (every ranked triplet);
- ``miner``: ``SentimentSemiHardMiner`` alone (on detached embeddings);
- ``miner + loss``: the miner's triplets into the loss, forward + backward;
- ``PML miner + loss``: ``TripletMarginMiner("semihard")`` + ``TripletMarginLoss``, fwd+bwd;
- ``PML miner``: ``TripletMarginMiner("semihard")`` alone;
- ``head``: ``GramSentimentVector`` at GoogLeNet's taps (480×28×28, 832×14×14, 1024×7×7,
  N' = 16, batch 32; ``--quick``: 480×14×14, 832×7×7, 1024×4×4, batch 4; default arguments,
  so ``validate=True``: its read of the row norms replaces the norm floor's clamp and its
  backward mask, and costs no op over ``validate=False``, issue 18), forward +
  backward given the output's gradient (``out.backward(grad)``: the head's own ops), the
  features leaves requiring grad; ``head, .sum().backward()``: the same through a ``sum``
  (3 ops more: the sum, autograd's ``ones_like`` and its ``expand``), as issue 12 counted.

Each step starts with the gradients set to ``None`` (as ``optimizer.zero_grad()`` does), so
no gradient accumulation is counted. Targets (issue 12): loss <= 60, miner <= 30,
miner + loss <= 80, head <= 40. Timings: medians of interleaved runs.

    python benchmarks/bench_ops.py [--device cuda] [--quick] [--repeat N] [--threads N]
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pytorch_metric_learning import losses, miners
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

import sentiment_metric as sm

NAMES = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
DIM = 680
BATCH = 128
TAPS = [(480, 28, 28), (832, 14, 14), (1024, 7, 7)]  # GoogLeNet at 224 px
TAPS_QUICK = [(480, 14, 14), (832, 7, 7), (1024, 4, 4)]
TARGETS = {"loss": 60, "miner": 30, "miner + loss": 80, "head": 40}


def _is_top_level_aten(event: Any) -> bool:
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def count_ops(fn: Callable[[], Any], device: torch.device) -> dict[str, Any]:
    """Top-level ``aten::`` ops of one call of ``fn`` (and its CUDA kernels on a GPU)."""
    fn()
    fn()
    _common.sync(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        _common.sync(device)
    events = prof.events()
    names = collections.Counter(e.name for e in events if _is_top_level_aten(e))
    out: dict[str, Any] = {"ops": sum(names.values()), "by_name": dict(names.most_common())}
    if device.type == "cuda":
        out["cuda_kernels"] = sum(
            1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA
        )
    return out


def _metric_steps(device: torch.device) -> dict[str, Callable[[], Any]]:
    g = torch.Generator().manual_seed(BATCH)
    labels = (torch.arange(BATCH) % len(NAMES))[torch.randperm(BATCH, generator=g)].to(device)
    emb = torch.randn(BATCH, DIM, generator=g).to(device).requires_grad_(True)
    loss = sm.SentimentConstraintLoss(class_names=NAMES).to(device)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0).to(device)
    pml_miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    pml_loss = losses.TripletMarginLoss(margin=0.2)

    def step_loss() -> None:
        emb.grad = None
        loss(emb, labels).backward()

    def step_miner() -> None:
        miner(emb.detach(), labels)

    def step_miner_loss() -> None:
        emb.grad = None
        loss(emb, labels, miner(emb, labels)).backward()

    def step_pml() -> None:
        emb.grad = None
        pml_loss(emb, labels, pml_miner(emb, labels)).backward()

    def step_pml_miner() -> None:
        pml_miner(emb.detach(), labels)

    return {
        "loss": step_loss,
        "miner": step_miner,
        "miner + loss": step_miner_loss,
        "PML miner + loss": step_pml,
        "PML miner": step_pml_miner,
    }


def _head_steps(device: torch.device, quick: bool) -> tuple[dict[str, Callable[[], Any]], str]:
    taps, batch = (TAPS_QUICK, 4) if quick else (TAPS, 32)
    torch.manual_seed(0)
    # the defaults (validate=True): the check's read costs no op over validate=False
    head = sm.GramSentimentVector([c for c, _, _ in taps], reduced_channels=16)
    head = head.to(device)
    feats = [torch.randn(batch, c, h, w, device=device).requires_grad_(True) for c, h, w in taps]
    grad = torch.randn(batch, head.out_features, device=device)

    def zero() -> None:
        head.zero_grad(set_to_none=True)
        for f in feats:
            f.grad = None

    def step_head() -> None:
        zero()
        head(feats).backward(grad)

    def step_head_sum() -> None:
        zero()
        head(feats).sum().backward()

    shape = ", ".join(f"{c}×{h}×{w}" for c, h, w in taps)
    steps = {"head": step_head, "head, .sum().backward()": step_head_sum}
    return steps, f"batch {batch}, taps {shape}, N'=16"


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    device = _common.setup(args)
    steps = _metric_steps(device)
    head_steps, head_shape = _head_steps(device, args.quick)
    steps.update(head_steps)
    counts = {name: count_ops(fn, device) for name, fn in steps.items()}
    repeat = args.repeat or (30 if device.type == "cuda" else 5 if args.quick else 15)
    times = _common.interleaved(steps, device, warmup=2, repeat=repeat)
    cuda = device.type == "cuda"
    rows: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for name in steps:
        s = _common.summary(times[name])
        c = counts[name]
        target = TARGETS.get(name)
        met = "" if target is None else ("met" if c["ops"] <= target else "NOT met")
        rows.append({"method": name, **c, **s, "target_ops": target, "repeat": repeat})
        row = [name, c["ops"]]
        if cuda:
            row.append(c["cuda_kernels"])
        row += [
            "" if target is None else f"<= {target} ({met})",
            s["median_ms"],
            f"{s['q1_ms']:.3g}–{s['q3_ms']:.3g}",
        ]
        table.append(row)
    headers = ["method", "top-level aten ops"] + (["CUDA kernels"] if cuda else [])
    headers += ["target ops", "median ms", "IQR ms"]
    note = (
        f"One call each; B={BATCH}, D={DIM}, 8 balanced classes; head: {head_shape}. "
        "Forward+backward except the miners alone. Top-level op: an `aten::` profiler event "
        "with no `aten::` ancestor (see the script's docstring)."
    )
    _common.write_results(
        "bench_ops",
        device,
        rows,
        _common.markdown_table(headers, table) + "\n\n" + note,
        extra={"batch": BATCH, "dim": DIM, "head": head_shape, "quick": args.quick},
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
