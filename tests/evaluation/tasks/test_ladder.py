"""builtin-ladder: rungs, answers recomputed from the text, disjoint exemplars, distance from the
direction set, prompt format and both answer readings. No model is loaded."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import lirefs
from lirefs import data
from lirefs.errors import DataError
from lirefs.evaluation.run import stratified_order
from lirefs.evaluation.tasks import BenchmarkData, benchmarks, get_benchmark
from lirefs.evaluation.tasks.ladder import LADDER_RUNGS

BUILTIN = Path(data.__file__).parent / "builtin"
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "make_builtin_data.py"
LADDER_FILES = ("eval_ladder.jsonl", "fewshot_ladder.jsonl")
STEP_RUNGS = ("steps-1", "steps-2", "steps-3", "steps-4")
SUM_RUNGS = ("sum-1+1", "sum-2+1", "sum-2+2")
SUM_DIGITS = {"sum-1+1": (1, 1), "sum-2+1": (2, 1), "sum-2+2": (2, 2)}


@pytest.fixture(scope="module")
def ladder() -> BenchmarkData:
    return get_benchmark("builtin-ladder").load()


@pytest.fixture(scope="module")
def builtin_reasoning() -> list[str]:
    return [q.text for q in data.load("builtin").reasoning]


def records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (BUILTIN / name).read_text("utf-8").splitlines()]


# --- registration and shape ---------------------------------------------------------------------


def test_ladder_is_registered_and_listed() -> None:
    assert "builtin-ladder" in benchmarks()
    assert "builtin-ladder" in lirefs.benchmarks()
    bench = lirefs.get_benchmark("builtin-ladder")
    assert bench.kind == "reasoning" and bench.answer_type == "numeric"
    assert bench.n_shots == 8 and bench.grouped


def test_seven_rungs_of_at_least_200_items(ladder: BenchmarkData) -> None:
    sizes = Counter(item.group for item in ladder.items)
    assert tuple(sizes) == LADDER_RUNGS == STEP_RUNGS + SUM_RUNGS
    assert min(sizes.values()) >= 200
    assert len({item.question for item in ladder.items}) == len(ladder.items)
    assert len({item.id for item in ladder.items}) == len(ladder.items)


def test_every_rung_has_its_own_eight_exemplars(ladder: BenchmarkData) -> None:
    assert set(ladder.shots) == set(LADDER_RUNGS)
    for item in ladder.items[::50]:
        shots = ladder.shots_for(item)
        assert len(shots) == 8 and {s.group for s in shots} == {item.group}


def test_every_group_is_in_the_limit_140_sample(ladder: BenchmarkData) -> None:
    sample = stratified_order(ladder.items, 0)[:140]
    assert Counter(ladder.items[i].group for i in sample) == dict.fromkeys(LADDER_RUNGS, 20)


def test_ladder_takes_no_data_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="takes no data_path"):
        get_benchmark("builtin-ladder").load(tmp_path)


# --- answers recomputed from the question text ----------------------------------------------------

_GAIN = re.compile(r"\bmore\b|\bearns\b|\bpicks up\b")
_SENTENCE = re.compile(r"[^.?]+[.?]")


def recompute(question: str, group: str) -> tuple[int, list[int]]:
    """The answer of a ladder question read from its words alone, and every value on the way.

    Bare sums: the two numbers. Word problems: the first sentence's number is the start; each
    later statement holds one number, added when the sentence says "more" / "earns" /
    "picks up", taken away otherwise; the last sentence is the question.
    """
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    if group.startswith("sum-"):
        a, b = numbers
        da, db = SUM_DIGITS[group]
        assert (len(str(a)), len(str(b))) == (da, db), question
        return a + b, [a + b]
    sentences = [s.strip() for s in _SENTENCE.findall(question)]
    assert sentences[-1].startswith("How many") and sentences[-1].endswith("?"), question
    steps = sentences[1:-1]
    assert len(steps) == int(group.removeprefix("steps-")), question
    (value,) = (int(n) for n in re.findall(r"\d+", sentences[0]))
    values = [value]
    for sentence in steps:
        (b,) = (int(n) for n in re.findall(r"\d+", sentence))
        assert 1 <= b <= 9, question
        value = value + b if _GAIN.search(sentence) else value - b
        values.append(value)
    return value, values


def test_answers_follow_from_the_text(ladder: BenchmarkData) -> None:
    for item in ladder.items:
        answer, values = recompute(item.question, str(item.group))
        assert str(answer) == item.answer, item.id
        assert min(values) >= 0, item.id


def test_exemplars_work_the_problem_and_state_the_answer(ladder: BenchmarkData) -> None:
    for rung, shots in ladder.shots.items():
        for shot in shots:
            answer, values = recompute(shot.question, str(rung))
            assert shot.answer == str(answer) and min(values) >= 0, shot.id
            assert shot.rationale is not None
            assert shot.rationale.endswith(f"The final answer is {answer}."), shot.id
            # the working is one correct equation per step
            steps = re.findall(r"(\d+) ([+-]) (\d+) = (\d+)\.", shot.rationale)
            assert len(steps) == (len(values) - 1 if rung.startswith("steps-") else 1), shot.id
            for a, op, b, c in steps:
                assert int(a) + (int(b) if op == "+" else -int(b)) == int(c), shot.id


def test_surface_templates_vary_within_each_rung() -> None:
    by_rung: dict[str, Counter[str]] = {}
    for r in records("eval_ladder.jsonl"):
        by_rung.setdefault(r["group"], Counter())[r["source"]] += 1
    for rung, sources in by_rung.items():
        assert len(sources) >= 4, rung
        assert max(sources.values()) <= 2 * min(sources.values()), rung
    texts = [r["question"] for r in records("eval_ladder.jsonl") if r["group"] in STEP_RUNGS]
    names = {t.split()[0] for t in texts if not t.startswith(("On ", "There ", "A "))}
    things = {re.search(r"How many (\w+)", t).group(1) for t in texts}  # type: ignore[union-attr]
    assert len(names) >= 15 and len(things) >= 15


# --- disjoint exemplars, distance from the direction set -------------------------------------------


def test_exemplars_are_disjoint_from_the_items(ladder: BenchmarkData) -> None:
    items = {item.question for item in ladder.items}
    shots = [s for pool in ladder.shots.values() for s in pool]
    assert not items & {s.question for s in shots}
    for rung in SUM_RUNGS:  # a bare-sum exemplar never gives away an item's numbers
        pairs = {tuple(re.findall(r"\d+", s.question)) for s in ladder.shots[rung]}
        for item in ladder.items:
            if item.group == rung:
                assert tuple(re.findall(r"\d+", item.question)) not in pairs, item.id


def skeletons(text: str) -> set[str]:
    """Each sentence of ``text`` with its numbers and capitalised words blanked: the template."""
    out = set()
    for sentence in _SENTENCE.findall(text):
        words = re.findall(r"[A-Za-z']+|\d+", sentence)
        out.add(" ".join("#" if w.isdigit() else "X" if w[0].isupper() else w for w in words[1:]))
    return out


def test_no_text_or_template_is_shared_with_the_direction_set(
    builtin_reasoning: list[str],
) -> None:
    ladder_texts = [r["question"] for name in LADDER_FILES for r in records(name)]
    assert not set(ladder_texts) & set(builtin_reasoning)
    direction_groups = {q.group for q in data.load("builtin").reasoning}
    ladder_sources = {r["source"] for name in LADDER_FILES for r in records(name)}
    assert all(s.startswith("template:ladder-") for s in ladder_sources)
    assert not {s.removeprefix("template:") for s in ladder_sources} & direction_groups
    builtin_skeletons = set().union(*(skeletons(t) for t in builtin_reasoning))
    for text in ladder_texts:
        assert not skeletons(text) & builtin_skeletons, text


def word_tokens(text: str) -> list[str]:
    """Lower-case words, every number as ``#`` (wording, not values, is compared)."""
    return ["#" if w.isdigit() else w for w in re.findall(r"[a-z']+|\d+", text.lower())]


def distance_from_builtin(ladder_texts: list[str], builtin_texts: list[str]) -> dict[str, float]:
    """How far the ladder's wording is from the direction set's reasoning questions.

    ``share_4grams``: share of the ladder's distinct word 4-grams that occur in some builtin
    reasoning question; ``jaccard_max`` / ``jaccard_mean``: per ladder item, the token-set
    Jaccard similarity to its nearest builtin reasoning item, then the max / mean over items.
    """

    def grams(tokens: list[str]) -> set[tuple[str, ...]]:
        return {tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3)}

    builtin_tokens = [word_tokens(t) for t in builtin_texts]
    builtin_grams = set().union(*(grams(t) for t in builtin_tokens))
    builtin_sets = [set(t) for t in builtin_tokens]
    ladder_grams = set().union(*(grams(word_tokens(t)) for t in ladder_texts))
    nearest = []
    for text in ladder_texts:
        words = set(word_tokens(text))
        nearest.append(max(len(words & b) / len(words | b) for b in builtin_sets))
    return {
        "share_4grams": len(ladder_grams & builtin_grams) / len(ladder_grams),
        "jaccard_max": max(nearest),
        "jaccard_mean": sum(nearest) / len(nearest),
    }


def test_wording_is_far_from_the_direction_set(builtin_reasoning: list[str]) -> None:
    texts = [r["question"] for name in LADDER_FILES for r in records(name)]
    distance = distance_from_builtin(texts, builtin_reasoning)
    # measured 0.0014 and 0.46 (docs/data.md, "The reasoning ladder"); the bounds round them up
    assert distance["share_4grams"] < 0.05, distance
    assert distance["jaccard_max"] < 0.5, distance


def test_distance_measure_sees_shared_wording(builtin_reasoning: list[str]) -> None:
    """The measure is not blind: builtin's own evaluation items share much of its wording."""
    evaluation = [q.text for q in data.builtin_questions("eval_arithmetic.jsonl")]
    distance = distance_from_builtin(evaluation, builtin_reasoning)
    assert distance["share_4grams"] > 0.5 and distance["jaccard_max"] > 0.8, distance


# --- prompt and answer readings -----------------------------------------------------------------


def test_prompt_is_eight_worked_exemplars_then_the_question(ladder: BenchmarkData) -> None:
    item = next(i for i in ladder.items if i.group == "steps-3")
    prompt = ladder.prompt(item)
    assert prompt.endswith(f"Q: {item.question}\nA:")
    assert prompt.count("Q: ") == 9 and prompt.count("The final answer is") == 8
    first = ladder.shots["steps-3"][0]
    assert prompt.startswith(f"Q: {first.question}\nA: {first.rationale}\n\n")


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        (" 6 + 3 = 9. 9 - 2 = 7. The final answer is 7.", "7", "7"),
        (" 6 + 3 = 9. 9 - 2 = 7.", None, "7"),
        (" The final answer is 12.\n\nQ: Mia has 3 pens.\nA: The final answer is 5.", "12", "12"),
        (" I do not know.", None, None),
    ],
)
def test_strict_and_flexible_readings(
    ladder: BenchmarkData, output: str, strict: str | None, flexible: str | None
) -> None:
    bench = ladder.benchmark
    item = next(i for i in ladder.items if i.answer == "7")
    assert bench.extract(output) == strict
    assert bench.extract_flexible(output) == flexible
    assert bench.score(output, item)[1] is (strict == "7")
    assert bench.gold_text(item) == "The final answer is 7."


# --- the frozen files -------------------------------------------------------------------------


def test_generator_reproduces_the_ladder_byte_for_byte(tmp_path: Path) -> None:
    for pkg in ("countryinfo", "periodictable", "us"):
        pytest.importorskip(pkg)
    spec = importlib.util.spec_from_file_location("make_builtin_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules["make_builtin_data"] = script  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(script)
        script.generate(tmp_path)
    finally:
        del sys.modules["make_builtin_data"]
    for name in (*LADDER_FILES, "manifest.json"):
        assert (tmp_path / name).read_bytes() == (BUILTIN / name).read_bytes(), name
