"""The "Does it help?" page says only what the efficacy study's results show (issue 20).

Each claim of ``docs/efficacy.rst`` (between its ``efficacy-claims`` markers) is a sentence
here with the predicate on ``benchmarks/results/efficacy-cpu.json`` that makes it true; every
paragraph there must carry one, and each predicate must hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "efficacy-cpu.json"
PAGE = ROOT / "docs" / "efficacy.rst"
BASELINES = ("softmax", "softmax + PML triplet")
FAMILIES = ("sentiment constraints", "hierarchical proxies", "smooth H-AP")
HAP = "hierarchical_average_precision"

Studies = list[dict[str, Any]]


def _studies() -> Studies:
    return json.loads(RESULTS.read_text(encoding="utf-8"))["studies"]


def _beats(st: dict[str, Any], arm: str, key: str) -> bool:
    return all(st["verdict"][arm]["vs"][b][key]["beyond_one_std"] for b in BASELINES)


def _mean(st: dict[str, Any], arm: str, key: str) -> float:
    return st["arms"][arm]["test"][key]["mean"]


def _crm_lifts_softmax(st: dict[str, Any]) -> bool:
    plain, crm = st["arms"]["softmax"]["test"], st["arms"]["softmax + CRM"]["test"]
    lift = crm[HAP]["mean"] - plain[HAP]["mean"]
    same_acc = abs(crm["accuracy"]["mean"] - plain["accuracy"]["mean"]) <= 0.005
    return lift > max(crm[HAP]["std"], plain[HAP]["std"]) and same_acc


def _idle_at_the_end(st: dict[str, Any]) -> bool:
    """The polarity level's active share at the last epoch, mean over the seeds, < 0.1."""
    last = [run[-1]["negative_active"] for run in st["diagnosis"]]
    return bool(last) and sum(last) / len(last) < 0.1


DIGITS = ("digits", "digits-parity", "digits-effnet", "digits-parity-effnet")


def _met(ss: Studies) -> set[tuple[str, str]]:
    return {(st["data"], a) for st in ss for a, v in st["verdict"].items() if v["target"]["met"]}


def _nobody_beats_on_errors(st: dict[str, Any]) -> bool:
    return not any(_beats(st, arm, "group_miss_share_of_errors") for arm in st["verdict"])


CLAIMS: dict[str, Callable[[Studies], bool]] = {
    "The target is met on one study: on the loop/open-stroke digits through the pretrained "
    "backbone, by the sentiment constraints.": lambda ss: (
        _met(ss) == {("digits-effnet", "sentiment constraints")}
    ),
    "On every other study, no arm beats both baselines by more than one standard deviation on "
    "the share of errors in the other group.": lambda ss: all(
        _nobody_beats_on_errors(st) for st in ss if st["data"] != "digits-effnet"
    ),
    "Read with CRM, every hierarchy-aware family beats softmax and softmax + PML triplet on "
    "H-AP by more than one standard deviation on every study.": lambda ss: all(
        _beats(st, f"{fam} + CRM", HAP) for st in ss for fam in FAMILIES
    ),
    "On every study, conditional risk minimisation alone lifts the softmax model's H-AP by "
    "more than one standard deviation at unchanged accuracy (within 0.5 point).": lambda ss: all(
        _crm_lifts_softmax(st) for st in ss
    ),
    "Validation chose w = 4, the largest weight tried, for the softmax model read with CRM on "
    "every study.": lambda ss: all(st["arms"]["softmax + CRM"]["crm_weight"] == 4.0 for st in ss),
    "On the even/odd digits, from scratch and on pretrained features, the sentiment "
    "constraints beat both baselines on H-AP by more than one standard deviation without "
    "CRM.": lambda ss: (
        all(
            _beats(st, "sentiment constraints", HAP)
            for st in ss
            if st["data"] in ("digits-parity", "digits-parity-effnet")
        )
        and {"digits-parity", "digits-parity-effnet"} <= {st["data"] for st in ss}
    ),
    "On the digits, under both groupings and both backbones, by the last epoch fewer than one "
    "in ten of the polarity level's ranked triplets still has a non-zero hinge.": lambda ss: (
        all(_idle_at_the_end(st) for st in ss if st["data"] in DIGITS)
        and set(DIGITS) <= {st["data"] for st in ss}
    ),
}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "")).strip()


def _claims_block() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(".. efficacy-claims-start") + len(".. efficacy-claims-start")
    return text[start : text.index(".. efficacy-claims-end")]


@pytest.mark.parametrize("sentence", list(CLAIMS))
def test_claim_is_on_the_page_and_true(sentence: str) -> None:
    assert _flat(sentence) in _flat(_claims_block()), f"not on the page: {sentence}"
    assert CLAIMS[sentence](_studies()), f"the results do not support: {sentence}"


def test_every_paragraph_of_the_claims_is_checked() -> None:
    paragraphs = [p for p in _claims_block().split("\n\n") if p.strip()]
    for p in paragraphs:
        assert any(_flat(s) in _flat(p) for s in CLAIMS), f"an unchecked claim: {p.strip()}"


def test_the_results_name_their_machine_and_seeds() -> None:
    for st in _studies():
        assert st["machine"]["cpu"] and len(st["seeds"]) >= 5, st["data"]
        assert st["validation_seeds"] == st["seeds"][:2]
