"""Evaluation time and peak memory: AffectiveAccuracyCalculator vs PML's AccuracyCalculator.

20k queries x 20k references (the query set is the reference set, ref_includes_query), D = 680,
8 balanced classes; ``--quick`` uses 2k. Both compute PML's kNN measures (precision_at_1,
r_precision, mean_average_precision_at_r, mean_average_precision, mean_reciprocal_rank) with
``k="max_bin_count"`` (what PML needs for R-precision and MAP@R to be right); we also time our
full default measure set. PML uses its default ``FaissKNN`` (faiss ``IndexFlatL2``); on CUDA
without faiss-gpu that index runs on the CPU (PML falls back), so on CUDA PML with a torch
``CustomKNN`` on the GPU is timed as well. Usage::

    python benchmarks/bench_metrics.py [--device cuda] [--quick] [--repeat N]
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

import sentiment_metric as sm

argparse_hidden = "internal: measure the peak memory of one method in a fresh process"

SHARED = [
    "precision_at_1",
    "r_precision",
    "mean_average_precision_at_r",
    "mean_average_precision",
    "mean_reciprocal_rank",
]


def make_data(n: int, d: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(8).repeat_interleave(n // 8)[torch.randperm(n, generator=g)]
    centers = torch.randn(8, d, generator=g)
    x = centers[y] + 2.0 * torch.randn(n, d, generator=g)  # overlapping classes
    x = torch.nn.functional.normalize(x, dim=1)
    return x.to(device), y.to(device)


def main() -> None:
    p = C.parser(__doc__ or "")
    p.add_argument("--peak-of", default=None, help=argparse_hidden)
    args = p.parse_args()
    device = C.setup(args)
    n = 2000 if args.quick else 20000
    d = 680
    repeat = args.repeat or (2 if not args.quick else 5)
    warmup = 0  # the first (value-checking) call warms up
    x, y = make_data(n, d, device)

    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    has_faiss = importlib.util.find_spec("faiss") is not None
    faiss_gpu = False
    if has_faiss:
        import faiss

        faiss_gpu = faiss.get_num_gpus() > 0
    notes = [f"{n} queries = {n} references (ref_includes_query), D={d}, 8 balanced classes"]

    methods: dict[str, Any] = {}
    if has_faiss:
        pml = AccuracyCalculator(include=tuple(SHARED), k="max_bin_count", device=device)
        methods["PML + faiss (shared)"] = lambda: pml.get_accuracy(x, y)
        if device.type == "cuda" and not faiss_gpu:
            notes.append("faiss-gpu missing: PML's FaissKNN searches with faiss-cpu")
    else:
        notes.append("faiss not installed: no PML + faiss row")
    if device.type == "cuda":
        pml_t = AccuracyCalculator(
            include=tuple(SHARED),
            k="max_bin_count",
            device=device,
            knn_func=CustomKNN(LpDistance(normalize_embeddings=False, power=2), batch_size=512),
        )
        methods["PML + CustomKNN torch (shared)"] = lambda: pml_t.get_accuracy(x, y)
    ours = sm.AffectiveAccuracyCalculator(
        class_names=sm.MIKELS_WHEEL.emotions, k="max_bin_count", include=SHARED
    )
    methods["ours, torch (shared)"] = lambda: ours.get_accuracy(x, y)
    if has_faiss:
        ours_f = sm.AffectiveAccuracyCalculator(
            class_names=sm.MIKELS_WHEEL.emotions, k="max_bin_count", include=SHARED, knn="faiss"
        )
        methods["ours, faiss (shared)"] = lambda: ours_f.get_accuracy(x, y)
    full = sm.AffectiveAccuracyCalculator(class_names=sm.MIKELS_WHEEL.emotions, k="max_bin_count")
    methods["ours, torch (full set, k=max_bin_count)"] = lambda: full.get_accuracy(x, y)
    full10 = sm.AffectiveAccuracyCalculator(class_names=sm.MIKELS_WHEEL.emotions)
    methods["ours, torch (full set, k=10)"] = lambda: full10.get_accuracy(x, y)

    if args.peak_of is not None:  # child process: one method, nothing run before it
        print(json.dumps({"peak": C.peak_memory(methods[args.peak_of], device)}))
        return

    # values: the shared measures must agree (rows at the same k)
    values = {name: fn() for name, fn in methods.items()}
    ref_name = next(iter(methods))
    agree = {
        name: (
            max(abs(v[m] - values[ref_name][m]) for m in SHARED if m in v)
            if "k=10" not in name
            else math.nan
        )
        for name, v in values.items()
    }
    print("max |difference| on the shared measures vs", ref_name, agree)

    peaks = {}
    for name in methods:
        cmd = [sys.executable, __file__, "--device", args.device, "--peak-of", name]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        peaks[name] = json.loads(out.strip().splitlines()[-1])["peak"]
    times = C.interleaved(methods, device, warmup=warmup, repeat=repeat)
    rows = []
    base = C.summary(times[ref_name])["median_ms"]
    for name in methods:
        s = C.summary(times[name])
        rows.append(
            {
                "method": name,
                **s,
                "ratio_vs_first": s["median_ms"] / base,
                "peak_mb": peaks[name] / 2**20,
                "max_abs_diff_shared": None if math.isnan(agree[name]) else agree[name],
                "values": {k: (None if math.isnan(v) else v) for k, v in values[name].items()},
            }
        )
    table = C.markdown_table(
        ["method", "median s", "min s", "x first row", "peak MB", "max abs diff, shared"],
        [
            [
                r["method"],
                r["median_ms"] / 1e3,
                r["min_ms"] / 1e3,
                r["ratio_vs_first"],
                r["peak_mb"],
                r["max_abs_diff_shared"],
            ]
            for r in rows
        ],
    )
    table += (
        "\n\n"
        + "; ".join(notes)
        + (
            ". Peak memory: each method alone in a fresh process; CPU = RSS growth (sampled)"
            ", CUDA = max_memory_allocated growth. The k=10 row computes MAP/MRR at k=10, so its"
            " shared values differ by definition."
        )
    )
    C.write_results(
        "bench_metrics",
        device,
        rows,
        table,
        extra={"n": n, "d": d, "repeat": repeat, "notes": notes},
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
