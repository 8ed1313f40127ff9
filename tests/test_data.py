"""lirefs.data: the frozen built-in sets, user files, prompt format and leak-free splits.

No model is loaded here; everything reads the JSONL shipped in lirefs/builtin/ or small files
written into tmp_path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lirefs import data
from lirefs.data import Question, QuestionSets, format_prompt, load
from lirefs.errors import DataError

BUILTIN = Path(data.__file__).parent / "builtin"
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_builtin_data.py"
ITEM_FILES = ["reasoning.jsonl", "memory.jsonl", "eval_arithmetic.jsonl", "eval_facts.jsonl"]
FEWSHOT_FILES = ["fewshot_arithmetic.jsonl", "fewshot_facts.jsonl"]
MATCHED_FILE = "matched.jsonl"
LADDER_FILES = ["eval_ladder.jsonl", "fewshot_ladder.jsonl"]  # benchmark builtin-ladder
ITEM_KEYS = ["id", "question", "answer", "aliases", "label", "group", "source", "license"]


def read_jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (BUILTIN / name).read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def builtin() -> QuestionSets:
    return load("builtin")


# --- the frozen files ---------------------------------------------------------------------------


def test_builtin_direction_sets_have_at_least_400_per_class(builtin: QuestionSets) -> None:
    assert len(builtin.reasoning) >= 400
    assert len(builtin.memory) >= 400
    assert len(builtin) == len(builtin.reasoning) + len(builtin.memory)
    assert {q.label for q in builtin.reasoning} == {"reasoning"}
    assert {q.label for q in builtin.memory} == {"memory"}


def test_reasoning_set_has_at_least_20_templates(builtin: QuestionSets) -> None:
    groups = {q.group for q in builtin.reasoning}
    assert len(groups) >= 20
    assert all(q.source == f"template:{q.group}" for q in builtin.reasoning)


def test_every_item_has_all_fields_source_and_license() -> None:
    for name in ITEM_FILES:
        for record in read_jsonl(name):
            assert list(record) == ITEM_KEYS, (name, record)
            assert record["source"].strip() and record["license"].strip(), record["id"]
            assert record["question"].strip() and record["answer"].strip(), record["id"]
            assert not record["question"].startswith("Q:"), record["id"]
            assert isinstance(record["aliases"], list)
    for name in FEWSHOT_FILES:
        for record in read_jsonl(name):
            assert record["license"] == "Apache-2.0 (project-written)"


def test_ids_and_question_texts_are_unique_across_all_files() -> None:
    ids: list[str] = []
    texts: list[str] = []
    for name in ITEM_FILES + FEWSHOT_FILES + [MATCHED_FILE, *LADDER_FILES]:
        for record in read_jsonl(name):
            ids.append(record["id"])
            texts.append(record["question"])
    assert len(ids) == len(set(ids))
    assert len(texts) == len(set(texts))


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", text.lower()) is not None


# Fact groups whose answer is a name; eval facts and exemplars are drawn from these.
NAME_GROUPS = {"country-capital", "element-symbol", "state-capital"}


def test_eval_facts_share_no_fact_with_the_direction_set() -> None:
    direction = [r for r in read_jsonl("memory.jsonl") if r["group"] in NAME_GROUPS]
    for item in read_jsonl("eval_facts.jsonl"):
        assert item["group"] in NAME_GROUPS
        for d in direction:
            if d["group"] != item["group"]:
                continue
            # The same fact asked either way round would repeat the answer, or name it.
            assert d["answer"] != item["answer"], (item["id"], d["id"])
            assert not _mentions(d["question"], item["answer"]), (item["id"], d["id"])


def test_fewshot_exemplar_facts_appear_in_no_set() -> None:
    exemplar_group = {"Paris": "country-capital", "Tokyo": "country-capital",
                      "Austin": "state-capital", "Oxygen": "element-symbol",
                      "Sodium": "element-symbol"}  # fmt: skip
    shots = read_jsonl("fewshot_facts.jsonl")
    assert {s["answer"] for s in shots} == set(exemplar_group)
    for name in ("memory.jsonl", "eval_facts.jsonl"):
        for record in read_jsonl(name):
            for answer, group in exemplar_group.items():
                if record["group"] == group:
                    assert record["answer"] != answer, record["id"]
                    assert not _mentions(record["question"], answer), record["id"]


def test_reasoning_answers_are_non_negative_integers() -> None:
    for name in ("reasoning.jsonl", "eval_arithmetic.jsonl"):
        for record in read_jsonl(name):
            assert re.fullmatch(r"\d+", record["answer"]), record["id"]


# (group, pattern, answer from the numbers in the question), for both phrasings of a template.
REDERIVE = [
    ("speed", r"goes (\d+) km/h for (\d+) hours, then (\d+) km/h for (\d+) hours\.",
     lambda v, a, w, b: v * a + w * b),
    ("speed", r"at (\d+) kilometres per hour for (\d+) hours\. .* at (\d+) kilometres per hour "
     r"for another (\d+) hours\.", lambda v, a, w, b: v * a + w * b),
    ("fence", r"A garden is (\d+) m by (\d+) m\. Fencing costs (\d+) dollars",
     lambda length, w, c: 2 * (length + w) * c),
    ("fence", r"is (\d+) metres long and (\d+) metres wide\. .* costs (\d+) dollars per metre",
     lambda length, w, c: 2 * (length + w) * c),
    ("minutes", r"A film lasts (\d+) hours (\d+) minutes, plus (\d+) minutes",
     lambda h, m, t: 60 * h + m + t),
    ("minutes", r"starts with (\d+) minutes of trailers.* runs for (\d+) hours and (\d+) minutes",
     lambda t, h, m: 60 * h + m + t),
    ("workers", r"^(\d+) workers paint a fence in (\d+) days\. How many days would (\d+) workers",
     lambda n, d, k: n * d // k),
    ("workers", r"A crew of (\d+) painters needs (\d+) days .* hires (\d+) painters",
     lambda n, d, k: n * d // k),
]  # fmt: skip


@pytest.mark.parametrize("group", sorted({g for g, *_ in REDERIVE}))
def test_reasoning_answers_rederived_from_the_question_text(group: str) -> None:
    patterns = [(re.compile(p), f) for g, p, f in REDERIVE if g == group]
    items = [r for n in ("reasoning.jsonl", "eval_arithmetic.jsonl") for r in read_jsonl(n)]
    checked = 0
    for record in (r for r in items if r["group"] == group):
        for pattern, answer in patterns:
            match = pattern.search(record["question"])
            if match:
                assert str(answer(*map(int, match.groups()))) == record["answer"], record["id"]
                checked += 1
                break
        else:
            pytest.fail(f"{record['id']}: no known phrasing matches {record['question']!r}")
    assert checked >= 20


def test_length_distributions_overlap(builtin: QuestionSets) -> None:
    r_len = sorted(len(q.text) for q in builtin.reasoning)
    m_len = sorted(len(q.text) for q in builtin.memory)
    assert sum(x >= r_len[len(r_len) // 4] for x in m_len) >= 100  # long recall questions
    matched = builtin.length_matched()
    assert len(matched.reasoning) == len(matched.memory) >= 100


def test_frozen_files_match_the_manifest() -> None:
    manifest = json.loads((BUILTIN / "manifest.json").read_text("utf-8"))
    for name in ITEM_FILES + FEWSHOT_FILES + [MATCHED_FILE, *LADDER_FILES]:
        body = (BUILTIN / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == manifest["files"][name]["sha256"], name
        assert body.count(b"\n") == manifest["files"][name]["items"]
    assert set(manifest["licenses"]) >= {"countryinfo", "periodictable", "us", "project"}


def test_generator_reproduces_the_frozen_files_byte_for_byte(tmp_path: Path) -> None:
    for pkg in ("countryinfo", "periodictable", "us"):
        pytest.importorskip(pkg)
    spec = importlib.util.spec_from_file_location("make_builtin_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules["make_builtin_data"] = script  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(script)
        for pkg, version in script.GENERATORS.items():
            if importlib.metadata.version(pkg) != version:
                pytest.skip(f"{pkg} {importlib.metadata.version(pkg)} installed, need {version}")
        script.generate(tmp_path)
    finally:
        del sys.modules["make_builtin_data"]
    for name in [*ITEM_FILES, *FEWSHOT_FILES, MATCHED_FILE, *LADDER_FILES, "manifest.json"]:
        assert (tmp_path / name).read_bytes() == (BUILTIN / name).read_bytes(), name


# --- the format-matched set -------------------------------------------------------------------


@pytest.fixture(scope="module")
def matched() -> QuestionSets:
    return load("builtin-matched")


def _auroc(pos: list[int], neg: list[int]) -> float:
    """Mann-Whitney AUROC of a scalar feature, in its better orientation (max(a, 1 - a))."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    auc = wins / (len(pos) * len(neg))
    return max(auc, 1.0 - auc)


def test_matched_set_has_150_per_class_and_both_answer_types(matched: QuestionSets) -> None:
    assert len(matched.reasoning) >= 150 and len(matched.memory) >= 150
    for questions in (matched.reasoning, matched.memory):
        types = [data.answer_type(q.answer) for q in questions]
        assert types.count("number") == types.count("text")


def test_matched_items_carry_source_license_and_their_answer_type() -> None:
    for record in read_jsonl(MATCHED_FILE):
        assert list(record) == [*ITEM_KEYS[:5], "answer_type", *ITEM_KEYS[5:]], record["id"]
        assert record["source"].strip() and record["license"].strip(), record["id"]
        assert record["answer_type"] == data.answer_type(record["answer"]), record["id"]


def test_matched_families_use_the_same_facts_in_both_classes(matched: QuestionSets) -> None:
    reasoning_sources = {q.source.split(" (")[0] for q in matched.reasoning}
    memory_sources = {q.source.split(" (")[0] for q in matched.memory}
    assert memory_sources <= reasoning_sources  # every memory domain also has reasoning items
    assert len({q.group for q in matched.reasoning}) >= 10


@pytest.mark.parametrize("unit", ["characters", "smollm2 tokens"])
def test_matched_prompt_length_is_near_chance_on_the_heldout_split(
    matched: QuestionSets, unit: str, request: pytest.FixtureRequest
) -> None:
    _, test = matched.split(test_fraction=0.3, seed=0)  # the split the layer report uses
    if unit == "characters":
        length: Any = len
    else:
        tok = request.getfixturevalue("tokenizer")
        length = lambda p: len(tok(p, add_special_tokens=True)["input_ids"])  # noqa: E731
    r = [length(p) for p in test.reasoning_prompts()]
    m = [length(p) for p in test.memory_prompts()]
    assert _auroc(r, m) <= 0.6


def test_matched_split_holds_out_whole_families(matched: QuestionSets) -> None:
    train, test = matched.split(test_fraction=0.3, seed=0)
    assert not {q.group for q in train.reasoning} & {q.group for q in test.reasoning}
    assert {q.group for q in train.memory} == {q.group for q in test.memory}


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


# Families whose answer is a function of the numbers in the prompt (in order of appearance).
NUMERIC_FAMILIES = {
    "atomic-gap": lambda n: abs(n[0] - n[1]),
    "atomic-sum": lambda n: n[0] + n[1],
    "code-sum": lambda n: n[0] + n[1],
    "year-gap": lambda n: abs(n[0] - n[1]),
    "year-offset": lambda n: abs(n[0] - n[1]),
    "plain-sum": lambda n: n[0] + n[1],
    "plain-product": lambda n: n[0] * n[1],
}


def test_matched_numeric_answers_follow_from_the_given_numbers(matched: QuestionSets) -> None:
    multiples = {"twice": 2, "three times": 3, "four times": 4, "five times": 5}
    checked = 0
    for q in matched.reasoning:
        if q.group in NUMERIC_FAMILIES:
            assert int(q.answer) == NUMERIC_FAMILIES[q.group](_numbers(q.text)), q.id
        elif q.group == "atomic-multiple":
            factor = next(v for k, v in multiples.items() if k in q.text)
            assert int(q.answer) == factor * _numbers(q.text)[0], q.id
        elif q.group == "name-length":
            found = re.search(
                r"the (?:word|name) ([A-Za-z]+)[ ?]|The capital of .+? is ([A-Za-z]+)\.|"
                r"([A-Za-z]+) is the capital of",
                q.text,
            )
            assert found is not None, q.id
            word = next(g for g in found.groups() if g)
            assert int(q.answer) == len(word), q.id
        else:
            continue
        checked += 1
    assert checked == sum(data.answer_type(q.answer) == "number" for q in matched.reasoning)


def test_matched_text_answers_are_named_in_the_reasoning_prompt(matched: QuestionSets) -> None:
    for q in matched.reasoning:
        if data.answer_type(q.answer) == "text":
            # A letter, a name or an element: always readable from the prompt itself.
            assert q.answer.lower() in q.text.lower(), q.id


def test_matched_memory_prompts_never_hold_their_answer(matched: QuestionSets) -> None:
    for q in matched.memory:
        for answer in q.answers:
            assert not _mentions(q.text, answer), q.id


def test_matched_memory_asks_each_fact_once(matched: QuestionSets) -> None:
    # Groups whose answer identifies the fact (years and calling codes repeat across entities).
    unique = {"atomic-number", "element-symbol", "country-capital", "state-capital"}
    facts = [(q.group, q.answer) for q in matched.memory if q.group in unique]
    assert len(facts) >= 150
    assert len(facts) == len(set(facts))


def test_matched_file_whose_classes_differ_in_answer_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [{"question": f"What is {i} plus {i}?", "label": "reasoning", "answer": str(2 * i)}
            for i in range(4)]  # fmt: skip
    rows += [{"question": f"Capital number {i}?", "label": "memory", "answer": "Lima"}
             for i in range(4)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert len(load(path)) == 8  # not declared matched: accepted
    with pytest.raises(DataError, match=r"differ in answer type: reasoning 100% number") as err:
        load(path, matched=True)
    assert "\n" not in str(err.value) and "mine.jsonl" in str(err.value)


def test_matched_check_needs_an_answer_for_every_question() -> None:
    sets = QuestionSets.from_texts(["What is 2 plus 2?"], ["What is the capital of Peru?"])
    with pytest.raises(DataError, match="has no answer"):
        data.check_matched(sets)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("42", "number"), ("+33", "number"), ("-3", "number"), ("2.5", "number"), (" 7 ", "number"),
     ("Lima", "text"), ("Sn", "text"), ("1/2", "text"), ("42 km", "text"), ("B", "text")],
)  # fmt: skip
def test_answer_type_is_number_only_for_a_plain_number(answer: str, kind: str) -> None:
    assert data.answer_type(answer) == kind


# --- format_prompt ------------------------------------------------------------------------------


def test_format_prompt_is_the_papers_format() -> None:
    assert format_prompt("What is 2+3?") == "Q: What is 2+3?\nA: "


class FakeChatTokenizer:
    name_or_path = "fake"

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        assert kwargs == {"tokenize": False, "add_generation_prompt": True}
        (message,) = messages
        return f"<user>{message['content']}</user><assistant>"


def test_format_prompt_with_chat_template() -> None:
    got = format_prompt("Hi?", chat_template=True, tokenizer=FakeChatTokenizer())
    assert got == "<user>Hi?</user><assistant>"
    sets = QuestionSets.from_texts(["r?"], ["m?"])
    assert sets.reasoning_prompts(True, FakeChatTokenizer()) == ["<user>r?</user><assistant>"]


def test_format_prompt_chat_template_needs_a_tokenizer() -> None:
    with pytest.raises(DataError, match="tokenizer"):
        format_prompt("Hi?", chat_template=True)


def test_prompts_and_labels_follow_class_order() -> None:
    sets = QuestionSets.from_texts(["r1", "r2"], ["m1"])
    texts, labels = sets.prompts()
    assert texts == ["Q: r1\nA: ", "Q: r2\nA: ", "Q: m1\nA: "]
    assert labels == [1, 1, 0]
    assert sets.memory_prompts() == ["Q: m1\nA: "]


# --- QuestionSets -------------------------------------------------------------------------------


def test_question_sets_need_both_classes() -> None:
    with pytest.raises(DataError, match="both classes"):
        QuestionSets.from_texts(["a reasoning question"], [])


def test_question_with_unknown_label_is_refused() -> None:
    with pytest.raises(DataError, match="'maybe'"):
        Question("t", "a", "maybe", "id-1", "g", "s", "l")


def test_hash_depends_on_texts_labels_and_order() -> None:
    base = QuestionSets.from_texts(["a", "b"], ["c"]).hash()
    assert base == QuestionSets.from_texts(["a", "b"], ["c"], name="other").hash()
    assert base != QuestionSets.from_texts(["b", "a"], ["c"]).hash()
    assert base != QuestionSets.from_texts(["a"], ["b", "c"]).hash()
    assert re.fullmatch(r"[0-9a-f]{16}", base)


def test_builtin_hash_is_stable(builtin: QuestionSets) -> None:
    assert load("builtin").hash() == builtin.hash()


def test_split_is_deterministic(builtin: QuestionSets) -> None:
    a_train, a_test = builtin.split(0.3, seed=0)
    b_train, b_test = builtin.split(0.3, seed=0)
    assert a_train == b_train and a_test == b_test
    c_train, _ = builtin.split(0.3, seed=1)
    assert c_train != a_train


def test_split_holds_out_whole_reasoning_templates(builtin: QuestionSets) -> None:
    train, test = builtin.split(0.3, seed=0)
    train_groups = {q.group for q in train.reasoning}
    test_groups = {q.group for q in test.reasoning}
    assert train_groups and test_groups and not train_groups & test_groups
    assert len(train.reasoning) + len(test.reasoning) == len(builtin.reasoning)
    assert 0.2 <= len(test.reasoning) / len(builtin.reasoning) <= 0.4


def test_split_stratifies_memory_by_fact_type(builtin: QuestionSets) -> None:
    train, test = builtin.split(0.3, seed=0)
    assert not {q.id for q in train.memory} & {q.id for q in test.memory}
    assert len(train.memory) + len(test.memory) == len(builtin.memory)
    groups = {q.group for q in builtin.memory}
    for g in groups:
        n = sum(q.group == g for q in builtin.memory)
        n_test = sum(q.group == g for q in test.memory)
        assert abs(n_test - 0.3 * n) <= 1, g


def test_split_keeps_original_order(builtin: QuestionSets) -> None:
    train, _ = builtin.split()
    position = {q.id: i for i, q in enumerate(builtin.reasoning)}
    order = [position[q.id] for q in train.reasoning]
    assert order == sorted(order)


def test_split_without_groups_is_an_item_split() -> None:
    sets = QuestionSets.from_texts([f"r{i}" for i in range(10)], [f"m{i}" for i in range(10)])
    train, test = sets.split(0.3, seed=0)
    assert (len(train.reasoning), len(test.reasoning)) == (7, 3)
    assert (len(train.memory), len(test.memory)) == (7, 3)


def test_split_refuses_a_single_reasoning_group() -> None:
    reasoning = [Question(f"r{i}", "1", "reasoning", f"r{i}", "g", "s", "l") for i in range(4)]
    memory = [Question(f"m{i}", "x", "memory", f"m{i}", f"m{i}", "s", "l") for i in range(4)]
    with pytest.raises(DataError, match="one group"):
        QuestionSets(tuple(reasoning), tuple(memory)).split()


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_split_refuses_a_bad_fraction(fraction: float) -> None:
    with pytest.raises(DataError, match="test_fraction"):
        QuestionSets.from_texts(["a", "b"], ["c", "d"]).split(fraction)


def test_subset_spreads_over_groups(builtin: QuestionSets) -> None:
    sub = builtin.subset(28, seed=0)
    assert len(sub.reasoning) == len(sub.memory) == 28
    assert len({q.group for q in sub.reasoning}) == 28  # one per template
    assert sub == builtin.subset(28, seed=0)
    assert len(builtin.subset(10_000).reasoning) == len(builtin.reasoning)


def test_length_matched_balances_every_bin() -> None:
    sets = QuestionSets.from_texts(["x" * 5, "x" * 15, "x" * 16, "x" * 40], ["y" * 3, "y" * 12])
    matched = sets.length_matched(bin_width=10)
    assert sorted(len(q.text) // 10 for q in matched.reasoning) == [0, 1]
    assert sorted(len(q.text) // 10 for q in matched.memory) == [0, 1]
    with pytest.raises(DataError, match="length"):
        QuestionSets.from_texts(["x" * 50], ["y"]).length_matched(bin_width=10)


def test_describe_counts_classes_and_groups(builtin: QuestionSets) -> None:
    info = builtin.describe()
    assert info["n_reasoning"] == len(builtin.reasoning)
    assert sum(info["memory_groups"].values()) == len(builtin.memory)
    assert sum(info["licenses"].values()) == len(builtin)
    assert info["hash"] == builtin.hash()
    json.dumps(info)


# --- user files ---------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_user_jsonl_maps_labels_case_insensitively(tmp_path: Path) -> None:
    rows = [
        {"question": "What is 3 * 4 + 1?", "label": "Reasoning", "answer": 13, "group": "g1"},
        {"question": "Capital of Peru?", "label": 0, "aliases": ["Lima city"]},
        {"question": "What is 5 + 5 * 2?", "label": True, "group": "g2"},
        {"question": "Symbol of gold?", "label": "MEMORY"},
    ]
    path = write(tmp_path, "mine.jsonl", "".join(json.dumps(r) + "\n" for r in rows) + "\n")
    sets = load(path)
    assert [q.text for q in sets.reasoning] == ["What is 3 * 4 + 1?", "What is 5 + 5 * 2?"]
    assert [q.text for q in sets.memory] == ["Capital of Peru?", "Symbol of gold?"]
    assert sets.reasoning[0].answer == "13" and sets.reasoning[0].group == "g1"
    assert sets.memory[0].aliases == ("Lima city",)
    assert sets.memory[0].answers == ("Lima city",)  # no answer given, only the alias
    assert sets.reasoning[0].answers == ("13",)
    assert sets.memory[0].id == "mine-2" and sets.memory[0].group == "mine-2"
    assert sets.name == "mine"


def test_load_user_csv_with_custom_columns_and_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine.csv",
        'prompt,kind,gold\n"If 3 pens cost 6, what do 5 cost?",hard,10\n'
        "Who wrote Hamlet?,easy,Shakespeare\nCapital of Chile?,EASY,Santiago\n",
    )
    sets = load(
        str(path),
        text_column="prompt",
        label_column="kind",
        answer_column="gold",
        reasoning_values=("hard",),
        memory_values=("easy",),
    )
    assert [q.text for q in sets.reasoning] == ["If 3 pens cost 6, what do 5 cost?"]
    assert [q.answer for q in sets.memory] == ["Shakespeare", "Santiago"]
    assert sets.memory[1].id == "mine-4"  # line 4 of the file


BAD_FILES = [
    ("bad.jsonl", '{"question": "a", "label": "reasoning"}\n{"question": "b", "label": "memory"}\n{"question": \n', "line 3", "not valid JSON"),
    ("bad.jsonl", '{"question": "a", "label": "reasoning"}\n["b", "memory"]\n', "line 2", "expected an object"),
    ("bad.jsonl", '{"question": "a", "label": "reasoning"}\n{"text": "b", "label": "memory"}\n', "line 2", "no 'question' field"),
    ("bad.jsonl", '{"question": "a", "label": "reasoning"}\n\n{"question": "b", "label": "maybe"}\n', "line 3", "unknown label 'maybe'"),
    ("bad.jsonl", '{"question": "a", "label": "reasoning"}\n{"question": "  ", "label": "memory"}\n', "line 2", "empty"),
    ("bad.csv", "question,label\na,reasoning\nb\n", "line 3", "field(s)"),
    ("bad.csv", "question,label\na,reasoning\nb,memory,extra\n", "line 3", "fields"),
    ("bad.csv", "text,label\na,reasoning\n", "line 1", "no 'question' column"),
    ("bad.csv", "question,label\na,reasoning\n,memory\n", "line 3", "empty"),
    ("bad.csv", "question,label\na,reasoning\nb,neither\n", "line 3", "unknown label"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "line", "what"), BAD_FILES)
def test_malformed_files_name_the_file_and_line(
    tmp_path: Path, name: str, body: str, line: str, what: str
) -> None:
    path = write(tmp_path, name, body)
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert name in message and f"{line}:" in message and what in message


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    # A quoted CSV field may span lines; a JSON string may hold U+2028 (not a line break in JSONL).
    csv_path = write(tmp_path, "multi.csv", 'question,label\n"two\nlines",reasoning\nx,bogus\n')
    with pytest.raises(DataError, match="line 4: unknown label 'bogus'"):
        load(csv_path)
    rows = [{"question": "a\u2028b", "label": "reasoning"}, {"question": "c", "label": "memory"}]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    sets = load(write(tmp_path, "sep.jsonl", body))
    assert sets.reasoning[0].text == "a\u2028b" and sets.memory[0].id == "sep-2"


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("empty.jsonl", ""),
        ("empty.csv", "question,label\n"),
        ("one.jsonl", '{"question": "a", "label": "memory"}\n{"question": "b", "label": "0"}\n'),
        ("one.csv", "question,label\na,reasoning\nb,1\n"),
    ],
)
def test_empty_or_one_class_files_are_refused(tmp_path: Path, name: str, body: str) -> None:
    with pytest.raises(DataError, match="both classes are needed"):
        load(write(tmp_path, name, body))


def test_same_question_with_both_labels_is_refused(tmp_path: Path) -> None:
    body = '{"question": "a", "label": "reasoning"}\n{"question": "a", "label": "memory"}\n'
    with pytest.raises(DataError, match="only one label"):
        load(write(tmp_path, "dup.jsonl", body))


def test_unknown_source_and_suffix_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="neither 'builtin'"):
        load("no-such-file.jsonl")
    with pytest.raises(DataError, match=re.escape("suffix '.txt'")):
        load(write(tmp_path, "q.txt", "a\n"))


# --- optional sources and eval sets -------------------------------------------------------------


def test_reasoning_gym_missing_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes the import fail
    with pytest.raises(DataError, match=re.escape("pip install reasoning-gym==0.1.25")):
        load("reasoning-gym")


class FakeGsmSymbolic:
    """Stands in for reasoning_gym's gsm_symbolic dataset: items and their template indices."""

    def __init__(self, size: int, seed: int) -> None:
        self.task_indices = [i % 5 for i in range(size)]
        self.seed = seed

    def __getitem__(self, i: int) -> dict[str, Any]:
        question = f"Problem {i // 10} of template {self.task_indices[i]}."  # some repeat
        return {"question": question + data._GSM_SYMBOLIC_SUFFIX, "answer": str(i), "metadata": {}}


def test_reasoning_gym_source_groups_by_template(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("reasoning_gym")
    fake.create_dataset = lambda name, size, seed: FakeGsmSymbolic(size, seed)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reasoning_gym", fake)
    sets = load("reasoning-gym")
    assert sets.memory == load("builtin").memory
    assert all(not q.text.endswith("Do not include units.") for q in sets.reasoning)
    assert len({q.text for q in sets.reasoning}) == len(sets.reasoning)
    assert {q.group for q in sets.reasoning} == {f"gsm_symbolic-{t}" for t in range(5)}
    train, test = sets.split()
    assert not {q.group for q in train.reasoning} & {q.group for q in test.reasoning}
