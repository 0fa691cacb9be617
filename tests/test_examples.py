"""Every script in examples/ runs in its --quick form (tiny generated data, CPU, seconds).

Each is run as a user would run it, in a fresh interpreter (the distributed one under
``torchrun --standalone --nproc_per_node 2`` with gloo), and must end without error and print
its retrieval measures. The examples are listed here by name: a new script needs a line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = {
    "plain_loop.py": [[], ["--multitask"]],
    "pml_trainers.py": [[]],
    "cross_batch_memory.py": [[], ["--no-miner"]],
}


def run(cmd: list[str], timeout: float = 240) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=EXAMPLES.parent
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {*SCRIPTS, "distributed.py"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "extra"), [(s, e) for s, extras in SCRIPTS.items() for e in extras]
)
def test_example_runs_quick(script, extra):
    out = run([sys.executable, str(EXAMPLES / script), "--quick", *extra])
    assert "precision_at_1" in out
    # the swap is visible: each sentiment-metric line says what it replaced
    assert "# was:" in (EXAMPLES / script).read_text()


@pytest.mark.slow
def test_pml_trainers_example_runs_without_warnings():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    cmd = [sys.executable, "-W", "default", str(EXAMPLES / "pml_trainers.py"), "--quick"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.replace("\r", "\n").splitlines() if x.strip()]
    noise = [x for x in lines if "it/s]" not in x and "s/it]" not in x]  # tqdm's bars
    assert noise == [], noise


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
@pytest.mark.skipif(
    torch.distributed.is_available() and not torch.distributed.is_gloo_available(),
    reason="the gloo backend is not built into this torch",
)
def test_distributed_example_runs_under_torchrun():
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = run([*cmd, str(EXAMPLES / "distributed.py"), "--quick"], timeout=300)
    assert "(2 processes)" in out and "precision_at_1" in out


def test_works_with_pml_page_names_existing_tests():
    page = EXAMPLES.parent / "docs" / "howto" / "works_with_pml.rst"
    named = re.findall(r"``(tests/[\w/]+\.py)::(test_\w+)``", page.read_text())
    assert len(named) >= 15
    for path, name in named:
        source = (EXAMPLES.parent / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is not a test"
