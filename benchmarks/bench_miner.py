"""Semi-hard mining + loss: SentimentSemiHardMiner + SentimentConstraintLoss vs PML's pair.

Question: how long does one forward+backward step of the emotion-aware semi-hard miner and the
sentiment constraint loss take, against PML's ``TripletMarginMiner("semihard")`` +
``TripletMarginLoss`` on the same embeddings? Target (issue 2): at B = 128 at least 2x faster.

Method: 8 balanced classes (Mikels' emotions in FI's alphabetical order), D = 680 (the size of
the sentiment vector), B = 128, 512, 2048 (``--quick``: 128). For each B the four methods (the
two miner + loss steps and the two miners alone) are timed interleaved, round-robin, on the
same embeddings; then the peak memory growth of one step of each. Both miners and losses use
their defaults apart from the margin of PML's pair (0.2, the first sentiment margin): ours
``LpDistance(power=2)``, margins (0.2, 0.1), one farther sample per (anchor, closer) pair;
PML's ``LpDistance()`` and every semi-hard triplet. PML's miner enumerates every triplet
(``B · pos · neg`` of them); where that would not fit in memory (B = 2048: about 10^9
triplets) it is skipped and the row says why.

    python benchmarks/bench_miner.py [--device cuda] [--quick] [--repeat N] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from pytorch_metric_learning import losses, miners

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

import sentiment_metric as sm

NAMES = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
DIM = 680


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def _pml_bytes(b: int) -> int:
    """A rough lower bound of what PML's semi-hard miner + loss hold: per enumerated triplet,
    3 int64 indices, the gathered distances and margins, masks, and the loss's gathers."""
    per_class = b // 8
    triplets = b * (per_class - 1) * (b - per_class)
    return triplets * 64


def _step(miner: Any, loss_fn: Any, emb: torch.Tensor, labels: torch.Tensor) -> Any:
    """One forward+backward step of ``miner`` + ``loss_fn`` (the miner alone if no loss)."""

    def run() -> None:
        if loss_fn is None:
            miner(emb.detach(), labels)
            return
        emb.grad = None
        loss = loss_fn(emb, labels, miner(emb, labels))
        loss.backward()

    return run


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    args = p.parse_args()
    device = _common.setup(args)
    sizes = [128] if args.quick else [128, 512, 2048]

    ours_miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0).to(device)
    ours_loss = sm.SentimentConstraintLoss(class_names=NAMES).to(device)
    pml_miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    pml_loss = losses.TripletMarginLoss(margin=0.2)

    rows: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for b in sizes:
        g = torch.Generator().manual_seed(b)
        labels = torch.arange(8).repeat(b // 8)[torch.randperm(b, generator=g)].to(device)
        emb = torch.randn(b, DIM, generator=g).to(device).requires_grad_(True)

        fns = {
            "sentiment miner + loss": _step(ours_miner, ours_loss, emb, labels),
            "PML semihard miner + TripletMarginLoss": _step(pml_miner, pml_loss, emb, labels),
            "sentiment miner only": _step(ours_miner, None, emb, labels),
            "PML semihard miner only": _step(pml_miner, None, emb, labels),
        }
        need = _pml_bytes(b)
        skipped = need > _available_bytes(device) // 2
        if skipped:
            note = f"skipped: PML would hold about {need / 2**30:.0f} GiB of triplets"
            fns = {k: v for k, v in fns.items() if not k.startswith("PML")}
        repeat = args.repeat or (20 if b <= 128 else 10 if b <= 512 else 5)
        times = _common.interleaved(fns, device, warmup=2, repeat=repeat)
        peaks = {k: _common.peak_memory(fn, device) for k, fn in fns.items()}
        base = {
            "sentiment miner + loss": "PML semihard miner + TripletMarginLoss",
            "sentiment miner only": "PML semihard miner only",
        }
        for name in [
            "sentiment miner + loss",
            "PML semihard miner + TripletMarginLoss",
            "sentiment miner only",
            "PML semihard miner only",
        ]:
            if name not in fns:
                rows.append({"B": b, "method": name, "skipped": note})
                table.append([b, name, "-", "-", "-", note])
                continue
            s = _common.summary(times[name])
            ref = base.get(name)
            speedup = (
                _common.summary(times[ref])["median_ms"] / s["median_ms"] if ref in times else None
            )
            row = {"B": b, "method": name, **s, "peak_mem_bytes": peaks[name], "repeat": repeat}
            if speedup is not None:
                row["speedup_vs_pml"] = speedup
            rows.append(row)
            table.append(
                [
                    b,
                    name,
                    s["median_ms"],
                    f"{s['q1_ms']:.3g}-{s['q3_ms']:.3g}",
                    peaks[name] / 2**20,
                    f"{speedup:.2f}x" if speedup is not None else "",
                ]
            )
    headers = ["B", "method", "median ms", "IQR ms", "peak MiB", "speed-up vs PML"]
    _common.write_results(
        "bench_miner",
        device,
        rows,
        _common.markdown_table(headers, table),
        extra={"dim": DIM, "classes": 8, "sizes": sizes, "quick": args.quick},
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
