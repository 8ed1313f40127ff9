"""Evaluation tasks (lirefs.evaluation.tasks): answer extraction, scoring, loaders on hand-made files.

The files under ``tests/data`` follow the columns of the Hub datasets (openai/gsm8k, juletxara/mgsm
and its original headerless TSV files, TIGER-Lab/MMLU-Pro, ceval/ceval-exam, akariasai/PopQA) with
project-written content; no benchmark text is copied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lirefs.errors import DataError
from lirefs.evaluation.tasks import (
    CEVAL_HUMANITIES,
    Item,
    benchmarks,
    contains_any,
    extract_ceval,
    extract_choice,
    extract_first_line,
    extract_number,
    get_benchmark,
    numbers_equal,
)
from lirefs.evaluation.tasks.builtin import load_eval

DATA = Path(__file__).parents[2] / "data"


# ---------------------------------------------------------------------------------------------
# numeric answers (GSM8K, MGSM, built-in arithmetic)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("She has 18 left. The final answer is 18.", "18"),
        ("The final answer is 1,234.", "1234"),
        ("The final answer is 12.0", "12"),
        ("The final answer is 0.50 dollars", "0.5"),
        ("The final answer is -5.", "-5"),
        ("The final answer is $45.", "45"),
        ("The final answer is: 7", "7"),
        ("the final answer is 9", "9"),  # marker matched in any case
        ("So the answer is 18.", None),  # not the paper's marker
        ("The final answer is eighteen.", None),
        ("", None),
        # first match wins (re.search), as in the paper's code
        ("The final answer is 3. The final answer is 4.", "3"),
        # the model's own next exemplar is cut off before searching
        ("I am not sure.\nQ: Another question?\nA: The final answer is 8.", None),
        ("The final answer is 12,345,678", "12345678"),
    ],
)
def test_extract_number(output: str, expected: str | None) -> None:
    assert extract_number(output) == expected


@pytest.mark.parametrize(
    ("extracted", "gold", "equal"),
    [
        ("12", "12.0", True),
        ("1234", "1,234", True),
        ("-5", "-5", True),
        ("5", "-5", False),
        ("0.5", "0.50", True),
        ("12.01", "12", False),
        (None, "12", False),
    ],
)
def test_numbers_equal(extracted: str | None, gold: str, equal: bool) -> None:
    assert numbers_equal(extracted, gold) is equal


def test_numeric_scoring_counts_absent_answer_wrong() -> None:
    bench = get_benchmark("gsm8k")
    item = Item(id="0", question="q", answer="1234")
    assert bench.score("so The final answer is 1,234.", item) == ("1234", True)
    assert bench.score("The final answer is 1,235.", item) == ("1235", False)
    assert bench.score("1234", item) == (None, False)  # no marker: no answer, never a guess


# ---------------------------------------------------------------------------------------------
# multiple choice (MMLU-Pro, C-Eval)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Let's think. The answer is (C).", "C"),
        ("the answer is C", "C"),
        ("The answer is (J)", "J"),
        ("The answer is C.", "C"),
        ("Answer is (B)", "B"),
        ("the answer is Correct", None),  # the letter must not start a word
        ("the answer is (c)", None),  # options are upper-case letters
        ("the answer is (K)", None),
        ("I think it is B.", None),
        ("The answer is (A). Wait, the answer is (B).", "A"),  # first match wins
        ("Hmm.\nQ: next?\nA: The answer is (D).", None),
    ],
)
def test_extract_choice(output: str, expected: str | None) -> None:
    assert extract_choice(output) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("1. 公孙龙提出白马非马。\n所以答案是A。", "A"),
        ("所以答案是 B", "B"),
        ("所以答案是   D。", "D"),
        ("所以答案是：C", "C"),
        ("答案是A", None),  # the marker is 所以答案是
        ("所以答案是E", None),
        ("所以答案是B。所以答案是C。", "B"),  # first match wins
        ("不确定。\n问题：下一题\n所以答案是A", None),  # cut at the model's own next exemplar
    ],
)
def test_extract_ceval(output: str, expected: str | None) -> None:
    assert extract_ceval(output) == expected


def test_choice_scoring() -> None:
    bench = get_benchmark("mmlu-pro")
    item = Item(id="1", question="q", answer="C", choices=("a", "b", "c"))
    assert bench.score("... the answer is (C).", item) == ("C", True)
    assert bench.score("... the answer is (B).", item) == ("B", False)
    assert bench.score("no idea", item) == (None, False)


# ---------------------------------------------------------------------------------------------
# containment (PopQA, built-in facts)


def test_extract_first_line() -> None:
    assert extract_first_line("\n  The answer is Paris.\nQ: more") == "The answer is Paris."
    assert extract_first_line("   \n\n") is None
    assert extract_first_line("$$$$\nParis") is None  # a collapsed first line answers nothing
    assert extract_first_line("...") is None
    assert extract_first_line("巴黎") == "巴黎"
    assert extract_first_line("") is None


@pytest.mark.parametrize(
    ("text", "accepted", "ok"),
    [
        ("The answer is Ulan Bator.", ["Ulaanbaatar", "Ulan Bator"], True),
        ("the answer is PARIS", ["Paris"], True),
        ("The answer is Tin.", ["Ti"], False),  # whole words only
        ("It is in Canada", ["Canada", "CA"], True),
        ("because of it", ["CA"], False),
        ("New  York", ["new york"], True),  # whitespace runs compare as one space
        (None, ["Paris"], False),
    ],
)
def test_contains_any(text: str | None, accepted: list[str], ok: bool) -> None:
    assert contains_any(text, accepted, whole_words=True) is ok


def test_popqa_scoring_any_possible_answer() -> None:
    bench = get_benchmark("popqa")
    item = Item(id="1", question="q", answer="politician", aliases=("political leader",))
    assert bench.score("He was a Political Leader in Tasmania.", item)[1] is True
    assert bench.score("He was a farmer.\nQ: What is politician X?", item)[1] is False
    assert bench.score("   ", item) == (None, False)


def test_facts_scoring_first_line_only() -> None:
    bench = get_benchmark("builtin-facts")
    item = Item(id="1", question="q", answer="Kabul")
    assert bench.score("The answer is Kabul.\nQ: x", item) == ("The answer is Kabul.", True)
    assert bench.score("The answer is Kandahar.\nKabul", item) == ("The answer is Kandahar.", False)


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_lists_every_benchmark() -> None:
    names = benchmarks()
    for name in ("gsm8k", "mmlu-pro", "ceval-humanities", "popqa", "builtin-arithmetic"):
        assert name in names
    for lang in ("zh", "de", "bn", "ja", "te"):
        assert f"mgsm-{lang}" in names
    assert get_benchmark("gsm8k").n_shots == 8 and get_benchmark("mmlu-pro").n_shots == 5
    assert get_benchmark("ceval-humanities").n_shots == 5 and get_benchmark("popqa").n_shots == 0


def test_unknown_benchmark_lists_known_names() -> None:
    with pytest.raises(DataError, match=r"unknown benchmark 'gsm9k'.*gsm8k.*popqa"):
        get_benchmark("gsm9k")


def test_top_level_benchmarks_function() -> None:
    import lirefs

    assert lirefs.benchmarks() == benchmarks()


# ---------------------------------------------------------------------------------------------
# local loaders, one per real benchmark


def test_gsm8k_local_folder() -> None:
    data = get_benchmark("gsm8k").load(DATA / "gsm8k")
    assert [(i.id, i.answer) for i in data.items] == [("0", "18"), ("1", "1250"), ("2", "-5")]
    prompt = data.prompt(data.items[0])
    # 8 exemplars from the train file, calculator annotations removed, paper's answer sentence
    assert prompt.count("Q: ") == 9 and prompt.count("The final answer is") == 8
    assert "<<" not in prompt and "####" not in prompt
    assert prompt.endswith(f"Q: {data.items[0].question}\nA:")
    shot_questions = {s.question for s in data.shots[None]}
    assert not shot_questions & {i.question for i in data.items}


def test_mgsm_headerless_tsv_keeps_first_row() -> None:
    data = get_benchmark("mgsm-de").load(DATA / "mgsm" / "mgsm_de.tsv")
    assert len(data.items) == 3
    assert data.items[0].question.startswith("Jana hat 3 Äpfel")  # not swallowed as a header
    assert [i.answer for i in data.items] == ["8", "120", "6"]
    prompt = data.prompt(data.items[0])
    assert prompt.count("The final answer is") == 8
    # localised labels of the train split are dropped so exemplars fit the Q:/A: framing
    assert "Frage:" not in prompt and "Schritt-für-Schritt-Antwort:" not in prompt


def test_mgsm_tsv_with_header_row(tmp_path: Path) -> None:
    src = (DATA / "mgsm" / "mgsm_de.tsv").read_text(encoding="utf-8")
    (tmp_path / "mgsm_de.tsv").write_text("question\tanswer_number\n" + src, encoding="utf-8")
    shutil.copy(DATA / "mgsm" / "mgsm_de_train.jsonl", tmp_path)
    data = get_benchmark("mgsm-de").load(tmp_path / "mgsm_de.tsv")
    assert len(data.items) == 3 and data.items[0].question.startswith("Jana")


def test_mmlu_pro_local_csv_groups_exemplars_by_category() -> None:
    data = get_benchmark("mmlu-pro").load(DATA / "mmlu_pro" / "test.csv")
    assert [(i.id, i.answer, i.group) for i in data.items] == [
        ("70", "B", "math"),
        ("71", "C", "math"),
        ("72", "A", "history"),
    ]
    assert len(data.items[1].choices) == 10
    history = data.prompt(data.items[2])
    assert "about history" in history and history.count("history exemplar") == 5
    assert "math exemplar" not in history
    assert history.endswith("(D) Sappho\nA: Let's think step by step.")


def test_mmlu_pro_parquet_shards(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import csv

    with open(DATA / "mmlu_pro" / "test.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # the Hub's parquet keeps options as a real list and ids as ints
        row["options"] = json.loads(row["options"])
        row["question_id"] = int(row["question_id"])
        row["answer_index"] = int(row["answer_index"])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000-of-00001.parquet")
    text = (DATA / "mmlu_pro" / "validation.jsonl").read_text(encoding="utf-8")
    shots = [json.loads(line) for line in text.splitlines()]
    pq.write_table(pa.Table.from_pylist(shots), tmp_path / "validation-00000-of-00001.parquet")
    data = get_benchmark("mmlu-pro").load(tmp_path)
    assert [i.answer for i in data.items] == ["B", "C", "A"]
    assert data.items[0].choices == ("54", "56", "58", "64")


def test_ceval_local_file_with_subject_column() -> None:
    data = get_benchmark("ceval-humanities").load(DATA / "ceval" / "val.csv")
    assert [i.id for i in data.items] == ["logic-0", "logic-1", "high_school_history-0"]
    prompt = data.prompt(data.items[2])
    assert prompt.startswith("以下是中国关于高中历史考试的单项选择题")
    assert prompt.count("所以答案是") == 5 and "logic 示例题" not in prompt
    assert prompt.endswith("答案：让我们一步一步思考，\n")


def _write_ceval_official(root: Path, subjects: list[str]) -> None:
    header = "id,question,A,B,C,D,answer,explanation\n"
    for subject in subjects:
        (root / "val").mkdir(parents=True, exist_ok=True)
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "val" / f"{subject}_val.csv").write_text(
            header + f"0,{subject} 题目？,甲,乙,丙,丁,B,\n", encoding="utf-8"
        )
        dev = "".join(f"{i},{subject} 示例{i}？,甲,乙,丙,丁,A,解释{i}\n" for i in range(5))
        (root / "dev" / f"{subject}_dev.csv").write_text(header + dev, encoding="utf-8")


def test_ceval_official_folder_layout(tmp_path: Path) -> None:
    _write_ceval_official(tmp_path, list(CEVAL_HUMANITIES))
    data = get_benchmark("ceval-humanities").load(tmp_path)
    assert len(data.items) == len(CEVAL_HUMANITIES) == 11
    assert {i.group for i in data.items} == set(CEVAL_HUMANITIES)
    assert all(i.answer == "B" for i in data.items)


def test_ceval_official_folder_missing_subject(tmp_path: Path) -> None:
    _write_ceval_official(tmp_path, list(CEVAL_HUMANITIES)[:-1])
    with pytest.raises(DataError, match="middle_school_history_val"):
        get_benchmark("ceval-humanities").load(tmp_path)


def test_popqa_local_tsv_zero_shot() -> None:
    data = get_benchmark("popqa").load(DATA / "popqa" / "test.tsv")
    assert [i.id for i in data.items] == ["4222362", "6054037", "1521315"]
    assert data.items[1].accepted == ("Canada", "CA", "Dominion of Canada")
    assert data.prompt(data.items[0]) == "Q: What is George Rankin's occupation?\nA:"


# ---------------------------------------------------------------------------------------------
# errors


def test_missing_local_path() -> None:
    with pytest.raises(DataError, match=r"does not exist.*--data-path"):
        get_benchmark("gsm8k").load(DATA / "nope.jsonl")


def test_missing_exemplar_split(tmp_path: Path) -> None:
    shutil.copy(DATA / "gsm8k" / "test.jsonl", tmp_path)
    with pytest.raises(DataError, match=r"'train' split.*train\.jsonl"):
        get_benchmark("gsm8k").load(tmp_path / "test.jsonl")


def test_too_few_exemplars(tmp_path: Path) -> None:
    shutil.copy(DATA / "gsm8k" / "test.jsonl", tmp_path)
    lines = (DATA / "gsm8k" / "train.jsonl").read_text().splitlines()[:5]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"needs 8 exemplars.*has 5"):
        get_benchmark("gsm8k").load(tmp_path / "test.jsonl")


def _bad_gsm8k(tmp_path: Path) -> Path:
    lines = (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()
    bad = json.dumps({"question": "No final line here?", "answer": "It is 4."})
    (tmp_path / "test.jsonl").write_text("\n".join([lines[0], bad, "{not json", lines[2]]) + "\n")
    shutil.copy(DATA / "gsm8k" / "train.jsonl", tmp_path)
    return tmp_path / "test.jsonl"


def test_malformed_row_reported_with_row_number(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"test\.jsonl row 2 \(line 2\): .*'#### <number>'.*skip"):
        get_benchmark("gsm8k").load(_bad_gsm8k(tmp_path))


def test_skip_bad_rows(tmp_path: Path) -> None:
    data = get_benchmark("gsm8k").load(_bad_gsm8k(tmp_path), skip_bad_rows=True)
    assert [i.answer for i in data.items] == ["18", "-5"]
    assert len(data.skipped) == 2
    assert "row 2" in data.skipped[0] and "row 3" in data.skipped[1]
    assert "not valid JSON" in data.skipped[1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"options": '["1", "2"]', "answer": "C"}, "must be a letter A-B"),
        ({"options": "not a list", "answer": "A"}, "JSON list"),
        ({"answer_index": "3"}, "disagrees"),
        ({"question": ""}, "'question' is empty"),
    ],
)
def test_mmlu_pro_malformed_rows(tmp_path: Path, row: dict[str, str], message: str) -> None:
    good = {
        "question_id": "1",
        "question": "What?",
        "options": '["1", "2", "3"]',
        "answer": "B",
        "answer_index": "1",
        "cot_content": "",
        "category": "math",
        "src": "x",
    }
    good.update(row)
    import csv

    with open(tmp_path / "test.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(good))
        writer.writeheader()
        writer.writerow(good)
    shutil.copy(DATA / "mmlu_pro" / "validation.jsonl", tmp_path)
    with pytest.raises(DataError, match=f"row 1.*{message}"):
        get_benchmark("mmlu-pro").load(tmp_path / "test.csv")


def test_tsv_wrong_field_count(tmp_path: Path) -> None:
    (tmp_path / "mgsm_de.tsv").write_text("Eine Frage?\t3\nZu viele\t4\t5\n", encoding="utf-8")
    shutil.copy(DATA / "mgsm" / "mgsm_de_train.jsonl", tmp_path)
    with pytest.raises(DataError, match=r"row 2 \(line 2\): has 3 fields, expected 2"):
        get_benchmark("mgsm-de").load(tmp_path / "mgsm_de.tsv")


def test_duplicate_ids_are_malformed(tmp_path: Path) -> None:
    row = (DATA / "popqa" / "test.tsv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "test.tsv").write_text("\n".join([row[0], row[1], row[1]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2.*duplicate id '4222362'"):
        get_benchmark("popqa").load(tmp_path / "test.tsv")


# ---------------------------------------------------------------------------------------------
# the Hub route (datasets.load_dataset), with the Hub replaced by in-memory datasets


def test_hub_loader_asks_for_the_right_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    calls = []
    rows = {
        "test": [json.loads(x) for x in (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()],
        "train": [json.loads(x) for x in (DATA / "gsm8k" / "train.jsonl").read_text().splitlines()],
    }

    def fake_load_dataset(*args: str, split: str) -> object:
        calls.append((args, split))
        return datasets.Dataset.from_list(rows[split])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = get_benchmark("gsm8k").load()
    assert calls == [(("openai/gsm8k", "main"), "test"), (("openai/gsm8k", "main"), "train")]
    assert [i.answer for i in data.items] == ["18", "1250", "-5"]
    assert data.source == "openai/gsm8k/main"


def test_hub_ceval_reads_every_humanities_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name: str, subject: str, split: str) -> object:
        calls.append((name, subject, split))
        n = 1 if split == "val" else 5
        return datasets.Dataset.from_list(
            [
                {"id": i, "question": f"{subject}?", "A": "a", "B": "b", "C": "c", "D": "d",
                 "answer": "D", "explanation": ""}
                for i in range(n)
            ]
        )  # fmt: skip

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = get_benchmark("ceval-humanities").load()
    assert {c[1] for c in calls} == set(CEVAL_HUMANITIES)
    assert {c[2] for c in calls} == {"val", "dev"}  # test answers are not public
    assert len(data.items) == 11


def test_hub_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'akariasai/PopQA' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"akariasai/PopQA.*Couldn't reach.*data_path"):
        get_benchmark("popqa").load()


# ---------------------------------------------------------------------------------------------
# the built-in sets (frozen JSONL in lirefs/builtin/)


def test_eval_sets_and_exemplars_have_the_promised_sizes() -> None:
    arith, arith_shots = load_eval("arithmetic")
    facts, fact_shots = load_eval("builtin-facts")
    assert len(arith) >= 150 and len(facts) >= 150
    assert len(arith_shots) == 8 and len(fact_shots) == 5
    assert {q.label for q in arith} == {"reasoning"} and {q.label for q in facts} == {"memory"}
    for shot in arith_shots:
        assert shot.solution.endswith(f"The final answer is {shot.answer}.")
    for shot in fact_shots:
        assert shot.solution.endswith(f"The answer is {shot.answer}.")


def test_load_eval_refuses_unknown_names() -> None:
    with pytest.raises(DataError, match="'gsm9k'"):
        load_eval("gsm9k")


# -- where the prompt ends and the answer begins ------------------------------------------------


def test_continuation_puts_one_space_at_the_join() -> None:
    from lirefs.evaluation.tasks.base import continuation

    assert continuation("Q: 2 + 2?\nA:", "The answer is 4.") == " The answer is 4."
    assert continuation("Q: 2 + 2?\nA: ", "The answer is 4.") == "The answer is 4."
    assert continuation("step by step.", " The answer is (B).") == " The answer is (B)."
    assert continuation("答案：让我们一步一步思考，\n", "所以答案是A。") == "所以答案是A。"
    assert continuation("<|im_start|>assistant\n", "The answer is 4.") == "The answer is 4."


@pytest.mark.parametrize("name", ["builtin-facts", "builtin-arithmetic"])
def test_plain_prompts_never_end_in_a_lone_space_token(name: str, tokenizer: Any) -> None:
    # the prompt and its scored gold continuation tokenize as the joined text does, the way
    # every exemplar's "A: The ..." is tokenized (":" then "ĠThe", never a lone "Ġ")
    from lirefs.evaluation.tasks.base import continuation

    data = get_benchmark(name).load()
    for item in data.items[:5]:
        prompt = data.prompt(item)
        assert prompt.endswith("\nA:"), prompt[-20:]
        gold = continuation(prompt, data.benchmark.gold_text(item))
        joint = tokenizer(prompt + gold, add_special_tokens=False).input_ids
        parts = tokenizer(prompt, add_special_tokens=False).input_ids
        parts += tokenizer(gold, add_special_tokens=False).input_ids
        assert joint == parts
        last = tokenizer(prompt, add_special_tokens=False).input_ids[-1]
        assert tokenizer.convert_ids_to_tokens(last) == ":"
