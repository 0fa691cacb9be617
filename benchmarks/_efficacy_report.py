"""The efficacy study's report: tables, plain-words findings and the figure, all generated
from the results (``efficacy.py`` writes them; ``python benchmarks/efficacy.py --report-only``
rebuilds them from ``results/efficacy-cpu.json`` without training). The "Does it help?" page
includes the Markdown, so its numbers and sentences cannot drift from the runs.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from _common import machine_line, markdown_table

MEASURES = {
    "accuracy": "accuracy",
    "group_miss_share_of_errors": "errors in other group ↓",
    "mean_wheel_distance_of_errors": "mistake severity ↓",
    "mean_average_precision_at_r": "MAP@R",
    "hierarchical_average_precision": "H-AP",
    "group_miss_share_at_k": "wrong nbrs in other group@10 ↓",
    "mean_wheel_distance_at_k": "hier. dist.@10 ↓",
}
LOWER_IS_BETTER = {
    "group_miss_share_of_errors", "mean_wheel_distance_of_errors", "group_miss_share_at_k",
    "mean_wheel_distance_at_k",
}  # fmt: skip
RETRIEVAL = (
    "mean_average_precision_at_r", "hierarchical_average_precision", "group_miss_share_at_k",
    "mean_wheel_distance_at_k",
)  # fmt: skip
CRM = " + CRM"
TARGETS = ("hierarchical_average_precision", "group_miss_share_of_errors")

BASELINES = ("softmax", "softmax + PML triplet")
HIERARCHY_FAMILIES = ("sentiment constraints", "hierarchical proxies", "smooth H-AP")


def describe(arm: dict[str, Any]) -> str:
    cfg = arm["config"]
    keys = ("beta", "omega", "weighting", "wheel_margin", "temperature")
    text = ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg) or "-"
    return text + (f"; w={arm['crm_weight']}" if "crm_weight" in arm else "")


def tables(doc: dict[str, Any]) -> str:
    parts = []
    for st in doc["studies"]:
        head = ["arm", "chosen", *MEASURES.values()]
        rows = []
        for name, r in st["arms"].items():
            cells = [f"{r['test'][k]['mean']:.4f} ± {r['test'][k]['std']:.4f}" for k in MEASURES]
            rows.append([name, describe(r), *cells])
        n = len(st["seeds"])
        parts.append(f"#### {st['data']} (test split, mean ± std over {n} seeds)\n")
        if "machine" in st:
            m = st["machine"]
            parts.append(f"Run on {machine_line(m)}; wall time {st['wall_time_s']:.0f} s.\n")
        parts.append(markdown_table(head, rows))
        vrows = []
        for arm, v in st["verdict"].items():
            for base, row in v["vs"].items():
                cells = [
                    f"{row[k]['better_by']:+.4f}"
                    + (" ✓" if row[k]["beyond_one_std"] else "")
                    + (" ✗" if row[k]["worse_beyond_one_std"] else "")
                    for k in MEASURES
                ]
                vrows.append([arm, base, *cells])
        parts.append(
            "\nEach hierarchy-aware arm minus each baseline (positive: the arm is better; ✓ better"
            " by more than one standard deviation, ✗ worse by more than one)\n"
        )
        parts.append(markdown_table(["arm", "baseline", *MEASURES.values()], vrows))
        parts.append("\nFindings (generated from the runs):\n")
        parts.extend(f"- {line}" for line in findings(st))
        parts.append("")
        parts.append(diagnosis_table(st))
    return "\n".join(parts)


def diagnosis_summary(st: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The sentiment-constraints arm's diagnosis, mean over seeds, at the first, a middle and
    the last epoch."""
    runs = st.get("diagnosis") or []
    if not runs:
        return {}
    epochs = len(runs[0])
    out = {}
    for e in sorted({0, epochs // 2, epochs - 1}):
        out[str(e + 1)] = {k: statistics.fmean(r[e][k] for r in runs) for k in runs[0][e]}
    return out


def diagnosis_table(st: dict[str, Any]) -> str:
    summ = diagnosis_summary(st)
    if not summ:
        return ""
    keys = list(next(iter(summ.values())))
    rows = [[e, *(f"{v[k]:.4f}" for k in keys)] for e, v in summ.items()]
    return (
        "\nSentiment constraints, first batch of an epoch (mean over seeds): share of each "
        "level's triplets with a non-zero hinge, the relative level's share of the gradient "
        "(0 when neither level has one), mean squared distance per pair level\n\n"
        + markdown_table(["epoch", *keys], rows)
        + "\n"
    )


def plot(doc: dict[str, Any], path: Path) -> None:
    """Dot plots with one-std error bars, each panel's axis from 0 (or 1 for the "higher is
    better" ones near 1) so no small gap is magnified without showing its scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = doc["studies"]
    fig, axes = plt.subplots(len(studies), 2, figsize=(11, 3.8 * len(studies)), squeeze=False)
    for row, st in zip(axes, studies):
        names = list(st["arms"])
        for ax, key in zip(row, TARGETS):
            means = [st["arms"][n]["test"][key]["mean"] for n in names]
            stds = [st["arms"][n]["test"][key]["std"] for n in names]
            colors = ["tab:gray" if n.split(CRM)[0] in (*BASELINES, "soft labels") else "tab:red"
                      for n in names]  # fmt: skip
            for i, (m, s, c) in enumerate(zip(means, stds, colors)):
                ax.errorbar(m, i, xerr=s, fmt="o", color=c, capsize=3)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlim(0, max(1.0, max(m + s for m, s in zip(means, stds)) * 1.05))
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(f"{st['data']}: {MEASURES[key]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ms(st: dict[str, Any], arm: str, key: str) -> str:
    t = st["arms"][arm]["test"][key]
    return f"{t['mean']:.3f} ± {t['std']:.3f}"


def findings(st: dict[str, Any]) -> list[str]:
    """Plain-words findings of one study, each read off its results."""
    arms, out = st["arms"], []
    hap = "hierarchical_average_precision"
    best = max(HIERARCHY_FAMILIES, key=lambda a: arms[a]["test"][hap]["mean"])
    out.append(
        f"Trained without CRM, the best hierarchy-aware arm on H-AP is **{best}** "
        f"({_ms(st, best, hap)}), against softmax {_ms(st, 'softmax', hap)} and softmax + PML "
        f"triplet {_ms(st, 'softmax + PML triplet', hap)}."
    )
    v = st["verdict"][best]["vs"]["softmax + PML triplet"]
    wins = [MEASURES[k] for k in MEASURES if v[k]["beyond_one_std"]]
    losses = [MEASURES[k] for k in MEASURES if v[k]["worse_beyond_one_std"]]
    out.append(
        f"Against softmax + PML triplet it is better by more than one std on "
        f"{', '.join(wins) if wins else 'no measure'} and worse by more than one std on "
        f"{', '.join(losses) if losses else 'no measure'}."
    )
    crm = "softmax" + CRM
    out.append(
        f"Conditional risk minimisation alone, on the softmax model (w = "
        f"{arms[crm]['crm_weight']}), moves H-AP from {_ms(st, 'softmax', hap)} to "
        f"{_ms(st, crm, hap)} and accuracy from {_ms(st, 'softmax', 'accuracy')} to "
        f"{_ms(st, crm, 'accuracy')}."
    )
    met = [a for a, x in st["verdict"].items() if x["target"]["met"]]
    if met:
        out.append(f"Issue 17's target is met by: {', '.join(met)}.")
    else:
        missing = {
            a: [k for k, ok in x["target"].items() if k != "met" and not ok]
            for a, x in st["verdict"].items()
        }
        closest = min(missing, key=lambda a: len(missing[a]))
        out.append(
            f"No arm meets issue 17's target; the closest, {closest}, misses: "
            f"{', '.join(missing[closest])}."
        )
    summ = diagnosis_summary(st)
    if summ:
        first, last = summ[min(summ, key=int)], summ[max(summ, key=int)]
        out.append(
            "The sentiment constraints' triplets with a non-zero hinge (first batch of the "
            f"epoch): emotion level {first['relative_active']:.0%} → "
            f"{last['relative_active']:.0%}, polarity level {first['negative_active']:.0%} → "
            f"{last['negative_active']:.0%} from the first to the last epoch; at the end the "
            f"mean squared distances are {last['distance_same']:.2f} (same class), "
            f"{last['distance_same_group']:.2f} (same group), {last['distance_other_group']:.2f} "
            "(other group)."
        )
    return out
