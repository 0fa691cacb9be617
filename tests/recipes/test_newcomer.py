"""What a newcomer reads and runs (issue 20): help texts, output paths, labels, figures, the
CPU-cost notice and the textures export."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

import sentiment_metric as sm
from sentiment_metric.functional.retrieval import MEASURES
from sentiment_metric.recipes.cli import build_parser, main
from sentiment_metric.recipes.config import TrainConfig
from sentiment_metric.recipes.demo import DEMO_ARMS, demo_summary, winners
from sentiment_metric.recipes.evaluate import (
    HEADLINE_METRICS,
    evaluate_embeddings,
    metric_label,
    metrics_markdown,
)
from sentiment_metric.recipes.loop import train
from sentiment_metric.recipes.notices import (
    CPU_SUGGESTION,
    cpu_cost_notice,
    cpu_notice_due,
    not_learned_note,
)
from sentiment_metric.recipes.plots import _retrieval_figure, legend_label

DOCS = Path(__file__).resolve().parents[2] / "docs"
TINY = [
    "--backbone", "small", "--width", "4", "--image-size", "32", "--batch-size", "16",
    "--m-per-class", "2", "--workers", "0", "--no-progress", "--device", "cpu",
]  # fmt: skip
NAMES = list(sm.MIKELS_WHEEL.emotions)
STALE = ("sentiment-vector models", "both models", "warm colours")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_help_texts_name_the_three_objectives() -> None:
    top = build_parser().format_help()
    demo = _run(["demo", "--help"])[1]
    for text in (top, demo):
        assert not any(s in text for s in STALE)
    assert "PML triplet" in top and "three models" in demo
    assert "textures" in top


def test_docs_captions_are_not_stale() -> None:
    for path in (DOCS / "getting_started.rst", DOCS / "_ext" / "sm_docs.py"):
        text = path.read_text()
        assert not any(s in text for s in STALE), path


def test_embedding_legend_marks_polarity() -> None:
    for name in sm.MIKELS_WHEEL.emotions:
        assert legend_label(name) == f"{name} ({sm.MIKELS_WHEEL.polarity(name)})"


def test_retrieval_grid_titles_do_not_overlap_the_row_above() -> None:
    g = torch.Generator().manual_seed(0)
    n, k = 3, 4
    fig = _retrieval_figure(
        [torch.rand(3, 16, 16, generator=g) for _ in range(n)],
        [-1] * n,
        [[torch.rand(3, 16, 16, generator=g) for _ in range(k)] for _ in range(n)],
        [[j for j in range(k)] for _ in range(n)],
        [[0.5] * k for _ in range(n)],
        NAMES,
        level=None,
        mean=None,
        std=None,
        title="a title",
        query_titles=[f"query_{i}.png\n(pred. awe)" for i in range(n)],
    )
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = fig.axes
    for row in range(1, n):
        for col in range(k + 1):
            ax, above = axes[row * (k + 1) + col], axes[(row - 1) * (k + 1) + col]
            title_top = ax.title.get_window_extent(renderer).y1
            assert title_top <= above.get_window_extent(renderer).y0


def test_metric_labels_have_no_raw_keys() -> None:
    for key in [*MEASURES, *HEADLINE_METRICS]:
        label = metric_label(key, 10)
        assert "_" not in label, (key, label)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(32) % 8
    emb = torch.randn(32, 4, generator=g)
    metrics = evaluate_embeddings(emb, torch.randn(32, 8, generator=g), labels, NAMES)
    table = metrics_markdown(metrics).split("\n\n")[0]  # the metrics, before per-class recall
    for line in table.splitlines()[2:]:
        assert "_" not in line.split("|")[1], line


def test_demo_summary_prints_labels_and_one_epoch() -> None:
    names = list(DEMO_ARMS)
    results = {n: {key: float(i) for key in HEADLINE_METRICS} for i, n in enumerate(names)}
    doc = {
        "table": "",
        "winners": winners(results, names),
        "settings": {"seeds": [0], "quick": True, "train_size": 8, "test_size": 8, "epochs": 1},
        "wall_time_s": 1.0,
    }
    text = demo_summary(doc, "out")
    assert "1 epoch," in text and "1 epochs" not in text
    for key in HEADLINE_METRICS:
        assert f"  {metric_label(key, 10)}:" in text
        assert f"  {key}:" not in text or key == metric_label(key, 10)


def test_cpu_cost_notice_when_the_gpu_defaults_go_to_the_cpu() -> None:
    cfg = TrainConfig(backbone="small", width=4, image_size=16, batch_size=8, device="cpu")
    assert cpu_notice_due(cfg, given=set())
    assert not cpu_notice_due(cfg, given={"backbone"})
    assert not cpu_notice_due(cfg, given={"image_size"})
    notice = cpu_cost_notice(cfg)
    assert CPU_SUGGESTION in notice and "per step" in notice and "small at 16 px" in notice


def test_not_learned_note_reads_the_confusion_matrix() -> None:
    one = {"confusion_matrix": [[2, 0, 0], [3, 0, 0], [1, 0, 0]], "epoch": 1}
    note = not_learned_note(one, ["awe", "fear", "anger"])
    assert note is not None and "awe" in note and "1 epoch:" in note
    spread = {"confusion_matrix": [[2, 0, 0], [3, 0, 0], [0, 0, 1]], "epoch": 1}
    assert not_learned_note(spread, ["awe", "fear", "anger"]) is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the generated textures, and the textures exported next to it."""
    root = tmp_path_factory.mktemp("newcomer")
    rc, _, err = _run(
        ["train", "--out", str(root / "run"), "--epochs", "1", "--train-size", "32",
         "--val-size", "0", "--test-size", "32", *TINY]
    )  # fmt: skip
    assert rc == 0, err
    assert "note: training" not in err  # --backbone given: no CPU-cost notice
    rc, out, _ = _run(
        ["textures", "--out", str(root / "tex"), "--size", "16", "--image-size", "32"]
    )
    assert rc == 0 and str(root / "tex") in out
    return root


def test_textures_export_writes_an_emotion_folder(trained: Path) -> None:
    folders = sorted(p.name for p in (trained / "tex").iterdir())
    assert folders == sorted(NAMES)
    assert len(list((trained / "tex").rglob("*.png"))) == 16


def test_evaluate_and_retrieve_write_beside_the_checkpoint(trained: Path) -> None:
    ckpt = trained / "run" / "last.pt"
    rc, out, _ = _run(["evaluate", str(ckpt), "--k", "3"])
    assert rc == 0 and (trained / "run" / "eval-test" / "metrics.json").is_file()
    assert str(trained / "run" / "eval-test" / "metrics.json") in out
    tex = trained / "tex"
    query = sorted((tex / "fear").glob("*.png"))[0]
    rc, out, _ = _run(["retrieve", str(ckpt), "--query", str(query), "--gallery", str(tex)])
    assert rc == 0
    doc = json.loads((trained / "run" / "retrieval" / "retrieval.json").read_text())
    assert len(doc["queries"][0]["results"]) == 5
    assert str(trained / "run" / "retrieval" / "retrieval.md") in out


def test_train_calls_on_ready_once_before_the_first_step(tmp_path: Path) -> None:
    calls: list[int] = []
    cfg = TrainConfig(
        backbone="small", width=4, image_size=16, batch_size=16, m_per_class=2, train_size=32,
        val_size=0, epochs=1, workers=0, progress=False, device="cpu", out=str(tmp_path),
    )  # fmt: skip
    train(
        cfg,
        on_ready=lambda: calls.append(0),
        step_callback=lambda epoch, step, parts: calls.append(step),
    )
    assert calls[0] == 0 and calls[1:] == list(range(1, len(calls)))


def test_help_and_version_load_no_torch() -> None:
    code = (
        "import sys\n"
        "from sentiment_metric.recipes.cli import main\n"
        "assert main(['--help']) == 0 and main(['--version']) == 0 and main(['nope']) == 2\n"
        "heavy = ('torch', 'numpy', 'pytorch_metric_learning', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_lazy_public_names_match_all() -> None:
    import sentiment_metric.recipes as recipes

    for package in (sm, recipes):
        lazy = set(package._LAZY)
        assert lazy == set(package.__all__) - {"SentimentMetricError", "__version__"}
        for name in package.__all__:
            assert getattr(package, name) is not None
