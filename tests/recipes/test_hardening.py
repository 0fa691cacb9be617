"""The recipes under faults: kills at every write point, stale temporaries, unreadable images
(never substituted), one-class data, mismatched checkpoints, unknown devices."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sentiment_metric as sm
from sentiment_metric.recipes import files
from sentiment_metric.recipes.build import load_model
from sentiment_metric.recipes.checkpoint import atomic_save, load_checkpoint
from sentiment_metric.recipes.cli import main
from sentiment_metric.recipes.config import TrainConfig
from sentiment_metric.recipes.distributed import resolve_device
from sentiment_metric.recipes.evaluate import compute_embeddings
from sentiment_metric.recipes.loop import train
from sentiment_metric.recipes.retrieve import export_embeddings

EMOTIONS = ("amusement", "awe", "fear", "anger")
VOLATILE = ("time_s", "images_per_s")


def _write_folder(root: Path, emotions: tuple[str, ...] = EMOTIONS, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for c, emo in enumerate(emotions):
        (root / emo).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            px = rng.integers(0, 60, (16, 16, 3)) + 50 * c
            Image.fromarray(px.astype(np.uint8)).save(root / emo / f"{emo}_{i}.png")
    return root


def _truncated_jpeg(path: Path) -> Path:
    Image.effect_noise((48, 48), 60).convert("RGB").save(path, format="JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header parses; the pixels are cut
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_folder(tmp_path_factory.mktemp("hardening") / "data")


def _config(root: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        dataset="folder",
        root=str(root),
        backbone="small",
        width=4,
        image_size=32,
        val_size=0,
        eval_every=0,
        epochs=2,
        batch_size=8,
        m_per_class=2,
        lr=0.05,
        head_lr_mult=1.0,
        workers=0,
        progress=False,
        device="cpu",
        out=str(out),
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


class _Killed(Exception):
    pass


@pytest.fixture
def fault() -> Iterator[list[tuple[str, int]]]:
    """Set ``files.FAULT_HOOK`` to stop at the points the test appends ``(point, n-th)`` to."""
    targets: list[tuple[str, int]] = []
    seen: dict[str, int] = {}

    def hook(where: str) -> None:
        seen[where] = seen.get(where, 0) + 1
        if (where, seen[where]) in targets:
            raise _Killed(where)

    files.FAULT_HOOK = hook
    try:
        yield targets
    finally:
        files.FAULT_HOOK = None


def _log(out: Path) -> list[dict[str, object]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in VOLATILE} for x in lines]


@pytest.fixture(scope="module")
def uninterrupted(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    train(_config(folder, out))
    return out


KILL_POINTS = [
    ("write:split.json", 1),
    ("replaced:split.json", 1),
    ("write:last.pt", 1),
    ("replaced:last.pt", 1),
    ("append:metrics.jsonl", 1),
    ("appended:metrics.jsonl", 1),
    ("write:last.pt", 2),
    ("replaced:last.pt", 2),
    ("append:metrics.jsonl", 2),
]


@pytest.mark.parametrize(("point", "nth"), KILL_POINTS)
def test_a_kill_at_any_write_point_then_resume_equals_an_uninterrupted_run(
    folder: Path,
    uninterrupted: Path,
    tmp_path: Path,
    fault: list[tuple[str, int]],
    point: str,
    nth: int,
) -> None:
    out = tmp_path / "run"
    cfg = _config(folder, out)
    fault.append((point, nth))
    with pytest.raises(_Killed):
        train(cfg)
    fault.clear()
    # a kill leaves the temporary file of an interrupted write (an exception removes it)
    (out / f".last.pt.tmp-{2**22 + 17}").write_bytes(b"partial")
    train(dataclasses.replace(cfg, resume=(out / "last.pt").exists()))

    a, b = load_checkpoint(uninterrupted / "last.pt"), load_checkpoint(out / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert _log(out) == _log(uninterrupted)
    assert [r["epoch"] for r in b["log"]] == [1, 2]
    assert (out / "split.json").read_text() == (uninterrupted / "split.json").read_text()
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def test_remove_stale_temporaries_keeps_live_writers(tmp_path: Path) -> None:
    dead = tmp_path / f".last.pt.tmp-{2**22 + 3}"
    mine = tmp_path / f".split.json.tmp-{os.getpid()}"
    other = tmp_path / "notes.tmp-1"
    for p in (dead, mine, other):
        p.write_text("x")
    assert files.remove_stale_temporaries(tmp_path) == [dead]
    assert mine.exists() and other.exists()


def test_a_one_class_data_set_is_refused(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "one", ("awe",), n=8)
    with pytest.raises(sm.SentimentMetricError, match=r"1 class\(es\) \['awe'\]"):
        train(_config(root, tmp_path / "out", m_per_class=4))


def test_an_unreadable_image_is_left_out_never_substituted(
    folder: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    _write_folder(root)
    bad = _truncated_jpeg(root / "awe" / "awe_zz.jpg")
    model, _ = load_model(uninterrupted / "last.pt")
    ds = _folder_ds(root)
    with pytest.warns(UserWarning, match="left out 1 unreadable"):
        res = compute_embeddings(model, ds, batch_size=5)
    paths = [p for p, _ in ds.samples]
    assert str(bad) in paths and len(res["indices"]) == len(paths) - 1
    assert paths.index(str(bad)) not in res["indices"].tolist()
    assert "awe_zz.jpg" in res["skipped"][0][1]
    # the embeddings of the files kept are those of a set without the broken file
    clean = _folder_ds(folder)
    ref = compute_embeddings(model, clean, batch_size=5)
    assert torch.allclose(res["embeddings"], ref["embeddings"], atol=1e-6)

    npz = tmp_path / "e.npz"
    with pytest.warns(UserWarning, match="awe_zz.jpg"):
        info = export_embeddings(uninterrupted / "last.pt", npz, images=[root])
    saved = np.load(npz)
    assert info["num"] == len(paths) - 1 and str(bad) not in saved["paths"].tolist()
    assert len(saved["paths"]) == saved["embeddings"].shape[0]
    assert "awe_zz.jpg" in info["skipped"][0]
    with pytest.raises(sm.SentimentMetricError, match="awe_zz.jpg"):
        export_embeddings(uninterrupted / "last.pt", npz, images=[root], strict=True)


def _folder_ds(root: Path) -> object:
    from sentiment_metric.recipes.datasets import EmotionImageFolder
    from sentiment_metric.recipes.transforms import eval_transform

    return EmotionImageFolder(root, split="all", transform=eval_transform(32))


def test_a_checkpoint_whose_config_does_not_match_its_weights_is_one_line(
    uninterrupted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = load_checkpoint(uninterrupted / "last.pt")
    variants = {
        "width": ({**ckpt, "config": {**ckpt["config"], "width": 8}}, "another shape"),
        "names": ({**ckpt, "class_names": ckpt["class_names"][:3]}, "another shape"),
        "tensor": (
            {**ckpt, "model": dict(list(ckpt["model"].items())[1:])},
            "1 tensor.s. missing",
        ),
        "config": ({k: v for k, v in ckpt.items() if k != "config"}, "has no 'config'"),
    }
    for name, (bad, fragment) in variants.items():
        path = tmp_path / f"{name}.pt"
        atomic_save(bad, path)
        with pytest.raises(sm.SentimentMetricError, match=fragment):
            load_model(path)
        assert main(["evaluate", str(path), "--out", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("device", ["tpu", "gpu", "xla", "meta", "mps"])
def test_unknown_devices_are_refused(device: str) -> None:
    with pytest.raises(sm.SentimentMetricError, match="device must be auto, cpu or cuda"):
        resolve_device(device)


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".npy"])
def test_a_failed_export_leaves_the_previous_one_whole(
    folder: Path, uninterrupted: Path, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: a full disk left a truncated export (and a raw ``basic_ios::clear``)."""
    out = tmp_path / f"e{suffix}"
    export_embeddings(uninterrupted / "last.pt", out, images=[folder / "awe"])
    good = out.read_bytes()

    def full_disk(obj: object, f: object, *a: object, **kw: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(np, "save", lambda f, arr: full_disk(arr, f))
    monkeypatch.setattr(np, "savez", lambda f, **kw: full_disk(kw, f))
    with pytest.raises(sm.SentimentMetricError, match=r"could not be written .*basic_ios"):
        export_embeddings(uninterrupted / "last.pt", out, images=[folder])
    assert out.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_export_path_with_a_line_break_is_refused_for_npy(
    folder: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    odd = tmp_path / "a\nb.jpg"
    odd.write_bytes((folder / "awe" / sorted(os.listdir(folder / "awe"))[0]).read_bytes())
    with pytest.raises(sm.SentimentMetricError, match="line break"):
        export_embeddings(uninterrupted / "last.pt", tmp_path / "e.npy", images=[odd])
    info = export_embeddings(uninterrupted / "last.pt", tmp_path / "e.pt", images=[odd])
    assert torch.load(tmp_path / "e.pt")["paths"] == [str(odd)] and info["num"] == 1
