"""The ``sentiment-metric`` command end to end, on tiny generated data (in-process ``main``)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment_metric.recipes.cli import main

TINY = [
    "--backbone", "small", "--width", "4", "--image-size", "32", "--batch-size", "16",
    "--m-per-class", "4", "--lr", "0.05", "--head-lr-mult", "1", "--workers", "0",
    "--no-progress", "--device", "cpu",
]  # fmt: skip
HEADLINE = [
    "accuracy",
    "polarity_accuracy",
    "mean_average_precision_at_r",
    "wheel_ndcg_at_k",
    "mean_wheel_distance_at_k",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An emotion ImageFolder of real PNG files: 8 emotions x 10 textures, 32 px."""
    from PIL import Image

    from sentiment_metric.recipes import AffectiveTextures

    root = tmp_path_factory.mktemp("folder")
    ds = AffectiveTextures(num_images=80, image_size=32, seed=1, normalize=False)
    for i in range(len(ds)):
        img, label = ds[i]
        d = root / ds.classes[label]
        d.mkdir(exist_ok=True)
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny training run of `sentiment-metric train` on the folder (checkpoint + test)."""
    out = tmp_path_factory.mktemp("run")
    argv = ["train", "--dataset", "folder", "--root", str(folder), "--out", str(out)]
    assert main([*argv, "--val-size", "0", "--epochs", "1", *TINY]) == 0
    return out


def test_console_script_help() -> None:
    exe = shutil.which("sentiment-metric") or str(Path(sys.executable).parent / "sentiment-metric")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for cmd in ("demo", "train", "evaluate", "retrieve", "embed", "ablation"):
        assert cmd in proc.stdout


def n_test(folder: Path, run: Path) -> int:
    from sentiment_metric.recipes import EmotionImageFolder

    return len(EmotionImageFolder(folder, split="test", split_file=run / "split.json"))


def test_train_writes_checkpoint_log_and_test_metrics(run: Path, folder: Path) -> None:
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["config"]["dataset"] == "folder"
    assert ckpt["class_names"] == sorted(ckpt["class_names"])  # folders sort alphabetically
    assert (run / "split.json").exists()  # the generated split, reusable
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1] and math.isfinite(log[0]["loss"])
    test = json.loads((run / "test" / "metrics.json").read_text())
    assert test["split"] == "test" and test["num_samples"] == n_test(folder, run)
    for key in HEADLINE[:4]:
        assert 0.0 <= test[key] <= 1.0


def test_train_resume_continues(run: Path, tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "r"
    shutil.copytree(run, out)
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2", "--no-test"]) == 0
    log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]


def test_evaluate(
    run: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(run / "last.pt"), "--out", str(out), "--k", "3"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["k"] == 3 and m["epoch"] == 1 and m["dataset"] == "folder"
    assert len(m["confusion_matrix"]) == 8 and sum(map(sum, m["confusion_matrix"])) == n_test(
        folder, run
    )
    assert (out / "confusion.png").stat().st_size > 1000
    md = (out / "metrics.md").read_text()
    assert "MAP@R" in md and "wheel nDCG@3" in md
    assert "MAP@R" in capsys.readouterr().out
    crm_out = tmp_path / "eval-crm"
    argv = ["evaluate", str(run / "last.pt"), "--out", str(crm_out), "--k", "3"]
    assert main([*argv, "--crm-weight", "4"]) == 0
    crm = json.loads((crm_out / "metrics.json").read_text())
    assert crm["crm_weight"] == 4.0 and 0.0 < crm["hierarchical_average_precision"] <= 1.0
    assert crm["num_samples"] == m["num_samples"]


def test_retrieve(run: Path, folder: Path, tmp_path: Path) -> None:
    queries = sorted((folder / "fear").glob("*.png"))[:2]
    out = tmp_path / "ret"
    argv = ["retrieve", str(run / "last.pt"), "--query", *map(str, queries)]
    assert main([*argv, "--gallery", str(folder), "--k", "3", "--out", str(out)]) == 0
    doc = json.loads((out / "retrieval.json").read_text())
    assert len(doc["queries"]) == 2
    for q in doc["queries"]:
        assert len(q["results"]) == 3
        d = [r["distance"] for r in q["results"]]
        assert d == sorted(d) and 0.0 <= d[0] <= 4.0
        # the query is in the gallery: it finds itself first
        assert Path(q["results"][0]["path"]).name == Path(q["query"]).name
        assert all(r["emotion"] in doc_classes(run) for r in q["results"])
    assert (out / "retrieval.png").stat().st_size > 1000
    assert (out / "retrieval.md").read_text().count("\n") == 4


def doc_classes(run: Path) -> list[str]:
    return list(torch.load(run / "last.pt", weights_only=True)["class_names"])


def test_embed_pt_and_npy(run: Path, folder: Path, tmp_path: Path) -> None:
    assert main(["embed", str(run / "last.pt"), "--out", str(tmp_path / "e.pt")]) == 0
    d = torch.load(tmp_path / "e.pt", weights_only=True)
    assert (
        d["embeddings"].shape[0] == d["labels"].shape[0] == len(d["paths"]) == n_test(folder, run)
    )
    assert all(os.path.exists(p) for p in d["paths"])
    assert d["class_names"] == doc_classes(run)
    argv = ["embed", str(run / "last.pt"), "--out", str(tmp_path / "x.npy")]
    assert main([*argv, "--images", str(folder / "awe")]) == 0
    emb = np.load(tmp_path / "x.npy")
    n_awe = len(list((folder / "awe").glob("*.png")))
    assert emb.shape == (n_awe, d["embeddings"].shape[1])
    assert np.load(tmp_path / "x.labels.npy").tolist() == [-1] * n_awe
    assert len((tmp_path / "x.paths.txt").read_text().splitlines()) == n_awe


def test_ablation_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ablation", "--quick", "--out", str(tmp_path), "--train-size", "64", "--width", "4"]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "ablation.json").read_text())
    names = [r["name"] for r in doc["rows"]]
    assert names == [
        "softmax",
        "triplet",
        "softmax + triplet",
        "softmax + SC (FC)",
        "softmax + SC + SV, random",
        "softmax + SC + SV, hard",
        "softmax + SC + SV, semi-hard",
    ]
    assert doc["seeds"] == [0, 1]
    for row in doc["rows"]:
        assert len(row["runs"]) == 2
        vals = [r["accuracy"] for r in row["runs"]]
        assert row["mean"]["accuracy"] == pytest.approx(np.mean(vals))
        assert row["std"]["accuracy"] == pytest.approx(np.std(vals, ddof=1))
    md = (tmp_path / "ablation.md").read_text()
    assert sum(x.count("±") for x in md.splitlines() if x.startswith("| ")) == 7 * 5
    assert "softmax + SC + SV, semi-hard" in capsys.readouterr().out


# -- errors: one line on stderr, non-zero exit, never a traceback ------------------------------
def _bad_cases(tmp: Path, run: Path) -> list[tuple[list[str], int, str]]:
    junk = tmp / "junk.pt"
    junk.write_text("not a checkpoint")
    return [
        (["bogus"], 2, "invalid choice"),
        (["train", "--epochs", "0"], 2, "expected an integer >= 1"),
        (["train", "--loss", "bogus"], 2, "invalid choice"),
        (["train", "--lr", "abc"], 2, "expected a number"),
        (["evaluate"], 2, "required"),
        (["train", "--dataset", "fi", "--root", str(tmp / "nope"), "--out", str(tmp / "o")], 1, "nope"),  # noqa: E501
        (["train", "--root", str(tmp), "--out", str(tmp / "o2")], 1, "--root is not used"),
        (["train", "--dataset", "fi", "--out", str(tmp / "o3")], 1, "needs root"),
        (["train", "--batch-size", "32", "--m-per-class", "5"], 1, "must divide"),
        (["train", "--resume", "--out", str(tmp / "empty")], 1, "does not exist"),
        (["train", "--out", str(run), "--epochs", "1", "--no-test"], 1, "exists: pass resume"),
        (["evaluate", str(tmp / "missing.pt")], 1, "does not exist"),
        (["evaluate", str(junk)], 1, "could not be read"),
        (["evaluate", str(run / "last.pt"), "--crm-weight", "-1", "--out", str(tmp / "c")], 1, "crm_weight"),  # noqa: E501
        (["evaluate", str(run / "last.pt"), "--dataset", "textures", "--out", str(tmp / "e")], 1, "differ"),  # noqa: E501
        (["retrieve", str(run / "last.pt"), "--query", str(tmp / "q.png"), "--gallery", str(tmp)], 1, "does not exist"),  # noqa: E501
        (["embed", str(run / "last.pt"), "--out", str(tmp / "e.txt")], 1, "must end in .pt"),
        (["ablation", "--quick", "--rows", "nope", "--out", str(tmp / "a")], 1, "unknown ablation row"),  # noqa: E501
        (["demo", "--quick", "--device", "cuda:7", "--out", str(tmp / "d")], 1, "CUDA"),
    ]  # fmt: skip


def test_bad_arguments_and_paths_give_one_line_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if torch.cuda.is_available():
        pytest.skip("the CUDA case assumes no GPU")
    capsys.readouterr()
    for argv, code, needle in _bad_cases(tmp_path, run):
        rc = main(argv)
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.strip()]
        assert rc == code, (argv, rc, err)
        assert len(lines) == 1, (argv, err)
        assert "Traceback" not in err and needle in lines[0], (argv, err)
        assert lines[0].startswith("sentiment-metric"), (argv, err)


def test_evaluate_on_another_root_does_not_reuse_the_runs_split(
    run: Path, folder: Path, tmp_path: Path
) -> None:
    """Issue 19: ``evaluate --root <another folder>`` read the run's split.json, which lists
    the training folder's files."""
    from sentiment_metric.recipes import EmotionImageFolder

    other = tmp_path / "other"
    shutil.copytree(folder, other)
    for png in sorted(other.glob("*/*.png")):
        png.rename(png.with_name("other_" + png.name))  # other files than the run's split lists
    out = tmp_path / "eval"
    argv = ["evaluate", str(run / "last.pt"), "--root", str(other), "--out", str(out)]
    assert main([*argv, "--k", "3"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    seed = json.loads((run / "config.json").read_text())["seed"]
    assert m["num_samples"] == len(EmotionImageFolder(other, split="test", seed=seed))
    assert not (other / "split.json").exists()
