"""EvalConfig, typed records and trustworthy resume, per-group results, Holm, EvalResult.load.

A scripted engine (``evaluate(engine=...)``: outputs fixed per alpha and item) runs every
evaluation, so every number can be checked by hand.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import lirefs
from lirefs.errors import DataError, DirectionError, MetadataMismatchError
from lirefs.evaluation import EvalConfig, EvalResult, Record, RecordsError, holm
from lirefs.evaluation.run import stratified_order
from lirefs.evaluation.tasks import Item
from lirefs.models import ModelInfo

DATA = Path(__file__).parents[1] / "data"
GSM8K = DATA / "gsm8k"
INFO = ModelInfo(
    name="fake", source="wrapped", fingerprint="f" * 16, architecture="llama",
    n_layers=3, d_model=8, dtype="float32",
)  # fmt: skip
QUESTIONS = [json.loads(x)["question"] for x in (GSM8K / "test.jsonl").read_text().splitlines()]
# gold answers: 18, 1250, -5
SCRIPT = {
    0.0: ["The final answer is 18.", "The final answer is 1,250.", "I do not know."],
    0.1: ["The final answer is 18.", "The final answer is 7.", "The final answer is -5."],
    -0.1: ["???", "???", "???"],
}


def _question(prompt: str) -> str:
    return prompt.rsplit("Q: ", 1)[1].split("\nA:")[0]


@pytest.fixture
def fake_model() -> Any:
    # model_info reads lirefs_info; the llama model_type gives the steering plans their layout
    return SimpleNamespace(
        lirefs_info=INFO, _module=None, config=SimpleNamespace(model_type="llama")
    )


class ScriptedEngine:
    """An evaluation engine (``evaluate(engine=...)``). gsm8k: answers from SCRIPT; built-in
    arithmetic: the gold answer at alpha 0 and ``"???"`` otherwise. Gold log-prob:
    ``-(len(gold) + 10 alpha)``. ``calls``: the batch sizes of the generate calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gold_of = {
            i.question: i.answer
            for name in ("builtin-arithmetic", "builtin-ladder")
            for i in lirefs.get_benchmark(name).load().items
        }

    def run(self, prompts: list[str], plan: Any, *, max_new_tokens: int, stop: Any = None) -> Any:
        self.calls.append(len(prompts))
        texts = []
        for p in prompts:
            q = _question(p)
            if q in QUESTIONS:
                texts.append(SCRIPT[plan.alpha][QUESTIONS.index(q)])
            else:
                right = f"The final answer is {self.gold_of[q]}."
                texts.append(right if plan.alpha == 0.0 else "???")
        return SimpleNamespace(texts=texts, token_ids=[[7] * len(t) for t in texts])

    def gold_logprobs(self, prompts: list[str], plan: Any, golds: list[str]) -> list[float]:
        return [-(len(g) + 10.0 * plan.alpha) for g in golds]


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``lirefs.evaluate`` here (and the CLI's) runs with a ``ScriptedEngine``; returns its
    list of generate calls."""
    engine = ScriptedEngine()
    with_engine = functools.partial(lirefs.evaluate, engine=engine)
    for module in (lirefs, importlib.import_module("lirefs.evaluation")):
        monkeypatch.setattr(module, "evaluate", with_engine)
    return engine.calls


def _direction() -> lirefs.Direction:
    import torch

    torch.manual_seed(0)
    return lirefs.Direction.from_activations(
        torch.randn(4, 4, 8) + 1.0, torch.randn(5, 4, 8), model=INFO, settings={"best_layer": 2}
    )


def _run(model: Any, records: Path | None = None, **kw: Any) -> EvalResult:
    kw = {"direction": _direction(), "alphas": (0.0, 0.1), "data_path": GSM8K,
          "batch_size": 1, "progress": False, "records_path": records, **kw}  # fmt: skip
    return lirefs.evaluate(model, "gsm8k", **kw)


# ---------------------------------------------------------------------------------------------
# EvalConfig


def test_config_is_checked_once_and_normalised() -> None:
    cfg = EvalConfig(alphas=[0.1, -0.0], batch_size=None, limit=3)
    assert cfg.alphas == (0.1, 0.0) and cfg.batch_size == lirefs.steer.GENERATE_BATCH_SIZE
    assert cfg.steered_alphas == (0.1,)
    with pytest.raises(AttributeError):
        cfg.limit = 4  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"alphas": ()}, "alphas is empty"),
        ({"alphas": (0.1, 0.1)}, "more than once"),
        ({"alphas": (float("nan"),)}, "finite"),
        ({"mode": "push"}, "not one of"),
        ({"mode": "ablate", "alphas": (0.0, 0.5)}, "ambiguous"),
        ({"limit": 0}, "limit must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"n_boot": 1.5}, "n_boot must be a positive integer"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"system_prompt": "Be brief."}, "needs chat_template=True"),
        ({"thinking": "yes"}, "thinking must be"),
        ({"controls": -1}, "controls must be an int"),
        ({"controls": 2, "alphas": (0.0, 0.1)}, "pass direction= and at least one alpha"),
        ({"groups": ("steps-2", "steps-2")}, "groups .* more than once"),
        ({"groups": ("steps-2", " ")}, "groups must be non-empty texts"),
        ({"groups": 3}, "groups must be texts"),
    ],
)
def test_config_refuses_bad_values_with_a_fix(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        EvalConfig(**kw)


def test_config_and_keywords_give_the_same_run(fake_model: Any) -> None:
    direction = _direction()
    by_keywords = _run(fake_model, direction=direction)
    cfg = EvalConfig(direction=direction, alphas=(0.0, 0.1), data_path=GSM8K, batch_size=1,
                     progress=False)  # fmt: skip
    by_config = lirefs.evaluate(fake_model, "gsm8k", config=cfg)
    assert by_config.records == by_keywords.records
    assert by_config.accuracy == by_keywords.accuracy
    settings = {k: v for k, v in by_config.metadata["settings"].items()}
    assert settings == by_keywords.metadata["settings"]
    assert settings["alphas"] == [0.0, 0.1] and settings["batch_size"] == 1
    key = by_config.metadata["settings"]
    assert lirefs.evaluation.records.resume_key(key)["batch_size"] == 1
    with pytest.raises(DataError, match="config= was given together with limit"):
        lirefs.evaluate(fake_model, "gsm8k", config=cfg, limit=2)


def test_steered_alphas_without_direction_still_name_the_direction(fake_model: Any) -> None:
    with pytest.raises(DirectionError, match="no direction was given"):
        lirefs.evaluate(fake_model, "gsm8k", alphas=(0.0, 0.1), data_path=GSM8K)


# ---------------------------------------------------------------------------------------------
# records: typed, re-scored on resume, malformed lines refused


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _write(path: Path, lines: list[Any]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_record_round_trips_and_keeps_unknown_fields() -> None:
    d = {"alpha": 0.1, "index": 2, "id": "x", "prompt": "Q", "output": "The final answer is 3.",
         "extracted": "3", "correct": True, "newer_field": [1]}  # fmt: skip
    record = Record.from_dict(d)
    assert record.alpha == 0.1 and record.index == 2 and record.correct is True
    out = record.to_dict()
    assert out["newer_field"] == [1] and "thinking" not in out and "control" not in out
    assert Record.from_dict(out) == record


def test_a_forged_verdict_in_the_records_is_never_trusted(fake_model: Any, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    reference = _run(fake_model, records)
    lines = _lines(records)
    for line in lines[1:]:
        if line["alpha"] == 0.1 and line["index"] == 1:  # "The final answer is 7.", gold 1250
            assert line["correct"] is False
            line.update(correct=True, correct_flexible=True, extracted="1250",
                        extracted_flexible="1250")  # fmt: skip
    _write(records, lines)
    resumed = _run(fake_model, records)
    assert resumed.accuracy == reference.accuracy
    assert resumed.records == reference.records
    row = next(r for r in resumed.records if r["alpha"] == 0.1 and r["index"] == 1)
    assert row["correct"] is False and row["extracted"] == "7"
    # the rewritten file holds the re-derived verdict, not the forged one
    kept = [x for x in _lines(records)[1:] if x["alpha"] == 0.1 and x["index"] == 1]
    assert kept[-1]["correct"] is False


def test_an_older_record_without_flexible_reading_or_group_is_upgraded(
    fake_model: Any, tmp_path: Path
) -> None:
    records = tmp_path / "r.jsonl"
    reference = _run(fake_model, records)
    lines = _lines(records)
    for line in lines[1:]:
        for key in ("extracted_flexible", "correct_flexible", "degenerate", "degenerate_reasons"):
            line.pop(key)
    _write(records, lines)
    assert _run(fake_model, records).records == reference.records


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("output"), r"line 2 is not an evaluation record \(no output"),
        (lambda r: r.update(index=1.5), r"line 2: index 1.5 is not an integer"),
        (lambda r: r.update(index="0"), r"line 2: index '0' is not an integer"),
        (lambda r: r.update(alpha="x"), r"line 2: alpha 'x' is not a finite number"),
        (lambda r: r.update(output=None), r"line 2: output is NoneType, not text"),
        (lambda r: r.update(index=99), r"line 2: index 99 is outside the 3 items"),
    ],
)
def test_malformed_records_are_refused_naming_file_and_line(
    fake_model: Any, tmp_path: Path, change: Any, message: str
) -> None:
    records = tmp_path / "r.jsonl"
    _run(fake_model, records)
    lines = _lines(records)
    change(lines[1])
    _write(records, lines)
    with pytest.raises(RecordsError, match=message) as info:
        _run(fake_model, records)
    assert str(records) in str(info.value)


@pytest.mark.parametrize("header", [[1, 2], "text", {"format": "lirefs-eval-records/1",
                                                      "metadata": [1]}])  # fmt: skip
def test_a_header_that_is_not_an_object_is_refused(
    fake_model: Any, tmp_path: Path, header: Any
) -> None:
    records = tmp_path / "r.jsonl"
    _run(fake_model, records)
    lines = _lines(records)
    lines[0] = header
    _write(records, lines)
    with pytest.raises(MetadataMismatchError, match="not a lirefs evaluation records file") as e:
        _run(fake_model, records)
    assert str(records) in str(e.value)


# ---------------------------------------------------------------------------------------------
# Holm


def test_holm_against_a_hand_computed_example() -> None:
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_paired_tests_carry_raw_and_holm_p(fake_model: Any) -> None:
    res = _run(fake_model, alphas=(0.0, 0.1, -0.1))
    raw = {a: res.paired[a].p_value for a in (0.1, -0.1)}
    adjusted = holm([raw[0.1], raw[-0.1]])
    assert [res.paired[0.1].p_holm, res.paired[-0.1].p_holm] == pytest.approx(adjusted)
    # degeneration and gold log-prob are families of their own
    gold = [res.gold_logprob_paired[a].p_value for a in (0.1, -0.1)]
    assert [res.gold_logprob_paired[a].p_holm for a in (0.1, -0.1)] == pytest.approx(holm(gold))
    row = next(r for r in res.to_dict()["results"] if r["alpha"] == 0.1)
    assert row["paired"]["p_value"] == raw[0.1] and row["paired"]["p_holm"] == adjusted[0]
    survivors = res.holm_survivors()
    assert survivors == [
        f"gold log-prob {a:+g} vs 0 ({res.gold_logprob_paired[a].diff:+.2f} nats)"
        for a in (0.1, -0.1)
        if res.gold_logprob_paired[a].p_holm <= 0.05
    ]


def test_holm_spans_alphas_and_controls(fake_model: Any) -> None:
    res = _run(fake_model, alphas=(0.0, 0.1, -0.1), controls=2)
    tests = [res.paired[0.1], res.paired[-0.1]]
    tests += [
        res.vs_controls[a][n]["accuracy"] for a in (0.1, -0.1) for n in ("random-0", "random-1")
    ]
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.p_value for t in tests]))


# ---------------------------------------------------------------------------------------------
# groups


def test_every_group_is_in_a_limited_sample() -> None:
    sizes = {"tiny": 1, "big": 50, "mid": 3, "pair": 2}
    items = [Item(f"{g}-{i}", "q", "1", group=g) for g, n in sizes.items() for i in range(n)]
    for seed in range(20):
        order = stratified_order(items, seed)
        assert sorted(order) == list(range(len(items)))
        assert {items[i].group for i in order[: len(sizes)]} == set(sizes)
    # equal group sizes: the plain systematic order, every group before any second item
    even = [Item(f"{g}-{i}", "q", "1", group=g) for g in "abc" for i in range(4)]
    first = stratified_order(even, 1)[:3]
    assert {even[i].group for i in first} == {"a", "b", "c"}


def test_per_group_results_with_paired_tests(fake_model: Any) -> None:
    res = lirefs.evaluate(fake_model, "builtin-arithmetic", direction=_direction(),
                          alphas=(0.0, 0.1), limit=30, progress=False)  # fmt: skip
    groups = {r["group"] for r in res.records}
    assert len(groups) == 28  # every template of the built-in set, with a limit of 30
    assert set(res.by_group) == {0.0, 0.1} and set(res.by_group[0.1]) == groups
    assert sum(g.n for g in res.by_group[0.0].values()) == res.n_items == 30
    for alpha in (0.0, 0.1):
        for name, g in res.by_group[alpha].items():
            mine = [r["correct"] for r in res.records if r["alpha"] == alpha and r["group"] == name]
            assert g.n == len(mine) and g.accuracy == pytest.approx(sum(mine) / len(mine))
            assert g.ci == lirefs.evaluation.stats.clopper_pearson(sum(mine), len(mine))
    assert all(g.paired is None for g in res.by_group[0.0].values())
    tests = [g.paired for g in res.by_group[0.1].values()]
    assert all(t is not None and t.test == "mcnemar" for t in tests)
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.p_value for t in tests]))
    for name, g in res.by_group[0.1].items():
        base = res.by_group[0.0][name]
        assert g.paired.diff == pytest.approx(g.accuracy - base.accuracy)
        assert g.paired.n_lost == base.n_correct - g.n_correct  # alpha 0.1 answers "???"
    obj = res.to_dict()
    assert set(obj["by_group"]["0.1"]) == groups
    assert "by_group" not in _run(fake_model).to_dict()  # gsm8k has no groups


def test_groups_score_only_their_items_the_ones_an_all_group_sample_takes(fake_model: Any) -> None:
    kw = {"alphas": (0.0,), "progress": False, "batch_size": 4}
    every = lirefs.evaluate(fake_model, "builtin-ladder", limit=70, **kw)
    wanted = ("steps-2", "sum-2+1")
    mine = sorted(r["id"] for r in every.records if r["group"] in wanted)
    assert len(mine) == 20  # 70 items over the 7 rungs
    some = lirefs.evaluate(fake_model, "builtin-ladder", limit=20, groups=wanted, **kw)
    assert sorted(r["id"] for r in some.records) == mine
    assert set(some.by_group[0.0]) == set(wanted)
    settings = some.metadata["settings"]
    assert settings["groups"] == list(wanted) and settings["sample"]["groups"] == {
        "steps-2": 10, "sum-2+1": 10
    }  # fmt: skip
    assert every.metadata["settings"]["groups"] is None
    # without a limit: every item of the groups, in dataset order
    whole = lirefs.evaluate(fake_model, "builtin-ladder", groups=("sum-1+1",), **kw)
    ladder = lirefs.get_benchmark("builtin-ladder").load().items
    assert [r["id"] for r in sorted(whole.records, key=lambda r: r["index"])] == [
        i.id for i in ladder if i.group == "sum-1+1"
    ]


def test_unknown_groups_are_refused_naming_the_benchmarks_groups(fake_model: Any) -> None:
    with pytest.raises(DataError, match=r"no group 'steps-9'; its groups: steps-1, steps-2"):
        lirefs.evaluate(fake_model, "builtin-ladder", groups=("steps-1", "steps-9"), limit=7)
    with pytest.raises(DataError, match="gsm8k has no groups; leave groups out"):
        _run(fake_model, groups=("steps-1",))


def test_cli_prints_the_per_group_table_and_holm_line(
    fake_model: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    monkeypatch.setattr(
        importlib.import_module("lirefs.cli._common"), "load", lambda *a: fake_model
    )
    path = _direction().save(tmp_path / "liref.safetensors")
    res = CliRunner().invoke(main, ["evaluate", "-B", "builtin-arithmetic", "-d", str(path),
                                    "--limit", "30", "--alpha", "0,0.1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "per group (strict accuracy)" in text and "p_holm" in text
    assert "survive Holm correction at 0.05: accuracy +0.1 vs 0 (-100.0 points)" in text
    res = CliRunner().invoke(main, ["evaluate", "-B", "builtin-ladder", "--limit", "4", "--json",
                                    "--group", "steps-1,steps-2", "--group", "sum-1+1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert obj["metadata"]["settings"]["groups"] == ["steps-1", "steps-2", "sum-1+1"]
    res = CliRunner().invoke(main, ["evaluate", "-B", "builtin-ladder", "--group", "steps-0"])
    assert res.exit_code != 0 and "no group 'steps-0'; its groups:" in res.output


# ---------------------------------------------------------------------------------------------
# EvalResult.load


def test_load_reads_back_what_save_wrote(fake_model: Any, tmp_path: Path) -> None:
    res = lirefs.evaluate(fake_model, "builtin-arithmetic", direction=_direction(),
                          alphas=(0.0, 0.1), limit=6, controls=1, progress=False,
                          n_boot=200)  # fmt: skip
    folder = res.save(tmp_path / "eval")
    back = EvalResult.load(folder)
    assert back.to_dict(records=True) == json.loads(json.dumps(res.to_dict(records=True)))
    assert back.accuracy == res.accuracy and back.ci == res.ci
    assert back.flexible_accuracy == res.flexible_accuracy and back.flexible_ci == res.flexible_ci
    assert back.gold_logprob == res.gold_logprob and back.degenerate == res.degenerate
    assert back.paired == res.paired and back.by_group == res.by_group
    assert back.records == res.records and back.metadata == res.metadata
    assert back.vs_controls == res.vs_controls
    assert back.controls["random-0"].records == res.controls["random-0"].records
    assert back.controls["random-0"].accuracy == res.controls["random-0"].accuracy


def test_load_refuses_what_is_not_an_evaluation_result(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no result\.json"):
        EvalResult.load(tmp_path)
    (tmp_path / "result.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a lirefs evaluation result"):
        EvalResult.load(tmp_path)
    meta = lirefs.store.make_metadata("direction", model=None)
    (tmp_path / "result.json").write_text(json.dumps({"metadata": meta, "results": []}))
    with pytest.raises(DataError, match="holds a lirefs 'direction', not an evaluation"):
        EvalResult.load(tmp_path)
