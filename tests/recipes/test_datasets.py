"""Dataset readers on small folders written by the tests (real JPEG/PNG files via Pillow)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import sentiment_metric as sm
from sentiment_metric.recipes import (
    DATASETS,
    FI,
    Abstract,
    AffectiveTextures,
    ArtPhoto,
    EmoSet,
    EmotionImageDataset,
    EmotionImageFolder,
    build_dataset,
    eval_transform,
    stratified_split,
    train_transform,
)
from sentiment_metric.recipes.datasets import EMOSET_CLASSES

COLORS = {e: (30 * i, 255 - 30 * i, 100) for i, e in enumerate(sorted(sm.MIKELS_WHEEL.emotions))}


def write_image(path: Path, color: tuple[int, int, int] = (10, 20, 30), size: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.new("RGB", (size, size), color).save(path, format=fmt)
    return path


def write_corrupt(path: Path) -> Path:
    """A JPEG cut after a few bytes: its header cannot be parsed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, size=32)
    data = path.read_bytes()
    path.write_bytes(data[:10])
    return path


def write_body_truncated(path: Path) -> Path:
    """A JPEG whose header is intact but whose pixel data is cut: only a decode sees it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.effect_noise((64, 64), 60).convert("RGB")
    img.save(path, format="JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_folders(root: Path, counts: dict[str, int], ext: str = ".jpg") -> Path:
    for emo, n in counts.items():
        for i in range(n):
            write_image(root / emo / f"{emo}_{i:03d}{ext}", COLORS.get(emo, (0, 0, 0)))
    return root


def quiet(fn, *args, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def check_surface(ds: EmotionImageDataset) -> None:
    """The common contract: classes, targets, samples, (image, label), relations by name."""
    assert len(ds.targets) == len(ds) == len(ds.samples)
    assert [lab for _, lab in ds.samples] == ds.targets
    assert all(0 <= t < len(ds.classes) for t in ds.targets)
    assert all(c in sm.MIKELS_WHEEL.emotions for c in ds.classes)
    rel = sm.MIKELS_WHEEL.relations(ds.classes)
    assert rel.num_classes == len(ds.classes)
    img, label = ds[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert label == ds.targets[0]


# -- emotion folders / FI ----------------------------------------------------------------------


def test_folder_classes_sorted_and_aliases(tmp_path: Path) -> None:
    make_folders(tmp_path, {"sad": 2, "Amusement": 2, "content": 1, "anger": 1})
    ds = EmotionImageFolder(tmp_path)
    assert ds.classes == ["amusement", "anger", "contentment", "sadness"]
    assert ds.targets == [0, 0, 1, 2, 3, 3]
    check_surface(ds)
    assert ds.skipped == []


def test_folder_transform_applied(tmp_path: Path) -> None:
    make_folders(tmp_path, {"awe": 2, "fear": 2})
    ds = EmotionImageFolder(tmp_path, transform=eval_transform(16))
    x, y = ds[3]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 16, 16) and y == 1
    x2, _ = EmotionImageFolder(tmp_path, transform=train_transform(8))[0]
    assert x2.shape == (3, 8, 8)


def test_fi_flat_fi_order(tmp_path: Path, fi_order: list[str]) -> None:
    make_folders(tmp_path, {e: 1 for e in fi_order})
    ds = FI(tmp_path, split="all")
    assert ds.classes == fi_order
    assert ds.layout == "emotion_folders"
    assert ds.targets == list(range(8))
    check_surface(ds)


def test_unknown_emotion_folder(tmp_path: Path) -> None:
    make_folders(tmp_path, {"amusement": 1, "joy": 1})
    with pytest.raises(sm.SentimentMetricError) as err:
        FI(tmp_path, split="all")
    msg = str(err.value)
    assert "joy" in msg and "known names" in msg and "sadness" in msg and "sad->sadness" in msg


def test_duplicate_emotion_folders(tmp_path: Path) -> None:
    make_folders(tmp_path, {"sad": 1, "sadness": 1})
    with pytest.raises(sm.SentimentMetricError, match="both name the emotion 'sadness'"):
        EmotionImageFolder(tmp_path)


def test_missing_and_empty_roots(tmp_path: Path) -> None:
    with pytest.raises(sm.SentimentMetricError, match="does not exist"):
        FI(tmp_path / "nope")
    with pytest.raises(sm.SentimentMetricError, match="no emotion folders"):
        FI(tmp_path, split="all")
    (tmp_path / "awe").mkdir()
    with pytest.raises(sm.SentimentMetricError, match="empty"):
        FI(tmp_path, split="all")
    with pytest.raises(sm.SentimentMetricError, match="is not a folder"):
        EmotionImageFolder(write_image(tmp_path / "x.jpg"))


def test_bad_split_name(tmp_path: Path) -> None:
    make_folders(tmp_path, {"awe": 1})
    with pytest.raises(sm.SentimentMetricError, match="split must be one of"):
        FI(tmp_path, split="training")


def test_generated_split_stratified_stable_and_reused(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "fi", {"amusement": 20, "fear": 40, "awe": 60})
    split_file = tmp_path / "run" / "split.json"
    parts = {s: FI(root, split=s, seed=3, split_file=split_file) for s in ("train", "val", "test")}
    # stratified 80/5/15 per class
    for s, (n_a, n_f, n_w) in {
        "train": (16, 32, 48),
        "val": (1, 2, 3),
        "test": (3, 6, 9),
    }.items():
        assert parts[s].class_counts() == {"amusement": n_a, "awe": n_w, "fear": n_f}, s
    # disjoint, covering
    paths = [{p for p, _ in parts[s].samples} for s in parts]
    assert sum(map(len, paths)) == 120 and len(set.union(*paths)) == 120
    # written next to the run, with relative paths
    payload = json.loads(split_file.read_text())
    assert payload["seed"] == 3 and len(payload["splits"]["val"]) == 6
    assert all(not Path(p).is_absolute() for p in payload["splits"]["train"])
    # same seed, same split, with or without the file; another seed differs
    again = FI(root, split="test", seed=3)
    assert again.samples == parts["test"].samples
    assert FI(root, split="test", seed=4).samples != parts["test"].samples
    # the file wins over the seed: reused, not rewritten
    mtime = split_file.stat().st_mtime_ns
    reused = FI(root, split="test", seed=99, split_file=split_file)
    assert reused.samples == parts["test"].samples
    assert split_file.stat().st_mtime_ns == mtime


def test_split_file_reuse_reports_missing_and_new(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "fi", {"amusement": 10, "fear": 10})
    split_file = tmp_path / "split.json"
    train = FI(root, split="train", split_file=split_file)
    gone = Path(train.samples[0][0])
    gone.unlink()
    write_image(root / "fear" / "new.jpg")
    with pytest.warns(UserWarning) as rec:
        again = FI(root, split="train", split_file=split_file)
    assert len(again) == len(train) - 1
    assert again.skipped == [(str(gone), "listed in split_file, not found")]
    text = " ".join(str(w.message) for w in rec)
    assert "in no split" in text and "skipped 1" in text
    with pytest.raises(sm.SentimentMetricError, match="not a split"):
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]")
        FI(root, split="train", split_file=bad)


def test_fi_split_folders(tmp_path: Path) -> None:
    make_folders(tmp_path / "train", {"awe": 3, "fear": 2})
    make_folders(tmp_path / "val", {"awe": 1, "fear": 1})
    make_folders(tmp_path / "test", {"awe": 1, "sad": 2})
    tr = FI(tmp_path, split="train")
    te = FI(tmp_path, split="test")
    assert tr.layout == "split_folders"
    # one label order across splits, from the union of emotions
    assert tr.classes == te.classes == ["awe", "fear", "sadness"]
    assert tr.class_counts() == {"awe": 3, "fear": 2, "sadness": 0}
    assert te.targets == [0, 2, 2]
    assert len(FI(tmp_path, split="all")) == 10
    check_surface(te)


def test_fi_split_folder_missing(tmp_path: Path) -> None:
    make_folders(tmp_path / "train", {"awe": 1})
    make_folders(tmp_path / "test", {"awe": 1})
    with pytest.raises(sm.SentimentMetricError, match=r"split 'val'.*does not exist"):
        FI(tmp_path, split="val")


def test_fi_list_file_names_and_indices(tmp_path: Path, fi_order: list[str]) -> None:
    make_folders(tmp_path / "images", {"amusement": 2, "sadness": 2, "awe": 1})
    lines = [
        "# path label",
        "images/amusement/amusement_000.jpg amusement",
        "images/amusement/amusement_001.jpg 0",  # index into FI's sorted order
        "images/sadness/sadness_000.jpg sad",
        "images/sadness/sadness_001.jpg 7",
        "",
        "images/awe/awe_000.jpg,2",
    ]
    lf = tmp_path / "all.txt"
    lf.write_text("\n".join(lines))
    ds = FI(tmp_path, split="all", list_file=lf)
    assert ds.layout == "list"
    assert ds.classes == fi_order
    assert ds.targets == [0, 0, 7, 7, 2]  # file order
    check_surface(ds)
    # root given as the list file itself; a generated split over it
    assert len(FI(lf, split="all")) == 5
    # names only: classes are the names found, sorted
    lf2 = tmp_path / "names.txt"
    lf2.write_text("images/sadness/sadness_000.jpg sadness\nimages/awe/awe_000.jpg awe\n")
    assert FI(tmp_path, split="all", list_file=lf2).classes == ["awe", "sadness"]


def test_fi_list_file_bad_labels(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg")
    lf = tmp_path / "l.txt"
    lf.write_text("a.jpg 8\n")
    with pytest.raises(sm.SentimentMetricError, match=r"line 1: label 8 is out of range"):
        FI(tmp_path, split="all", list_file=lf)
    lf.write_text("a.jpg joy\n")
    with pytest.raises(sm.SentimentMetricError, match=r"line 1.*unknown emotion 'joy'"):
        FI(tmp_path, split="all", list_file=lf)
    lf.write_text("justonetoken\n")
    with pytest.raises(sm.SentimentMetricError, match="expected 'path label'"):
        FI(tmp_path, split="all", list_file=lf)


def test_fi_split_list_files(tmp_path: Path) -> None:
    make_folders(tmp_path / "img", {"awe": 2, "fear": 2})
    (tmp_path / "train.txt").write_text("img/awe/awe_000.jpg 2\nimg/fear/fear_000.jpg 6\n")
    (tmp_path / "test.txt").write_text("img/awe/awe_001.jpg 2\n")
    ds = FI(tmp_path, split="train")
    assert ds.layout == "split_lists" and ds.targets == [2, 6]
    assert FI(tmp_path, split="test").targets == [2]
    with pytest.raises(sm.SentimentMetricError, match="val.txt"):
        FI(tmp_path, split="val")


# -- unreadable images -------------------------------------------------------------------------


def test_corrupt_image_skipped_and_reported(tmp_path: Path) -> None:
    make_folders(tmp_path, {"awe": 2, "fear": 2})
    bad = write_corrupt(tmp_path / "fear" / "broken.jpg")
    empty = tmp_path / "awe" / "empty.png"
    empty.write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable image") as rec:
        ds = EmotionImageFolder(tmp_path)
    assert str(bad) in str(rec[0].message) and str(empty) in str(rec[0].message)
    assert sorted(p for p, _ in ds.skipped) == sorted([str(bad), str(empty)])
    assert len(ds) == 4 and all(p not in {str(bad), str(empty)} for p, _ in ds.samples)
    for i in range(len(ds)):
        ds[i]


def test_corrupt_image_strict_raises(tmp_path: Path) -> None:
    make_folders(tmp_path, {"awe": 2})
    bad = write_corrupt(tmp_path / "awe" / "broken.jpg")
    with pytest.raises(sm.SentimentMetricError, match="broken.jpg") as err:
        EmotionImageFolder(tmp_path, strict=True)
    assert str(bad) in str(err.value)


def test_body_truncated_verify_and_lazy(tmp_path: Path) -> None:
    make_folders(tmp_path, {"awe": 2, "fear": 1})
    bad = write_body_truncated(tmp_path / "awe" / "zz_cut.jpg")
    # the header check passes it; verify=True decodes and catches it at scan
    lazy = EmotionImageFolder(tmp_path)
    assert lazy.skipped == [] and len(lazy) == 4
    with pytest.warns(UserWarning, match="skipped 1"):
        full = EmotionImageFolder(tmp_path, verify=True)
    assert [p for p, _ in full.skipped] == [str(bad)]
    # lazily: reported by path and replaced by a readable image of the same class
    i = [p for p, _ in lazy.samples].index(str(bad))
    with pytest.warns(UserWarning, match="zz_cut.jpg"):
        img, label = lazy[i]
    assert label == lazy.targets[i] == 0 and img.size == (12, 12)
    assert [p for p, _ in lazy.skipped] == [str(bad)]
    strict = EmotionImageFolder(tmp_path, strict=True)
    with pytest.raises(sm.SentimentMetricError, match="zz_cut.jpg"):
        strict[i]


# -- EmoSet ------------------------------------------------------------------------------------


def make_emoset(root: Path) -> dict[str, list[list[str]]]:
    splits: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
    plan = {
        "train": {"amusement": 2, "sadness": 2, "awe": 1},
        "val": {"fear": 1},
        "test": {"anger": 1},
    }
    for split, counts in plan.items():
        for emo, n in counts.items():
            for i in range(n):
                name = f"{emo}_{split}_{i}"
                write_image(root / "image" / emo / f"{name}.jpg")
                splits[split].append(
                    [emo, name, f"image/{emo}/{name}.jpg", f"annotation/{emo}/{name}.json"]
                )
        (root / f"{split}.json").write_text(json.dumps(splits[split]))
    return splits


def test_emoset_order_and_entries(tmp_path: Path) -> None:
    make_emoset(tmp_path)
    ds = EmoSet(tmp_path, split="train")
    assert ds.classes == list(EMOSET_CLASSES)
    assert ds.classes == [
        "amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness"
    ]  # fmt: skip
    assert ds.targets == [0, 0, 7, 7, 1]
    assert ds.ids[:2] == ["amusement_train_0", "amusement_train_1"]
    assert ds.annotations[0].endswith("annotation/amusement/amusement_train_0.json")
    check_surface(ds)
    assert EmoSet(tmp_path, split="val").targets == [6]
    assert len(EmoSet(tmp_path, split="all")) == 7
    rel = sm.MIKELS_WHEEL.relations(ds.classes)
    assert rel.level[0, 1] == 1 and rel.level[0, 4] == 2  # amusement~awe; amusement/anger
    assert rel.dis[0, 4] == 2  # amusement and anger are wheel neighbours


def test_emoset_info_json_order(tmp_path: Path) -> None:
    make_emoset(tmp_path)
    order = ["sadness", "amusement", "awe", "fear", "anger"]
    info = {"emotion": {"label2idx": {e: i for i, e in enumerate(order)}}}
    (tmp_path / "info.json").write_text(json.dumps(info))
    ds = EmoSet(tmp_path, split="train")
    assert ds.classes == order and ds.targets == [1, 1, 0, 0, 2]


def test_emoset_errors(tmp_path: Path) -> None:
    make_emoset(tmp_path)
    (tmp_path / "val.json").unlink()
    with pytest.raises(sm.SentimentMetricError, match="val.json"):
        EmoSet(tmp_path, split="val")
    (tmp_path / "test.json").write_text(json.dumps([["joy", "x", "image/x.jpg", "a.json"]]))
    with pytest.raises(sm.SentimentMetricError, match=r"entry 0.*unknown emotion 'joy'"):
        EmoSet(tmp_path, split="test")
    (tmp_path / "test.json").write_text(json.dumps([["awe"]]))
    with pytest.raises(sm.SentimentMetricError, match="entry 0: expected"):
        EmoSet(tmp_path, split="test")
    # a listed image that is missing is skipped and reported
    (tmp_path / "test.json").write_text(
        json.dumps(
            [
                ["awe", "gone", "image/awe/gone.jpg", "a.json"],
                ["sadness", "s", "image/sadness/sadness_train_0.jpg", "a.json"],
            ]
        )
    )
    with pytest.warns(UserWarning, match="gone.jpg"):
        ds = EmoSet(tmp_path, split="test")
    assert ds.skipped == [(str(tmp_path / "image/awe/gone.jpg"), "missing file")]
    with pytest.raises(sm.SentimentMetricError, match="gone.jpg"):
        EmoSet(tmp_path, split="test", strict=True)


# -- ArtPhoto ----------------------------------------------------------------------------------


def test_artphoto_prefixes(tmp_path: Path) -> None:
    for name in ["sad_1.jpg", "sad_22.jpg", "amusement_12.jpg", "content_3.png", "Fear7.jpg"]:
        write_image(tmp_path / "sub" / name if name.startswith("sad_2") else tmp_path / name)
    (tmp_path / "readme.txt").write_text("not an image")
    ds = ArtPhoto(tmp_path)
    assert ds.classes == ["amusement", "contentment", "fear", "sadness"]
    by_name = {Path(p).name: ds.classes[t] for p, t in ds.samples}
    assert by_name == {
        "sad_1.jpg": "sadness",
        "sad_22.jpg": "sadness",
        "amusement_12.jpg": "amusement",
        "content_3.png": "contentment",
        "Fear7.jpg": "fear",
    }
    check_surface(ds)


def test_artphoto_unknown_prefix(tmp_path: Path) -> None:
    write_image(tmp_path / "sad_1.jpg")
    write_image(tmp_path / "happy_1.jpg")
    with pytest.raises(sm.SentimentMetricError, match=r"happy_1.jpg.*unknown emotion 'happy'"):
        ArtPhoto(tmp_path)
    write_image(tmp_path / "x" / "123.jpg")
    (tmp_path / "happy_1.jpg").unlink()
    with pytest.raises(sm.SentimentMetricError, match="cannot read an emotion prefix"):
        ArtPhoto(tmp_path)


def test_artphoto_generated_split(tmp_path: Path) -> None:
    for i in range(20):
        write_image(tmp_path / f"sad_{i}.jpg")
        write_image(tmp_path / f"awe_{i}.jpg")
    parts = [len(ArtPhoto(tmp_path, split=s, seed=1)) for s in ("train", "val", "test")]
    assert parts == [32, 2, 6]


# -- Abstract ----------------------------------------------------------------------------------


def test_abstract_votes_majority_and_ties(tmp_path: Path, fi_order: list[str]) -> None:
    for i in range(1, 6):
        write_image(tmp_path / "testImages_abstract" / f"abstract_{i}.jpg")
    rows = [
        "'Filename','Amusement','Anger','Awe','Content','Disgust','Excitement','Fear','Sad'",
        "'abstract_1.jpg',5,0,1,0,0,0,0,0",
        "'abstract_2.jpg',0,0,0,3,0,0,0,4",
        "'abstract_3.jpg',2,0,2,0,0,0,0,0",  # tie
        "'abstract_4.jpg',0,1,0,0,1,0,1,0",  # three-way tie
        "'abstract_5.jpg',0,0,0,0,0,0,0,0",  # no votes
        "'abstract_9.jpg',0,0,0,9,0,0,0,0",  # image missing
    ]
    (tmp_path / "ABSTRACT_groundTruth.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning) as rec:
        ds = Abstract(tmp_path)
    assert ds.classes == fi_order
    assert ds.num_ties == 2
    assert [n for n, _ in ds.dropped] == ["abstract_3.jpg", "abstract_4.jpg", "abstract_5.jpg"]
    assert "tie between amusement, awe" in ds.dropped[0][1]
    assert {Path(p).name: ds.classes[t] for p, t in ds.samples} == {
        "abstract_1.jpg": "amusement",
        "abstract_2.jpg": "sadness",
    }
    assert [Path(p).name for p, _ in ds.skipped] == ["abstract_9.jpg"]
    msgs = " ".join(str(w.message) for w in rec)
    assert "2 tie(s)" in msgs and "abstract_9.jpg" in msgs
    check_surface(ds)


def test_abstract_semicolon_csv_and_errors(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg")
    (tmp_path / "votes.csv").write_text('"file";"awe";"fear"\n"a.jpg";1;4\n')
    ds = Abstract(tmp_path)
    assert ds.classes == ["awe", "fear"] and ds.targets == [1] and ds.num_ties == 0
    (tmp_path / "votes.csv").write_text("file,awe,joy\na.jpg,1,4\n")
    with pytest.raises(sm.SentimentMetricError, match=r"(?s)column 'joy'.*known names"):
        Abstract(tmp_path)
    (tmp_path / "votes.csv").write_text("file,awe,fear\na.jpg,1,x\n")
    with pytest.raises(sm.SentimentMetricError, match="line 2: vote counts must be numbers"):
        Abstract(tmp_path, csv="votes.csv")
    with pytest.raises(sm.SentimentMetricError, match="does not exist"):
        Abstract(tmp_path, csv="other.csv")
    (tmp_path / "votes.csv").unlink()
    with pytest.raises(sm.SentimentMetricError, match="pass csv="):
        Abstract(tmp_path)


# -- registry --------------------------------------------------------------------------------


def test_build_dataset_registry(tmp_path: Path) -> None:
    assert set(DATASETS) == {"textures", "fi", "emoset", "artphoto", "abstract", "folder"}
    make_folders(tmp_path / "fi", {"awe": 10, "fear": 10})
    ds = build_dataset("fi", tmp_path / "fi", split="val", seed=0)
    assert isinstance(ds, FI) and len(ds) == 2
    folder = build_dataset("folder", tmp_path / "fi", split="all", transform=eval_transform(8))
    assert folder[0][0].shape == (3, 8, 8)
    tex = build_dataset("textures", split="test", num_images=8, image_size=16)
    assert isinstance(tex, AffectiveTextures) and len(tex) == 8
    with pytest.raises(sm.SentimentMetricError, match="name must be one of"):
        build_dataset("imagenet", tmp_path)
    with pytest.raises(sm.SentimentMetricError, match="root is required"):
        build_dataset("fi")
    with pytest.raises(sm.SentimentMetricError, match="root must be None"):
        build_dataset("textures", tmp_path)
    with pytest.raises(sm.SentimentMetricError, match="does not exist"):
        build_dataset("emoset", tmp_path / "missing")


def test_stratified_split_function() -> None:
    labels = [0] * 7 + [1] * 100 + [2] * 1
    parts = stratified_split(labels, seed=5)
    assert sorted(i for v in parts.values() for i in v) == list(range(len(labels)))
    assert parts == stratified_split(labels, seed=5)
    counts = {k: [sum(labels[i] == c for i in v) for c in range(3)] for k, v in parts.items()}
    assert counts["train"] == [6, 80, 1] and counts["val"] == [0, 5, 0]
    assert counts["test"] == [1, 15, 0]
    with pytest.raises(sm.SentimentMetricError, match="summing to 1"):
        stratified_split(labels, fractions=(0.5, 0.5, 0.5))


def test_symlink_loop_counts_each_file_once(tmp_path: Path) -> None:
    """Issue 19: ``ln -s .. awe/up`` once made 8 images thousands of mislabelled samples."""
    make_folders(tmp_path, {"awe": 4, "fear": 4})
    (tmp_path / "awe" / "up").symlink_to("..")
    (tmp_path / "awe" / "again").symlink_to(".")
    (tmp_path / "fear" / "twin.jpg").symlink_to(tmp_path / "fear" / "fear_000.jpg")
    ds = EmotionImageFolder(tmp_path)
    assert sorted(Path(p).name for p, _ in ds.samples) == sorted(
        [f"awe_{i:03d}.jpg" for i in range(4)] + [f"fear_{i:03d}.jpg" for i in range(4)]
    )
    assert ds.targets == [0] * 4 + [1] * 4


def test_retrieval_gallery_lists_each_file_once(tmp_path: Path) -> None:
    from sentiment_metric.recipes.retrieve import list_images

    make_folders(tmp_path, {"awe": 3})
    (tmp_path / "awe" / "up").symlink_to("..")
    found = list_images([tmp_path, tmp_path / "awe", tmp_path / "awe" / "awe_000.jpg"])
    assert [p.name for p in found] == [f"awe_{i:03d}.jpg" for i in range(3)]
