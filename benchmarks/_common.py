"""Shared helpers for the benchmark scripts: machine description, timing, memory, results.

Every benchmark is a script (``python benchmarks/<name>.py [--device cuda] [--quick]``) that
interleaves the methods it compares, prints a markdown table and writes
``benchmarks/results/<name>-<device>.json`` and ``.md`` with the machine, versions and date.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
_RUN_SUFFIX = ""  # "-t1" etc. when --threads is given, so such runs get files of their own


def parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``--device``, ``--quick``, ``--repeat``, ``--threads``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    p.add_argument("--repeat", type=int, default=None, help="timed repetitions per method")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--no-write", action="store_true", help="print only; write no results")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads``, check ``--device``; return the device."""
    global _RUN_SUFFIX
    if args.threads:
        torch.set_num_threads(args.threads)
        _RUN_SUFFIX = f"-t{args.threads}"
    device = torch.device(args.device)
    if device.type == "cuda" and os.environ.get("SM_BENCH_CUDA") != "1" and os.environ.get("OUT"):
        # On the lent GPU machine the session's device time is shared and short: CUDA runs go
        # through benchmarks/run_cuda.sh, which runs every benchmark in one call.
        sys.exit(
            "TEAM NOTE: do not run benchmarks on the device tool yourself; the lead runs "
            "benchmarks/run_cuda.sh for all of them in one call (device time is shared)."
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda asked for, but torch.cuda.is_available() is False")
    return device


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device | str) -> dict[str, Any]:
    """Machine, versions and date, for the JSON results."""
    device = torch.device(device)
    import pytorch_metric_learning

    import sentiment_metric

    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_metric_learning": pytorch_metric_learning.__version__,
        "sentiment_metric": sentiment_metric.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line naming the machine, for tables."""
    where = info.get("gpu") or f"{info['cpu']} ({info['cpu_count']} cores)"
    return (
        f"{where}; torch {info['torch']}, PML {info['pytorch_metric_learning']}, "
        f"sentiment-metric {info['sentiment_metric']}; {info['date']}"
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(
    fn: Callable[[], Any], device: torch.device, warmup: int = 2, repeat: int = 10
) -> list[float]:
    """Wall-clock milliseconds of ``fn()`` for ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, warmup: int = 2, repeat: int = 10
) -> dict[str, list[float]]:
    """Time several methods in turn (round-robin), so that load drifts hit them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def summary(ms: Sequence[float]) -> dict[str, float]:
    """Median, min and inter-quartile spread of a list of timings (ms)."""
    s = sorted(ms)
    q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0], s[0], s[0]]
    return {"median_ms": statistics.median(s), "min_ms": s[0], "q1_ms": q[0], "q3_ms": q[2]}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(fn: Callable[[], Any], device: torch.device, interval: float = 0.002) -> int:
    """Peak memory growth in bytes while ``fn()`` runs.

    CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated before. CPU: the
    resident set size sampled every ``interval`` seconds by a thread, above the RSS before
    (the allocator may reuse freed pages, so this is a lower bound on what was touched).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    base = _rss_bytes()
    peak = base
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        fn()
    finally:
        stop.set()
        t.join()
    peak = max(peak, _rss_bytes())
    return int(peak - base)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_results(
    name: str,
    device: torch.device,
    rows: list[dict[str, Any]],
    table_md: str,
    extra: dict[str, Any] | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Print the table and write ``results/<name>-<device>.json`` and ``.md``."""
    info = machine_info(device)
    doc = {"benchmark": name, "machine": info, "rows": rows, **(extra or {})}
    threads = f", {info['torch_threads']} thread(s)" if device.type == "cpu" else ""
    header = f"### {name} ({device.type}{threads})\n\nMachine: {machine_line(info)}\n\n"
    print(header + table_md)
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = RESULTS / f"{name}-{device.type}{_RUN_SUFFIX}"
        stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
        stem.with_suffix(".md").write_text(header + table_md + "\n")
        print(f"\nwrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return doc
