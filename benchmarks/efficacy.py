"""Does it help? Better mistakes: hierarchy-aware objectives against flat ones (issues 13, 17).

Arms trained identically but for the objective, on the same data, schedule and seeds:

- **softmax**: cross-entropy;
- **soft labels**: cross-entropy on targets ``∝ exp(-β·(dis - 1))`` from the hierarchy
  (Bertinetto et al., "Making Better Mistakes", CVPR 2020);
- **softmax + PML triplet**: ``(1 - ω)·CE + ω·TripletMarginLoss`` with PML's semi-hard
  ``TripletMarginMiner`` (margin 0.2), the flat metric-learning baseline;
- **sentiment constraints**: ``(1 - ω)·CE + ω·SentimentConstraintLoss`` (the paper's two-level
  constraints) on the pooled embedding, every ranked triplet;
- **hierarchical proxies**: ``(1 - ω)·CE + ω·HierarchicalProxyLoss`` (fixed class centres whose
  cosines the hierarchy sets, after Barz & Denzler, WACV 2019);
- **smooth H-AP**: ``(1 - ω)·CE + ω·HierarchicalAPLoss`` (HAPPIER, Ramzi et al., ECCV 2022).

Every trained model is also read **with conditional risk minimisation** ("+ CRM", Karthik et
al., ICLR 2021): classification by the least expected hierarchy cost
(``functional.expected_cost_predictions``) and retrieval by distance plus ``w`` times the
expected cost (``functional.expected_cost_embedding``), ``w`` chosen on validation. CRM needs
no training: the "+ CRM" rows are the same runs read differently.

**Protocol**, fixed before any test number was seen: each family's hyper-parameters (and each
"+ CRM" row's ``w``) are chosen on the **validation** split (mean over the first two seeds) by
H-AP among the configurations whose validation accuracy is within 0.5 point of softmax's (if
none is, the most accurate); every arm is then reported on the **test** split, mean ± std
over every seed (five by default). Retrieval ranks the L2-normalised embeddings of the split
against each other. The sentiment-constraints arm records, on the first batch of each epoch,
what each constraint level does (``_diagnosis.py``).

Measures: accuracy, the share of errors that miss the group and the mean hierarchy distance of
errors (classification); MAP@R, H-AP, the share of wrong-class top-10 neighbours in the other
group and the mean hierarchy distance@10 (retrieval). Data: ``_study_data.py`` (the textures,
scikit-learn's digits with two groupings fixed up front, each also on frozen ImageNet
EfficientNet-lite0 features, ``_pretrained.py``).

Run: ``python benchmarks/efficacy.py [--quick] [--data digits-parity ...] [--seeds 0 1 2 3 4]
[--jobs 2] [--update]``. Writes ``results/efficacy-cpu.json`` and ``.md`` (machine, versions,
date, every run; with ``--update`` the data sets run replace theirs in the existing file and
the others are kept, each study naming its own machine and date) and the figure
``results/efficacy-cpu.png`` (copied to ``docs/_static/efficacy.png``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import RESULTS, machine_info, write_results
from _diagnosis import constraint_diagnosis
from _efficacy_report import (
    BASELINES,
    CRM,
    HIERARCHY_FAMILIES,
    LOWER_IS_BETTER,
    MEASURES,
    RETRIEVAL,
    plot,
    tables,
)
from _pretrained import load_pretrained_data, pretrained_head
from _study_data import PRETRAINED, QUICK, SCHEDULES, load_data
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import samplers
from pytorch_metric_learning.distances import DotProductSimilarity

import sentiment_metric as sm
from sentiment_metric.models import small_convnet

SELECT_BY = "hierarchical_average_precision"
ACCURACY_SLACK = 0.005
"""Selection: configurations within this much validation accuracy of softmax's compete."""
CRM_WEIGHTS = (0.5, 1.0, 2.0, 4.0)
"""The expected-cost weights ``w`` tried on validation for the "+ CRM" rows."""
FAMILIES: dict[str, list[dict[str, Any]]] = {
    "softmax": [{"objective": "softmax"}],
    "soft labels": [{"objective": "soft", "beta": b} for b in (2.0, 4.0, 8.0)],
    "softmax + PML triplet": [{"objective": "triplet", "omega": w} for w in (0.2, 0.5)],
    "sentiment constraints": [
        {"objective": "constraints", "omega": w, "weighting": wt, "wheel_margin": b}
        for w in (0.2, 0.5)
        for wt, b in (("inverse_wheel", 0.0), ("none", 0.1))
    ],
    "hierarchical proxies": [
        {"objective": "proxies", "omega": w, "temperature": 0.1} for w in (0.2, 0.5)
    ],
    "smooth H-AP": [{"objective": "hap", "omega": w} for w in (0.2, 0.5)],
}


def build_objective(cfg: dict[str, Any], rel: Any, seed: int, embedding_size: int) -> Any:
    """``loss(embeddings, logits, labels) -> scalar`` for one arm."""
    kind, omega = cfg["objective"], cfg.get("omega", 0.2)
    miner = None
    if kind == "softmax":
        return lambda e, z, y: F.cross_entropy(z, y)
    if kind == "soft":
        targets = torch.softmax(-cfg["beta"] * (rel.dis.float() - 1.0), dim=1)
        return lambda e, z, y: -(targets[y] * F.log_softmax(z, dim=1)).sum(1).mean()
    if kind == "triplet":
        metric = pml_losses.TripletMarginLoss(margin=0.2)
        miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    elif kind == "constraints":
        metric = sm.SentimentConstraintLoss(
            relations=rel,
            weighting=cfg.get("weighting", "inverse_wheel"),
            wheel_margin=cfg.get("wheel_margin", 0.0),
        )
    elif kind == "proxies":
        metric = sm.HierarchicalProxyLoss(
            embedding_size, relations=rel, temperature=cfg["temperature"], seed=seed
        )
    elif kind == "hap":
        metric = sm.HierarchicalAPLoss(relations=rel)
    else:
        raise ValueError(f"unknown objective {kind!r}")
    return sm.MultiTaskSentimentLoss(omega=omega, metric_loss=metric, miner=miner)


def build_model(data_name: str, s: dict[str, Any], in_features: int, num_classes: int) -> Any:
    """The model and its optimiser's parameter groups."""
    if data_name.endswith(PRETRAINED):
        model = pretrained_head(in_features, num_classes, s["width"])
        return model, [{"params": list(model.parameters())}]
    model = sm.SentimentModel(
        backbone=small_convnet(s["width"]),
        layers=["layer1", "layer2", "layer3"],
        num_classes=num_classes,
        embedding="fc",
        dry_run_shape=(3, s["size"], s["size"]),
    )
    backbone = {id(p) for p in model.backbone.parameters()}
    head = [p for p in model.parameters() if id(p) not in backbone]
    groups = [{"params": list(model.backbone.parameters())}, {"params": head, "lr": 5 * s["lr"]}]
    return model, groups


def get_data(data_name: str, quick: bool) -> Any:
    if data_name.endswith(PRETRAINED):
        return load_pretrained_data(data_name.removesuffix(PRETRAINED), quick)
    return load_data(data_name, quick)


def train_and_evaluate(
    data_name: str, cfg: dict[str, Any], seed: int, split: str, quick: bool
) -> dict[str, Any]:
    """Train one arm with one seed; the measures on ``split`` (plain and with CRM)."""
    torch.set_num_threads(1)
    s = (QUICK if quick else SCHEDULES)[data_name]
    data, rel = get_data(data_name, quick)
    x_train, y_train = data["train"]
    torch.manual_seed(seed)
    model, groups = build_model(data_name, s, x_train.shape[1], rel.num_classes)
    loss_fn = build_objective(cfg, rel, seed, 4 * s["width"])
    opt = torch.optim.SGD(groups, lr=s["lr"], momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, s["lr_step"], 0.1)
    batch = s["batch"]
    sampler = samplers.MPerClassSampler(
        y_train.tolist(), m=batch // rel.num_classes, length_before_new_iter=len(y_train)
    )
    diagnosis = []
    for epoch in range(s["epochs"]):
        model.train()
        # PML's MPerClassSampler shuffles with numpy's global RNG: seed it, or the batch order
        # depends on what ran before in the worker process
        np.random.seed(seed * 1000 + epoch)  # noqa: NPY002 (the sampler reads this global RNG)
        order = torch.tensor(list(iter(sampler)))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start : start + batch]
            emb, logits = model(x_train[idx])
            if start == 0 and cfg["objective"] == "constraints":
                diagnosis.append(constraint_diagnosis(loss_fn.metric_loss, emb, y_train[idx]))
            loss = loss_fn(emb, logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    out = evaluate(model, *data[split], rel)
    if diagnosis:
        out["diagnosis"] = diagnosis
    return out


@torch.no_grad()
def evaluate(model: Any, x: torch.Tensor, y: torch.Tensor, rel: Any) -> dict[str, Any]:
    """``{"plain": measures, "crm": {w: measures}}``."""
    model.eval()
    parts = [model(x[i : i + 256]) for i in range(0, len(y), 256)]
    emb = torch.cat([p[0] for p in parts]).float()
    logits = torch.cat([p[1] for p in parts]).float()
    calc = sm.AffectiveAccuracyCalculator(relations=rel, k=10, include=RETRIEVAL)
    dot = sm.AffectiveAccuracyCalculator(
        relations=rel, k=10, include=RETRIEVAL,
        distance=DotProductSimilarity(normalize_embeddings=False),
    )  # fmt: skip
    plain = classification(logits.argmax(1), y, rel)
    plain.update({k: float(v) for k, v in calc.get_accuracy(F.normalize(emb, dim=1), y).items()})
    crm_cls = classification(sm.functional.expected_cost_predictions(logits, rel.dis), y, rel)
    crm = {}
    for w in CRM_WEIGHTS:
        z = sm.functional.expected_cost_embedding(emb, logits, rel.dis, w)
        crm[str(w)] = {**crm_cls, **{k: float(v) for k, v in dot.get_accuracy(z, y).items()}}
    return {"plain": plain, "crm": crm}


def classification(preds: torch.Tensor, y: torch.Tensor, rel: Any) -> dict[str, float]:
    wrong = preds != y
    out = {"accuracy": float((~wrong).double().mean())}
    if bool(wrong.any()):
        out["group_miss_share_of_errors"] = float(
            sm.functional.group_miss_share_of_errors(preds, y, rel.groups)
        )
        out["mean_wheel_distance_of_errors"] = float(
            sm.functional.mean_wheel_distance_of_errors(preds, y, rel.dis)
        )
    else:  # no mistake at all: nothing to be severe about
        out["group_miss_share_of_errors"] = 0.0
        out["mean_wheel_distance_of_errors"] = 0.0
    return out


def run_jobs(jobs: list[tuple[Any, ...]], workers: int) -> list[dict[str, Any]]:
    """Each job ``(data, cfg, seed, split, quick)`` in a pool of single-threaded processes;
    one progress line per finished run."""
    out: list[dict[str, Any] | None] = [None] * len(jobs)

    def done(i: int, res: dict[str, Any]) -> None:
        out[i] = res
        data, cfg, seed, split = jobs[i][:4]
        print(
            f"[{sum(r is not None for r in out)}/{len(jobs)}] {data} {split} seed {seed} "
            f"{json.dumps(cfg, ensure_ascii=False)}: H-AP {res['plain'][SELECT_BY]:.4f} "
            f"acc {res['plain']['accuracy']:.4f}",
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
    """Mean and standard deviation of each measure over the runs where it is defined (the
    share of wrong neighbours in the other group is NaN for a run with no wrong neighbour at
    all); ``n`` counts those runs."""
    out = {}
    for key in MEASURES:
        vals = [r[key] for r in runs if math.isfinite(r[key])]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        mean = statistics.fmean(vals) if vals else math.nan
        out[key] = {"mean": mean, "std": std, "n": len(vals)}
    return out


def select(candidates: list[tuple[Any, list[dict[str, float]]]], floor: float) -> int:
    """Index of the candidate with the best mean validation H-AP among those whose mean
    validation accuracy is at least ``floor`` (else the most accurate)."""
    acc = [statistics.fmean(r["accuracy"] for r in runs) for _, runs in candidates]
    hap = [statistics.fmean(r[SELECT_BY] for r in runs) for _, runs in candidates]
    ok = [i for i in range(len(candidates)) if acc[i] >= floor]
    if not ok:
        return max(range(len(candidates)), key=acc.__getitem__)
    return max(ok, key=hap.__getitem__)


def choose(fams: dict[str, list[dict[str, Any]]], val: dict[str, list[Any]]) -> dict[str, Any]:
    """Each family's configuration (plain) and ``(configuration, w)`` (+ CRM) on validation."""
    floor = statistics.fmean(r["plain"]["accuracy"] for r in val["softmax"][0]) - ACCURACY_SLACK
    chosen: dict[str, Any] = {}
    for fam, cfgs in fams.items():
        runs = val[fam]
        i = select([(c, [r["plain"] for r in rs]) for c, rs in zip(cfgs, runs)], floor)
        chosen[fam] = {"config": cfgs[i]}
        pairs = [(c, w) for c in cfgs for w in CRM_WEIGHTS]
        crm_runs = [[r["crm"][str(w)] for r in rs] for rs in runs for w in CRM_WEIGHTS]
        j = select(list(zip(pairs, crm_runs)), floor)
        chosen[fam + CRM] = {"config": pairs[j][0], "crm_weight": pairs[j][1]}
    return chosen


def study(data_name: str, seeds: list[int], workers: int, quick: bool) -> dict[str, Any]:
    """Select each family on validation (the first two seeds), then report every arm on test
    (every seed)."""
    t0 = time.perf_counter()
    fams = {k: v[:1] for k, v in FAMILIES.items()} if quick else FAMILIES
    val_seeds = seeds[:2]
    val_jobs = [
        (data_name, cfg, seed, "val", quick)
        for cfgs in fams.values()
        for cfg in cfgs
        for seed in val_seeds
    ]
    val_iter = iter(run_jobs(val_jobs, workers))
    val = {fam: [[next(val_iter) for _ in val_seeds] for _ in cfgs] for fam, cfgs in fams.items()}
    selection = {
        fam: [
            {"config": c, "val": summarise([r["plain"] for r in rs]),
             "val_crm": {str(w): summarise([r["crm"][str(w)] for r in rs]) for w in CRM_WEIGHTS}}
            for c, rs in zip(fams[fam], val[fam])
        ]
        for fam in fams
    }  # fmt: skip
    chosen = choose(fams, val)
    test_cfgs = {fam: chosen[fam]["config"] for fam in fams}
    for fam in fams:  # a "+ CRM" row whose configuration differs needs its own runs
        if chosen[fam + CRM]["config"] != test_cfgs[fam]:
            test_cfgs[fam + CRM] = chosen[fam + CRM]["config"]
    jobs = [(data_name, cfg, seed, "test", quick) for cfg in test_cfgs.values() for seed in seeds]
    test_iter = iter(run_jobs(jobs, workers))
    test_runs = {name: [next(test_iter) for _ in seeds] for name in test_cfgs}
    results = {}
    for fam in fams:
        runs = [r["plain"] for r in test_runs[fam]]
        results[fam] = {"config": chosen[fam]["config"], "runs": runs, "test": summarise(runs)}
        w = str(chosen[fam + CRM]["crm_weight"])
        source = test_runs.get(fam + CRM, test_runs[fam])
        runs = [r["crm"][w] for r in source]
        results[fam + CRM] = {**chosen[fam + CRM], "runs": runs, "test": summarise(runs)}
    diagnosis = [r["diagnosis"] for r in test_runs["sentiment constraints"] if "diagnosis" in r]
    return {
        "data": data_name,
        "schedule": (QUICK if quick else SCHEDULES)[data_name],
        "seeds": seeds,
        "validation_seeds": val_seeds,
        "selection": selection,
        "chosen": chosen,
        "arms": results,
        "diagnosis": diagnosis,
        "verdict": verdict(results),
        "wall_time_s": time.perf_counter() - t0,
        "machine": machine_info(torch.device("cpu")),
    }


def compare(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Per measure: ``better_by`` (positive: ours better) and whether by more than one standard
    deviation (the larger of the two arms')."""
    row = {}
    for key in MEASURES:
        sign = -1.0 if key in LOWER_IS_BETTER else 1.0
        diff = sign * (ours[key]["mean"] - other[key]["mean"])
        spread = max(ours[key]["std"], other[key]["std"])
        row[key] = {"better_by": diff, "beyond_one_std": diff > spread, "worse_beyond_one_std":
                    -diff > spread}  # fmt: skip
    return row


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Every hierarchy-aware arm (plain and + CRM) against each baseline, and issue 17's target:
    beyond one std better than softmax and softmax + triplet on H-AP and on the errors in the
    other group (or the mistake severity), accuracy >= softmax - 0.5 point, MAP@R >= triplet -
    one std."""
    out: dict[str, Any] = {}
    soft, trip = results["softmax"]["test"], results["softmax + PML triplet"]["test"]
    for arm in (*HIERARCHY_FAMILIES, *(f + CRM for f in HIERARCHY_FAMILIES)):
        if arm not in results:
            continue
        ours = results[arm]["test"]
        rows = {base: compare(ours, results[base]["test"]) for base in BASELINES}
        hap_ok = all(rows[b]["hierarchical_average_precision"]["beyond_one_std"] for b in rows)
        err_ok = all(
            rows[b]["group_miss_share_of_errors"]["beyond_one_std"]
            or rows[b]["mean_wheel_distance_of_errors"]["beyond_one_std"]
            for b in rows
        )
        acc_ok = ours["accuracy"]["mean"] >= soft["accuracy"]["mean"] - 0.005
        map_key = "mean_average_precision_at_r"
        map_ok = ours[map_key]["mean"] >= trip[map_key]["mean"] - trip[map_key]["std"]
        out[arm] = {
            "vs": rows,
            "target": {"hap": hap_ok, "errors": err_ok, "accuracy": acc_ok, "map_at_r": map_ok,
                       "met": hap_ok and err_ok and acc_ok and map_ok},
        }  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=list(SCHEDULES), choices=list(SCHEDULES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 1 seed: a smoke run")
    p.add_argument("--no-write", action="store_true", help="print only; write no results")
    p.add_argument("--update", action="store_true", help="keep the other data sets' studies")
    p.add_argument(
        "--report-only", action="store_true",
        help="train nothing: rebuild the tables, findings and figure from the results file",
    )  # fmt: skip
    args = p.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    name = "efficacy-quick" if args.quick else "efficacy"
    if args.report_only:
        studies = json.loads((RESULTS / f"{name}-cpu.json").read_text())["studies"]
    else:
        studies = [study(d, seeds, args.jobs, args.quick) for d in args.data]
    if args.update and not args.report_only and (RESULTS / f"{name}-cpu.json").exists():
        old = json.loads((RESULTS / f"{name}-cpu.json").read_text())["studies"]
        old = [st for st in old if "verdict" in st and all(
            "target" in v for v in st["verdict"].values())]  # fmt: skip
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
    print(json.dumps({s["data"]: s["chosen"] for s in studies}, ensure_ascii=False))


if __name__ == "__main__":
    main()
