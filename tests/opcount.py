"""The operator count of issue 12, as ``benchmarks/bench_ops.py`` takes it: the ``aten::``
profiler events of one call (forward and backward) that have no ``aten::`` ancestor. Test
modules import this; no test module imports another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.profiler import ProfilerActivity, profile


def _is_top_level_aten(event: Any) -> bool:
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def top_level_aten_ops(fn: Callable[[], Any]) -> int:
    """Top-level ``aten::`` ops of one call of ``fn``, after two warm-up calls."""
    fn()
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for e in prof.events() if _is_top_level_aten(e))
