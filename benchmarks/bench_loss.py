"""Exhaustive SentimentConstraintLoss vs PML's TripletMarginLoss + TripletMarginMiner("semihard").

Forward + backward milliseconds per step and peak memory growth, one process, the methods
interleaved (round-robin) on the same embeddings: 8 balanced classes, D = 680 (the sentiment
vector's size), B = 128, 512, 2048, 4096 (``--quick``: 128, 512).

Ours uses every ranked triplet of the batch, exactly, with no miner (sort + searchsorted +
prefix sums: memory like B²). PML's miner enumerates every (anchor, positive, negative) triplet
explicitly (``lmu.get_all_triplets_indices``: a dense B×B×B mask below INT_MAX entries, and
three int64 index tensors with one entry per triplet in any case) before it filters the
semi-hard ones; where that would need more memory than is safe here, PML is recorded as
skipped with the memory computed from that pattern.

    python benchmarks/bench_loss.py [--device cuda] [--quick]
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import TripletMarginMiner

import sentiment_metric as sm

D = 680
NUM_CLASSES = 8
SAFE_BYTES = 8 * 1024**3  # PML is skipped above this estimated need (or half the free RAM)


def pml_bytes_needed(labels: torch.Tensor) -> int:
    """Memory PML's semi-hard mining needs at least, from its known pattern.

    ``get_all_triplets_indices`` returns three int64 tensors with one entry per (anchor,
    positive, negative) triplet; the miner then holds two float distances, their difference
    and a bool mask per triplet (8·3 + 4·3 + 1 = 37 bytes a triplet), plus the dense
    ``B × B × B`` uint8 mask when ``B³ < INT_MAX`` (its vectorised branch).
    """
    b = labels.shape[0]
    same = (labels[:, None] == labels[None, :]).sum(dim=1) - 1
    triplets = int((same * (b - 1 - same)).sum())
    dense = b**3 if b**3 < torch.iinfo(torch.int32).max else 0
    return 37 * triplets + dense


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return SAFE_BYTES * 2


def _batch(b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(b)
    labels = (torch.arange(b) % NUM_CLASSES)[torch.randperm(b, generator=g)]
    emb = torch.randn(b, D, generator=g)
    return emb.to(device).requires_grad_(True), labels.to(device)


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    device = _common.setup(args)
    sizes = [128, 512] if args.quick else [128, 512, 2048, 4096]
    ours = sm.SentimentConstraintLoss(class_names=sm.MIKELS_WHEEL.emotions).to(device)
    miner = TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    pml = TripletMarginLoss(margin=0.2)
    safe = min(SAFE_BYTES, _mem_available() // 2) if device.type == "cpu" else SAFE_BYTES
    if device.type == "cuda":
        safe = min(safe, torch.cuda.get_device_properties(device).total_memory // 2)

    rows: list[dict[str, Any]] = []
    for b in sizes:
        emb, labels = _batch(b, device)

        def step_ours(emb: torch.Tensor = emb, labels: torch.Tensor = labels) -> None:
            emb.grad = None
            ours(emb, labels).backward()

        def step_pml(emb: torch.Tensor = emb, labels: torch.Tensor = labels) -> None:
            emb.grad = None
            pml(emb, labels, miner(emb, labels)).backward()

        need = pml_bytes_needed(labels.cpu())
        run_pml = need <= safe
        fns = {"ours": step_ours}
        if run_pml:
            fns["pml"] = step_pml
        repeat = args.repeat or (10 if b <= 128 else 5 if b <= 512 else 2)
        times = _common.interleaved(fns, device, warmup=1, repeat=repeat)
        peaks = {}
        for name, fn in fns.items():
            gc.collect()
            peaks[name] = _common.peak_memory(fn, device)
        row: dict[str, Any] = {
            "B": b,
            "D": D,
            "ours": _common.summary(times["ours"]),
            "ours_peak_mb": peaks["ours"] / 2**20,
            "pml_estimated_bytes": need,
        }
        if run_pml:
            row["pml"] = _common.summary(times["pml"])
            row["pml_peak_mb"] = peaks["pml"] / 2**20
            row["ratio_pml_over_ours"] = row["pml"]["median_ms"] / row["ours"]["median_ms"]
        else:
            row["pml_skipped"] = (
                f"skipped: PML's explicit triplet enumeration would need about "
                f"{need / 2**30:.1f} GiB (> the {safe / 2**30:.1f} GiB safe limit here)"
            )
        rows.append(row)
        print(row, flush=True)
        del emb, labels
        gc.collect()

    table = _common.markdown_table(
        ["B", "ours ms", "PML ms", "PML/ours", "ours peak MB", "PML peak MB", "note"],
        [
            [
                r["B"],
                r["ours"]["median_ms"],
                r["pml"]["median_ms"] if "pml" in r else "—",
                f"{r['ratio_pml_over_ours']:.1f}×" if "pml" in r else "—",
                r["ours_peak_mb"],
                r["pml_peak_mb"] if "pml" in r else "—",
                r.get("pml_skipped", ""),
            ]
            for r in rows
        ],
    )
    note = (
        "Forward+backward per step, median of interleaved runs; peak = memory growth during "
        "one step (CPU: sampled RSS). Ours: exhaustive SentimentConstraintLoss (every ranked "
        "triplet, AvgNonZeroReducer, no miner). PML: TripletMarginMiner('semihard', margin=0.2) "
        "+ TripletMarginLoss(margin=0.2). 8 balanced classes, D=680."
    )
    _common.write_results(
        "bench_loss",
        device,
        rows,
        table + "\n\n" + note,
        extra={"note": note},
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
