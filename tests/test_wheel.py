"""EmotionWheel, MIKELS_WHEEL and LabelRelations: Mikels' facts, any wheel, any hierarchy."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
from sentiment_metric import SentimentMetricError
from sentiment_metric.wheel import resolve_relations

from .conftest import MIKELS_FI_ORDER

W = sm.MIKELS_WHEEL


def test_mikels_order_and_polarity() -> None:
    assert W.emotions == (
        "amusement",
        "contentment",
        "awe",
        "excitement",
        "fear",
        "sadness",
        "disgust",
        "anger",
    )
    assert [W.polarity(e) for e in W.emotions] == ["positive"] * 4 + ["negative"] * 4
    assert W.polarity("awe") == "positive"


def test_mikels_neighbours_across_polarity() -> None:
    # the circle closes: amusement neighbours anger, excitement neighbours fear
    assert W.steps("amusement", "anger") == 1
    assert W.steps("excitement", "fear") == 1
    assert W.dis("amusement", "anger") == 2
    assert W.level("amusement", "anger") == 2
    assert W.steps("amusement", "fear") == 4


def test_dis_range_and_symmetry() -> None:
    for a, b in itertools.product(W.emotions, repeat=2):
        d = W.dis(a, b)
        assert 1 <= d <= 5
        assert d == W.dis(b, a)
        assert (d == 1) == (a == b)


def test_steps_from_formula() -> None:
    n = len(W)
    for i, j in itertools.product(range(n), repeat=2):
        expected = min(abs(i - j), n - abs(i - j))
        assert W.steps(W.emotions[i], W.emotions[j]) == expected


def test_relations_in_fi_alphabetical_order() -> None:
    rel = W.relations(MIKELS_FI_ORDER)
    assert rel.class_names == tuple(MIKELS_FI_ORDER)
    for (i, a), (j, b) in itertools.product(enumerate(MIKELS_FI_ORDER), repeat=2):
        assert int(rel.level[i, j]) == W.level(a, b)
        assert float(rel.dis[i, j]) == W.dis(a, b)
    # FI label 0 is amusement, label 1 anger: neighbours on the wheel, opposite polarity
    assert int(rel.level[0, 1]) == 2 and float(rel.dis[0, 1]) == 2.0
    assert rel.level.dtype == torch.int64
    assert rel.num_classes == 8
    assert rel.groups.tolist() == [0, 1, 0, 0, 1, 0, 1, 1]


def test_aliases_and_case() -> None:
    assert W.canonical("Sad") == "sadness"
    assert W.canonical("content") == "contentment"
    assert W.canonical(" AMUSEMENT ") == "amusement"
    assert "sad" in W and "joy" not in W and 3 not in W
    rel = W.relations(["sad", "Content", "ANGER"])
    assert rel.class_names == ("sadness", "contentment", "anger")


def test_unknown_name_lists_known_names_and_aliases() -> None:
    with pytest.raises(SentimentMetricError) as err:
        W.relations(["amusement", "joy"])
    msg = str(err.value)
    assert "'joy'" in msg
    assert "amusement" in msg and "anger" in msg
    assert "sad->sadness" in msg


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [
        ("amusement", "sequence of emotion names"),
        ([], "at least one"),
        (["sad", "sadness"], "twice"),
        ([3], "strings"),
    ],
)
def test_relations_bad_input(arg: object, fragment: str) -> None:
    with pytest.raises(SentimentMetricError, match=fragment):
        W.relations(arg)  # type: ignore[arg-type]


def test_weights() -> None:
    rel = W.relations(W.emotions)
    torch.testing.assert_close(rel.weights(), 1.0 / rel.dis)
    torch.testing.assert_close(rel.weights("none"), torch.ones(8, 8))
    custom = torch.full((8, 8), 2.0)
    torch.testing.assert_close(rel.weights(custom), custom)
    with pytest.raises(SentimentMetricError, match="'inverse_wheel', 'none'"):
        rel.weights("wheel")
    with pytest.raises(SentimentMetricError, match=r"\(8, 8\)"):
        rel.weights(torch.ones(3, 3))
    with pytest.raises(SentimentMetricError, match="> 0"):
        rel.weights(torch.zeros(8, 8))


def test_custom_wheel_plutchik() -> None:
    p = sm.PLUTCHIK_WHEEL
    assert p.steps("joy", "anticipation") == 1
    assert p.level("joy", "trust") == 1
    assert p.level("joy", "sadness") == 2
    rel = p.relations(["anger", "joy"])
    assert rel.level.tolist() == [[0, 2], [2, 0]]


def test_custom_wheel_validation() -> None:
    with pytest.raises(SentimentMetricError, match="not in emotions"):
        sm.EmotionWheel(["a", "b"], groups={"x": ["a", "c"]})
    with pytest.raises(SentimentMetricError, match="in no group"):
        sm.EmotionWheel(["a", "b"], groups={"x": ["a"]})
    with pytest.raises(SentimentMetricError, match="more than one group"):
        sm.EmotionWheel(["a", "b"], groups={"x": ["a", "b"], "y": ["a"]})
    with pytest.raises(SentimentMetricError, match="distinct"):
        sm.EmotionWheel(["a", "A"], groups={"x": ["a"]})
    with pytest.raises(SentimentMetricError, match="unknown emotion"):
        sm.EmotionWheel(["a", "b"], groups={"x": ["a", "b"]}, aliases={"z": "q"})


def test_from_groups_levels_and_default_dis() -> None:
    rel = sm.LabelRelations.from_groups([0, 0, 1, 1, 2], class_names=list("abcde"))
    assert rel.level.tolist() == [
        [0, 1, 2, 2, 2],
        [1, 0, 2, 2, 2],
        [2, 2, 0, 1, 2],
        [2, 2, 1, 0, 2],
        [2, 2, 2, 2, 0],
    ]
    torch.testing.assert_close(rel.dis, 1.0 + rel.level.float())
    assert rel.groups.tolist() == [0, 0, 1, 1, 2]


def test_from_groups_bad_input() -> None:
    with pytest.raises(SentimentMetricError, match="groups"):
        sm.LabelRelations.from_groups(["x", None])  # type: ignore[list-item]
    with pytest.raises(SentimentMetricError, match="at least one"):
        sm.LabelRelations.from_groups([])
    with pytest.raises(SentimentMetricError, match="1-D"):
        sm.LabelRelations.from_groups(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(SentimentMetricError, match="class_names has 1"):
        sm.LabelRelations.from_groups([0, 1], class_names=["a"])
    with pytest.raises(SentimentMetricError, match=">= 1"):
        sm.LabelRelations.from_groups([0, 1], dis=torch.zeros(2, 2))


def test_label_relations_validation() -> None:
    with pytest.raises(SentimentMetricError, match="symmetric"):
        sm.LabelRelations(torch.tensor([[0, 1], [2, 0]]))
    with pytest.raises(SentimentMetricError, match="diagonal"):
        sm.LabelRelations(torch.tensor([[1, 1], [1, 0]]))
    with pytest.raises(SentimentMetricError, match="square"):
        sm.LabelRelations(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(SentimentMetricError, match="integer"):
        sm.LabelRelations(torch.zeros(2, 2))


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(sm.MIKELS_WHEEL.emotions)), st.integers(1, 8))
def test_relations_follow_any_label_order(order: list[str], c: int) -> None:
    names = order[:c]
    rel = W.relations(names)
    full = W.relations(W.emotions)
    idx = torch.tensor([W.index(n) for n in names])
    assert torch.equal(rel.level, full.level[idx][:, idx])
    assert torch.equal(rel.dis, full.dis[idx][:, idx])


def test_resolve_relations_requires_one_source() -> None:
    with pytest.raises(SentimentMetricError, match="class_names= .* or relations="):
        resolve_relations()
    rel = W.relations(["awe"])
    with pytest.raises(SentimentMetricError, match="not both"):
        resolve_relations(["awe"], rel)
    assert resolve_relations(relations=rel) is rel
    with pytest.raises(SentimentMetricError, match="LabelRelations"):
        resolve_relations(relations="awe")  # type: ignore[arg-type]
    with pytest.raises(SentimentMetricError, match="EmotionWheel"):
        resolve_relations(["awe"], wheel="mikels")  # type: ignore[arg-type]
    assert resolve_relations(["joy"], wheel=sm.PLUTCHIK_WHEEL).class_names == ("joy",)


def test_unknown_emotion_says_how_to_use_any_hierarchy() -> None:
    with pytest.raises(SentimentMetricError, match=r"LabelRelations\.from_groups"):
        W.relations(["T-shirt/top", "Trouser"])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"aliases": {"joy": "grief"}}, "is itself an emotion of the wheel"),
        ({"aliases": {"happy": "nope"}}, "unknown emotion"),
        ({"aliases": [("happy", "joy")]}, "aliases must be a mapping"),
        ({"aliases": {1: "joy"}}, "aliases .an alias. must hold non-empty strings"),
        ({"groups": ["joy", "grief"]}, "groups must be a mapping"),
        ({"groups": {"pos": "joy", "neg": ["grief"]}}, r"groups\['pos'\] must be a sequence"),
        ({"groups": {"pos": ["joy", 3], "neg": ["grief"]}}, "must hold non-empty strings"),
        ({"emotions": ["joy", 2]}, "emotions must hold non-empty strings"),
        ({"emotions": "joygrief"}, "at least 2 names"),
    ],
)
def test_wheel_refuses_bad_definitions(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {
        "emotions": ["joy", "grief"],
        "groups": {"pos": ["joy"], "neg": ["grief"]},
    }
    args.update(kwargs)
    with pytest.raises(SentimentMetricError, match=fragment):
        sm.EmotionWheel(**args)  # type: ignore[arg-type]


def test_alias_equal_to_its_own_emotion_is_harmless() -> None:
    w = sm.EmotionWheel(["joy", "grief"], {"p": ["joy"], "n": ["grief"]}, aliases={"Joy": "joy"})
    assert w.index("grief") == 1 and w.index("JOY") == 0


def test_label_relations_refuse_inconsistent_hierarchies() -> None:
    level = sm.LabelRelations.from_groups([0, 0, 1]).level
    with pytest.raises(SentimentMetricError, match="groups contradict level"):
        sm.LabelRelations(level, groups=[0, 1, 1])
    non_transitive = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    with pytest.raises(SentimentMetricError, match="not transitive"):
        sm.LabelRelations(non_transitive)
    with pytest.raises(SentimentMetricError, match="class_names must be distinct"):
        sm.LabelRelations(level, class_names=["a", "a", "b"])
    with pytest.raises(SentimentMetricError, match="group_names has 1 name"):
        sm.LabelRelations(level, group_names=["only"])
    with pytest.raises(SentimentMetricError, match="group_names must be distinct"):
        sm.LabelRelations(level, group_names=["g", "g"])
    with pytest.raises(SentimentMetricError, match="groups must be integers"):
        sm.LabelRelations(level, groups=torch.tensor([0.0, 0.0, 1.0]))
    ok = sm.LabelRelations(level, group_names=["animals", "vehicles"])
    assert ok.groups.tolist() == [0, 0, 1]


@pytest.mark.parametrize("groups", ["0011", b"01", [0, "1"], [True, False], 7])
def test_from_groups_refuses_strings_and_non_sequences(groups: object) -> None:
    with pytest.raises(SentimentMetricError, match="groups must"):
        sm.LabelRelations.from_groups(groups)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8))
def test_from_groups_level_and_groups_always_agree(groups: list[int]) -> None:
    rel = sm.LabelRelations.from_groups(groups)
    same = rel.groups[:, None] == rel.groups[None, :]
    off = ~torch.eye(len(groups), dtype=torch.bool)
    assert torch.equal(rel.level[off] == 1, same[off])
    g = sm.LabelRelations(rel.level).groups  # read off level: the same partition
    assert torch.equal(g[:, None] == g[None, :], same)
