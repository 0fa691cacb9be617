"""Shared fixtures: device and dtype, tolerances, seeded generators."""

from __future__ import annotations

import gc
import os

import pytest
import torch
from hypothesis import settings

# CI (CI=true) replays the same examples every run, so that a landing never hinges on a lucky
# draw; locally, hypothesis explores new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Two cores: keep each test process from oversubscribing them when pytest-xdist runs two.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish() -> None:
    """Collect the garbage once more and freeze the survivors before a pytest-xdist worker
    reports that it finished.

    After that report, execnet gives the worker 5 s to end and then sends it SIGINT; pytest's
    last step is a full ``gc.collect()`` (to report unraisable exceptions), which over a
    worker's heap (700,000 objects and more once torch.compile has run) took over 3 s on two
    busy cores, so the SIGINT landed in hypothesis's gc callback and the run ended with a
    ``PytestUnraisableExceptionWarning`` (KeyboardInterrupt). Collected here, before the
    report, the garbage still goes through pytest's hook; frozen, the survivors cost the last
    collection nothing.
    """
    gc.collect()
    gc.freeze()


TOLERANCES = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float16: {"rtol": 5e-3, "atol": 5e-3},
    torch.bfloat16: {"rtol": 3e-2, "atol": 3e-2},
}


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
        ),
    ]
)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """The floating dtypes every numerical test runs in; tolerances in ``TOLERANCES``."""
    return request.param


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


MIKELS_FI_ORDER = [
    "amusement",
    "anger",
    "awe",
    "contentment",
    "disgust",
    "excitement",
    "fear",
    "sadness",
]
"""FI's folders, sorted alphabetically (as torchvision's ImageFolder sees them)."""
