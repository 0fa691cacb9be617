"""The shared references of the tests: written from the formulas, by explicit loops, in float64.

One brute-force sentiment-constraint loss (:func:`triplet_term` for one tuple; :func:`naive_terms`
over a distance matrix; :func:`naive_loss` from embeddings and the wheel, read by name) and one
naive miner reference (:func:`naive_all`, :func:`check_invariants`). Test modules import these;
no test module imports another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
import torch

import sentiment_metric as sm

from .conftest import MIKELS_FI_ORDER

NAMES = list(sm.MIKELS_WHEEL.emotions)
"""Mikels' emotions in wheel order (the label order of most loss tests)."""
A1, A2 = 0.2, 0.1
LEVEL = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER).level
"""The level matrix in FI's (alphabetical) label order, as the miner tests use it."""
THETA = 1.0 / sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER).dis.double()  # as the miner holds it

Term = tuple[int, torch.Tensor]
"""(sub-loss slot: 0 relative, 1 negative; the hinge term)."""


def triplet_term(
    a: int,
    x: int,
    y: int,
    *,
    d: Callable[[int, int], torch.Tensor],
    lvl: Callable[[int, int], int],
    theta: Callable[[int, int], float],
    margins: tuple[float, float] = (A1, A2),
    inverted: bool = False,
    skip_level: str = "ignore",
    wheel_margin: float = 0.0,
    dis: Callable[[int, int], float] | None = None,
) -> Term | None:
    """One PML 3-tuple read as (anchor, closer, farther) and its hinge, from the formula.

    ``[D*(a,c) - D*(a,f) + α + β·(dis(a,f) - dis(a,c))]_+`` with ``D* = θ·d`` for a distance
    and ``D* = θ·(1 - s)`` for a similarity ``s``; α1 for (0, 1), α2 for (1, 2), α1 + α2 for
    (0, 2) with ``skip_level="sum_margins"`` (in the negative sub-loss); ``β`` the wheel margin;
    ``None`` for any other tuple.
    """
    if lvl(a, x) > lvl(a, y):
        x, y = y, x
    kind = (lvl(a, x), lvl(a, y))
    a1, a2 = margins
    if kind == (0, 1):
        alpha, slot = a1, 0
    elif kind == (1, 2):
        alpha, slot = a2, 1
    elif kind == (0, 2) and skip_level == "sum_margins":
        alpha, slot = a1 + a2, 1
    else:
        return None
    if inverted:
        dc, df = theta(a, x) * (1 - d(a, x)), theta(a, y) * (1 - d(a, y))
    else:
        dc, df = theta(a, x) * d(a, x), theta(a, y) * d(a, y)
    if wheel_margin:
        assert dis is not None
        alpha = alpha + wheel_margin * (dis(a, y) - dis(a, x))
    return slot, torch.clamp(dc - df + alpha, min=0)


def all_terms(
    n_rows: int,
    n_cols: int,
    exclude_self: bool,
    term: Callable[[int, int, int], Term | None],
) -> list[Term]:
    """The terms of every (anchor, closer, farther) with closer before farther in level."""
    out = []
    for a in range(n_rows):
        for c in range(n_cols):
            for f in range(n_cols):
                if exclude_self and (c == a or f == a):
                    continue
                t = term(a, c, f)
                if t is not None and t[0] in (0, 1):
                    out.append(t)
    return out


def reduce_terms(terms: list[Term], reduction: str) -> torch.Tensor:
    """Each sub-loss reduced as PML's reducers do, then added (an empty sub-loss gives 0)."""
    total = torch.zeros((), dtype=torch.float64)
    for slot in (0, 1):
        vals = [v for s, v in terms if s == slot]
        if not vals:
            continue
        v = torch.stack(vals)
        if reduction == "sum":
            total = total + v.sum()
        elif reduction == "mean":
            total = total + v.mean()
        elif reduction == "avg_nonzero":
            total = total + (v[v > 0].mean() if (v > 0).any() else 0.0)
        elif reduction == "threshold":  # ThresholdReducer(low=0.05, high=0.5)
            keep = v[(v > 0.05) & (v < 0.5)]
            total = total + (keep.mean() if len(keep) else 0.0)
    return total


def naive_terms(
    dist: torch.Tensor,
    labels: torch.Tensor,
    ref_labels: torch.Tensor | None,
    theta: torch.Tensor | None,
    inverted: bool,
    skip_level: str,
    exclude_self: bool,
    level: torch.Tensor | None = None,
    wheel_margin: float = 0.0,
    dis_matrix: torch.Tensor | None = None,
) -> list[Term]:
    """Every ranked triplet of a ``(B, R)`` matrix by explicit loops: (slot, hinge term).

    ``level`` and ``dis_matrix`` default to Mikels' wheel in wheel order.
    """
    rl = labels if ref_labels is None else ref_labels
    rel = sm.MIKELS_WHEEL.relations(NAMES)
    lev = rel.level if level is None else level
    dmat = rel.dis if dis_matrix is None else dis_matrix

    def dis(i: int, j: int) -> float:
        return float(dmat[labels[i], rl[j]])

    def lvl(i: int, j: int) -> int:
        return int(lev[labels[i], rl[j]])

    def th(i: int, j: int) -> float:
        return 1.0 if theta is None else float(theta[labels[i], rl[j]])

    def term(a: int, c: int, f: int) -> Term | None:
        if lvl(a, c) >= lvl(a, f):
            return None
        return triplet_term(
            a, c, f, d=lambda i, j: dist[i, j], lvl=lvl, theta=th, inverted=inverted,
            skip_level=skip_level, wheel_margin=wheel_margin, dis=dis,
        )  # fmt: skip

    return all_terms(dist.shape[0], dist.shape[1], exclude_self, term)


def naive_loss(
    emb: torch.Tensor,
    labels: torch.Tensor,
    triplets: list[tuple[int, int, int]] | None = None,
    *,
    ref_emb: torch.Tensor | None = None,
    ref_labels: torch.Tensor | None = None,
    class_names: list[str] = NAMES,
    margins: tuple[float, float] = (A1, A2),
    weighting: str | torch.Tensor = "inverse_wheel",
    skip_level: str = "ignore",
    reduction: str = "avg_nonzero",
    cosine: bool = False,
    wheel_margin: float = 0.0,
) -> torch.Tensor:
    """The loss from the formula: explicit loops over tuples, the wheel read by name.

    ``D`` is the squared Euclidean distance (or, with ``cosine``, the cosine similarity) of the
    L2-normalised embeddings; ``triplets=None``: every ranked triplet (self-pairs excluded
    when there is no ``ref_emb``).
    """
    wheel = sm.MIKELS_WHEEL
    is_self = ref_emb is None
    ref_emb = emb if ref_emb is None else ref_emb
    ref_labels = labels if ref_labels is None else ref_labels

    def d(i: int, j: int) -> torch.Tensor:
        x = torch.nn.functional.normalize(emb[i], dim=0)
        r = torch.nn.functional.normalize(ref_emb[j], dim=0)
        return (x * r).sum() if cosine else ((x - r) ** 2).sum()

    def theta(i: int, j: int) -> float:
        if isinstance(weighting, torch.Tensor):
            return float(weighting[labels[i], ref_labels[j]])
        if weighting == "none":
            return 1.0
        return 1.0 / wheel.dis(class_names[labels[i]], class_names[ref_labels[j]])

    def lvl(i: int, j: int) -> int:
        return wheel.level(class_names[labels[i]], class_names[ref_labels[j]])

    def dis(i: int, j: int) -> float:
        return float(wheel.dis(class_names[labels[i]], class_names[ref_labels[j]]))

    def term(a: int, x: int, y: int) -> Term | None:
        return triplet_term(
            a, x, y, d=d, lvl=lvl, theta=theta, margins=margins, inverted=cosine,
            skip_level=skip_level, wheel_margin=wheel_margin, dis=dis,
        )  # fmt: skip

    if triplets is None:
        terms = all_terms(
            len(emb),
            len(ref_emb),
            is_self,
            lambda a, c, f: term(a, c, f) if lvl(a, c) < lvl(a, f) else None,
        )
    else:
        terms = [t for t in (term(a, x, y) for a, x, y in triplets) if t is not None]
    return reduce_terms(terms, reduction)


def naive_all(
    labels: list[int], ref_labels: list[int], level: torch.Tensor, exclude_self: bool
) -> list[tuple[int, int, int]]:
    """Every ranked triplet, by explicit loops over (anchor, closer, farther)."""
    out = []
    for a, ya in enumerate(labels):
        for c, yc in enumerate(ref_labels):
            if exclude_self and c == a:
                continue
            lc = int(level[ya, yc])
            if lc > 1:
                continue
            for f, yf in enumerate(ref_labels):
                if int(level[ya, yf]) == lc + 1:
                    out.append((a, c, f))
    return out


def triplet_list(out: sm.functional.MinedTriplets) -> list[tuple[int, int, int]]:
    return list(zip(out.anchor.tolist(), out.closer.tolist(), out.farther.tolist()))


def check_invariants(
    out: sm.functional.MinedTriplets,
    dist: torch.Tensor,
    labels: list[int],
    ref_labels: list[int],
    *,
    strategy: str,
    per_pair: int,
    margins: tuple[float, float],
    inverted: bool,
    exclude_self: bool,
    theta: torch.Tensor | None = None,
    level: torch.Tensor = LEVEL,
) -> None:
    """Every rule of the miner's docstring, checked pair by pair with explicit loops in float64."""
    theta = THETA if theta is None else theta
    trip = triplet_list(out)
    assert out.anchor.dtype == out.closer.dtype == out.farther.dtype == torch.long
    assert len(trip) == out.num_relative + out.num_negative
    produced: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (a, c, f) in enumerate(trip):
        la, lf = int(level[labels[a], ref_labels[c]]), int(level[labels[a], ref_labels[f]])
        assert la + 1 == lf, (a, c, f)
        assert (la == 0) == (i < out.num_relative)
        if exclude_self:
            assert a != c and a != f
        produced[(a, c)].append(f)

    def key(a: int, x: int) -> float:
        d = float(dist[a, x])
        return float(theta[labels[a], ref_labels[x]]) * ((1.0 - d) if inverted else d)

    empty_total = 0
    expected_pairs = 0
    for a in range(len(labels)):
        for c in range(len(ref_labels)):
            if exclude_self and a == c:
                continue
            lc = int(level[labels[a], ref_labels[c]])
            if lc > 1:
                continue
            fars = [
                f for f in range(len(ref_labels)) if int(level[labels[a], ref_labels[f]]) == lc + 1
            ]
            got = produced.get((a, c), [])
            if not fars:
                assert got == []
                continue
            expected_pairs += 1
            kc = key(a, c)
            band = [f for f in fars if kc < key(a, f) < kc + margins[lc]]
            if strategy == "semihard":
                pool = band if band else fars
                if not band:
                    empty_total += len(got)
            else:
                pool = fars
            want = len(pool) if strategy == "all" else min(per_pair, len(pool))
            assert len(got) == want, (a, c, got, pool)
            assert len(set(got)) == len(got)
            assert set(got) <= set(pool)
            if strategy == "hard":
                best = sorted(key(a, f) for f in fars)[: len(got)]
                assert sorted(key(a, f) for f in got) == pytest.approx(best)
    assert len(produced) == expected_pairs  # every (anchor, closer) pair with a farther is used
    assert out.num_empty_band == empty_total


def naive_hierarchical_ap(ranked: list[int], yq: int, groups: list[int]) -> float:
    """H-AP of one query from the formula (Ramzi et al. 2022): explicit loops over the ranks,
    ``rel = (2 - level) / 2`` with the level read off ``groups``; NaN when ``Σ rel = 0``."""

    def rel(y: int) -> float:
        level = 0 if y == yq else (1 if groups[y] == groups[yq] else 2)
        return (2 - level) / 2

    total = sum(rel(y) for y in ranked)
    if total == 0:
        return float("nan")
    acc = 0.0
    for k, yk in enumerate(ranked):
        if rel(yk) == 0:
            continue
        h_rank = rel(yk)
        for yj in ranked[:k]:
            if rel(yj) > 0:
                h_rank += min(rel(yk), rel(yj))
        acc += h_rank / (k + 1)
    return acc / total


def naive_group_miss_share(ranked: list[int], yq: int, groups: list[int], k: int) -> float:
    """Among the top ``k`` of another class, the share of another group (NaN without one)."""
    wrong = [y for y in ranked[:k] if y != yq]
    if not wrong:
        return float("nan")
    return sum(1 for y in wrong if groups[y] != groups[yq]) / len(wrong)
