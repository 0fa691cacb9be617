"""A full training step of the paper's model: images/s, and the share of its parts.

``SentimentModel("googlenet")`` (random init, three inception taps, N' = 16, 408-d sentiment
vector) with ``MultiTaskSentimentLoss`` (ω = 0.2, ``SentimentConstraintLoss`` mined by
``SentimentSemiHardMiner``), SGD (momentum 0.9), batch 32 (8 emotions x 4), at 224 and 112 px
(``--quick``: batch 8, 112 px only). On CUDA the step runs under AMP (float16 autocast,
``GradScaler``), as the trainer does.

Timed in the same run, interleaved (round-robin), medians:

- ``full step``: forward, loss (with mining), backward, optimizer step, as in
  ``sentiment_metric.recipes.loop``; ``images/s = batch / time``;
- ``softmax step``: the same backbone with ``embedding="fc"`` and cross-entropy only (the
  baseline the method adds to);
- ``sentiment vector``: the ``GramSentimentVector`` head alone, forward + backward, on the
  tapped feature maps of this batch;
- ``miner``: ``SentimentSemiHardMiner`` on the batch's embeddings (no gradient);
- ``loss``: ``SentimentConstraintLoss`` forward + backward on the mined triplets, plus the
  cross-entropy forward + backward on the logits.

The share column is each part's median over the full step's median (the parts are timed
separately, so shares need not add to 100 %; the rest is the backbone and the optimizer).

    python benchmarks/bench_train_step.py [--device cuda] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

import sentiment_metric as sm

NUM_CLASSES = 8


def bench_size(size: int, batch: int, device: torch.device, repeat: int) -> list[dict[str, Any]]:
    cuda = device.type == "cuda"
    names = list(sm.MIKELS_WHEEL.emotions)
    torch.manual_seed(0)
    model = sm.SentimentModel("googlenet", num_classes=NUM_CLASSES).to(device).train()
    base = sm.SentimentModel("googlenet", num_classes=NUM_CLASSES, embedding="fc")
    base = base.to(device).train()
    metric = sm.SentimentConstraintLoss(class_names=names)
    miner = sm.SentimentSemiHardMiner(class_names=names, seed=0)
    loss_fn = sm.MultiTaskSentimentLoss(omega=0.2, metric_loss=metric, miner=miner).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    opt_b = torch.optim.SGD(base.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    scaler_b = torch.amp.GradScaler("cuda", enabled=cuda)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = (torch.arange(batch, device=device) % NUM_CLASSES).sort().values

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=cuda)

    def full_step() -> None:
        with autocast():
            emb, logits = model(images)
        loss = loss_fn(emb.float(), logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def softmax_step() -> None:
        with autocast():
            _, logits = base(images)
        loss = F.cross_entropy(logits.float(), labels)
        opt_b.zero_grad(set_to_none=True)
        scaler_b.scale(loss).backward()
        scaler_b.step(opt_b)
        scaler_b.update()

    # the tapped feature maps of this batch, captured once by our own hooks
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.backbone.named_modules())
    hooks = [
        modules[n].register_forward_hook(
            lambda _m, _i, out, n=n: captured.__setitem__(n, out.detach())
        )
        for n in model.layers
    ]
    with torch.no_grad(), autocast():
        emb0, logits0 = model(images)
    for h in hooks:
        h.remove()
    feats = [captured[n].clone().requires_grad_(True) for n in model.layers]
    head = model.head
    assert head is not None
    emb_fixed = emb0.float().detach()
    logits_fixed = logits0.float().detach()

    def sv_step() -> None:
        with autocast():
            out = head(feats)
        out.float().sum().backward()

    def miner_step() -> None:
        with torch.no_grad():
            miner(emb_fixed, labels)

    triplets = miner(emb_fixed, labels)

    def loss_step() -> None:
        e = emb_fixed.clone().requires_grad_(True)
        z = logits_fixed.clone().requires_grad_(True)
        (0.8 * F.cross_entropy(z, labels) + 0.2 * metric(e, labels, triplets)).backward()

    fns = {
        "full step": full_step,
        "softmax step": softmax_step,
        "sentiment vector": sv_step,
        "miner": miner_step,
        "loss": loss_step,
    }
    times = _common.interleaved(fns, device, warmup=2, repeat=repeat)
    full_med = _common.summary(times["full step"])["median_ms"]
    rows = []
    for name, ts in times.items():
        s = _common.summary(ts)
        row: dict[str, Any] = {
            "size": size,
            "batch": batch,
            "part": name,
            **s,
            "share_of_full_step": s["median_ms"] / full_med,
        }
        if name in ("full step", "softmax step"):
            row["images_per_s"] = batch / (s["median_ms"] / 1e3)
        if name == "miner":
            row["num_triplets"] = int(triplets[0].numel())
        rows.append(row)
    return rows


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    device = _common.setup(args)
    cuda = device.type == "cuda"
    batch = 8 if args.quick else 32
    sizes = [112] if args.quick else [224, 112]
    repeat = args.repeat or (20 if cuda else (3 if args.quick else 5))
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows += bench_size(size, batch, device, repeat)
    table_rows = [
        [
            r["size"],
            r["batch"],
            r["part"],
            r["median_ms"],
            f"{r['q1_ms']:.3g}-{r['q3_ms']:.3g}",
            f"{100 * r['share_of_full_step']:.1f} %",
            f"{r['images_per_s']:.1f}" if "images_per_s" in r else "",
        ]
        for r in rows
    ]
    table = _common.markdown_table(
        ["px", "batch", "part", "median ms", "IQR ms", "share of full step", "images/s"],
        table_rows,
    )
    note = (
        "\n\nGoogLeNet (random init) + 408-d sentiment vector + MultiTaskSentimentLoss "
        "(semi-hard mining), SGD; AMP on CUDA. Parts are timed separately in the same run "
        f"(interleaved, {repeat} repetitions); 'softmax step' is the FC/cross-entropy baseline."
    )
    _common.write_results(
        "bench_train_step",
        device,
        rows,
        table + note,
        extra={"batch": batch, "sizes": sizes, "repeat": repeat, "amp": cuda},
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
