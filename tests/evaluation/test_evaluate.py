"""lirefs.evaluation: scoring per alpha, bootstrap intervals, McNemar, layer choice, records, resume.

Most tests run ``evaluate`` with a scripted engine (``evaluate(engine=...)``: outputs fixed per alpha
and item), so the numbers can be checked by hand; the last test runs the real SmolLM2 model.
"""

from __future__ import annotations

import functools
import importlib
import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

import lirefs
from lirefs import evaluation as ev
from lirefs.errors import DataError, DirectionError, LayerError, MetadataMismatchError
from lirefs.evaluation.engines import FullPromptEngine
from lirefs.evaluation.run import stratified_order
from lirefs.evaluation.stats import clopper_pearson
from lirefs.models import ModelInfo

steer = importlib.import_module("lirefs.steer")


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


class ScriptedEngine:
    """An evaluation engine (``evaluate(engine=...)``): answers from ``SCRIPT`` (or ``answer(alpha,
    question)``), scores each gold text as ``-(len(gold) + 10 alpha)``, and can fail after N
    generate calls; every call is recorded."""

    def __init__(self, fail_after: int | None = None, answer: Any = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.gold_calls: list[dict[str, Any]] = []
        self.fail_after = fail_after
        self.answer = answer or (lambda alpha, q: SCRIPT[alpha][QUESTIONS.index(q)])

    def run(self, prompts: list[str], plan: Any, *, max_new_tokens: int, stop: Any = None) -> Any:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("interrupted")
        self.calls.append({
            "alpha": plan.alpha, "layer": plan.layer, "edits": plan.edits, "mode": plan.mode.name,
            "max_new_tokens": max_new_tokens, "stop": stop,
            "questions": [_question(p) for p in prompts], "prompts": list(prompts),
        })  # fmt: skip
        texts = [self.answer(plan.alpha, _question(p)) for p in prompts]
        return SimpleNamespace(texts=texts, token_ids=[[7] * len(t) for t in texts])

    def gold_logprobs(self, prompts: list[str], plan: Any, golds: list[str]) -> list[float]:
        self.gold_calls.append({"alpha": plan.alpha, "golds": list(golds)})
        return [-(len(g) + 10.0 * plan.alpha) for g in golds]


class RealGold(ScriptedEngine):
    """Scripted generation, real gold scoring (``FullPromptEngine``) on a real model."""

    def __init__(self, model: Any, answer: Any) -> None:
        super().__init__(answer=answer)
        self.real = FullPromptEngine(model, batch_size=64)

    def gold_logprobs(self, prompts: list[str], plan: Any, golds: list[str]) -> list[float]:
        return self.real.gold_logprobs(prompts, plan, golds)


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``inject(engine)``: ``lirefs.evaluate`` (and the CLI's, which imports it from
    ``lirefs.evaluation`` when it runs) run with ``engine=engine``."""
    real = lirefs.evaluate

    def use(engine: Any) -> Any:
        with_engine = functools.partial(real, engine=engine)
        for module in (lirefs, ev):
            monkeypatch.setattr(module, "evaluate", with_engine)
        return engine

    return use


@pytest.fixture
def fake_model() -> Any:
    # model_info reads lirefs_info; the llama model_type gives the steering plans their layout
    return SimpleNamespace(
        lirefs_info=INFO, _module=None, config=SimpleNamespace(model_type="llama")
    )


@pytest.fixture
def scripted(inject: Any) -> ScriptedEngine:
    return inject(ScriptedEngine())


@pytest.fixture
def scripted_any(inject: Any) -> Any:
    """On a real model: the answer ``The final answer is 1.`` to anything, real gold scoring."""

    def use(model: Any) -> ScriptedEngine:
        return inject(RealGold(model, lambda alpha, q: "The final answer is 1."))

    return use


def _direction(best_layer: int | None = 2) -> lirefs.Direction:
    torch.manual_seed(0)
    settings = {"best_layer": best_layer} if best_layer is not None else {}
    return lirefs.Direction.from_activations(
        torch.randn(4, 4, 8) + 1.0, torch.randn(5, 4, 8), model=INFO, settings=settings
    )


# ---------------------------------------------------------------------------------------------
# statistics against hand-computed values


@pytest.mark.parametrize(
    ("lost", "gained", "p"),
    [
        (0, 0, 1.0),
        (1, 5, 2 * (1 + 6) / 64),  # 0.21875
        (0, 6, 2 / 64),
        (3, 3, 1.0),
        (2, 10, 2 * (1 + 12 + 66) / 4096),
        (10, 2, 2 * (1 + 12 + 66) / 4096),
    ],
)
def test_mcnemar_exact(lost: int, gained: int, p: float) -> None:
    assert ev.mcnemar_exact(lost, gained) == pytest.approx(p, abs=1e-15)


def test_bootstrap_ci_matches_exact_binomial_quantiles() -> None:
    # 5 of 10 correct: the bootstrap mean is Binomial(10, 0.5) / 10. P(X <= 1) = 1.07%,
    # P(X <= 2) = 5.47%, P(X <= 7) = 94.5%, P(X <= 8) = 98.9%: the 2.5% and 97.5% points are 0.2, 0.8.
    assert ev.bootstrap_ci([1] * 5 + [0] * 5, n_boot=20000, seed=1) == (0.2, 0.8)


def test_bootstrap_ci_degenerate_is_exact_and_seeded() -> None:
    # 0/24 and 24/24: the bootstrap has no spread; Clopper-Pearson gives 1 - 0.025^(1/24) = 14.2%
    low, high = ev.bootstrap_ci([0] * 24)
    assert low == 0.0 and high == pytest.approx(0.14247, abs=1e-5)
    low, high = ev.bootstrap_ci([1] * 24)
    assert high == 1.0 and low == pytest.approx(1 - 0.14247, abs=1e-5)
    assert ev.bootstrap_ci([0]) == (0.0, 0.975)
    x = np.random.default_rng(0).integers(0, 2, 50)
    assert ev.bootstrap_ci(x, seed=3) == ev.bootstrap_ci(x, seed=3)
    low, high = ev.bootstrap_ci(x, seed=3)
    assert low < x.mean() < high


def test_bootstrap_ci_width_near_normal_approximation() -> None:
    x = np.array([1, 0] * 200)  # p = 0.5, n = 400: 95% width ~ 2 * 1.96 * 0.025 = 0.098
    low, high = ev.bootstrap_ci(x, n_boot=4000, seed=0)
    assert 0.085 < high - low < 0.11


def test_paired_bootstrap_ci() -> None:
    a = [1, 0, 1, 1, 0]
    # no item changes: [-u, u] with u the exact upper limit of 0 discordant items out of 5
    from scipy.stats import binomtest

    u = binomtest(0, 5).proportion_ci(confidence_level=0.95, method="exact").high
    assert ev.paired_bootstrap_ci(a, a) == pytest.approx((-u, u), abs=1e-12)
    # 3 of 3 items better: exact conditional interval (1)(2 [CP of 3/3] - 1), which holds 0
    # (McNemar p = 0.25), where a bootstrap gave the single point [1, 1]
    cp = binomtest(3, 3).proportion_ci(confidence_level=0.95, method="exact")
    low, high = ev.paired_bootstrap_ci([1, 1, 1], [0, 0, 0])
    assert (low, high) == pytest.approx((2 * cp.low - 1, 1.0)) and low < 0
    with pytest.raises(DataError, match="one length"):
        ev.paired_bootstrap_ci([1, 0], [1])


# ---------------------------------------------------------------------------------------------
# evaluate with scripted outputs


def test_accuracy_no_answer_and_paired(fake_model: Any, scripted: ScriptedEngine) -> None:
    res = lirefs.evaluate(
        fake_model, "gsm8k", data_path=GSM8K, direction=_direction(), alphas=(0.0, 0.1, -0.1)
    )
    assert res.n_items == 3 and res.alphas == [0.0, 0.1, -0.1]
    assert res.accuracy == pytest.approx({0.0: 2 / 3, 0.1: 2 / 3, -0.1: 0.0})
    assert res.no_answer_rate == pytest.approx({0.0: 1 / 3, 0.1: 0.0, -0.1: 1.0})
    up, down = res.paired[0.1], res.paired[-0.1]
    assert (up.diff, up.n_gained, up.n_lost, up.p_value) == (0.0, 1, 1, 1.0)
    assert down.diff == pytest.approx(-2 / 3)
    assert (down.n_gained, down.n_lost, down.p_value) == (0, 2, 0.5)
    assert 0.0 not in res.paired
    assert res.ci[-0.1] == (0.0, pytest.approx(1 - 0.025 ** (1 / 3)))  # 0/3: [0, 70.8%]
    # single accuracies: the exact Clopper-Pearson interval (scipy's binomtest as reference)
    from scipy.stats import binomtest

    exact = binomtest(2, 3).proportion_ci(confidence_level=0.95, method="exact")
    assert res.ci[0.1] == (pytest.approx(exact.low), pytest.approx(exact.high))
    # paired differences: every alpha uses the same resamples, as the standalone function does
    correct = {a: [r["correct"] for r in res.records if r["alpha"] == a] for a in res.alphas}
    assert down.ci == ev.paired_bootstrap_ci(correct[-0.1], correct[0.0], n_boot=2000, seed=0)


def test_records(fake_model: Any, scripted: ScriptedEngine) -> None:
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(),
                          alphas=(0.0, 0.1))  # fmt: skip
    assert [(r["alpha"], r["index"]) for r in res.records] == [
        (0.0, 0), (0.0, 1), (0.0, 2), (0.1, 0), (0.1, 1), (0.1, 2),
    ]  # fmt: skip
    first, third = res.records[1], res.records[2]
    assert first["output"] == "The final answer is 1,250."
    assert (first["extracted"], first["gold"], first["correct"]) == ("1250", "1250", True)
    assert (third["extracted"], third["correct"]) == (None, False)
    assert res.records[4]["extracted"] == "7" and res.records[4]["correct"] is False
    assert {"id", "output", "batch", "n_tokens"} <= set(first)


def test_a_stop_string_no_output_reached_warns_once_and_keeps_the_texts(
    fake_model: Any, scripted: ScriptedEngine
) -> None:
    kw = {"data_path": GSM8K, "direction": _direction(), "alphas": (0.0, 0.1), "batch_size": 1}
    # the scripted rows are one token a character: a budget of 20 is reached by most of them
    with pytest.warns(steer.StopStringWarning) as caught:
        res = lirefs.evaluate(fake_model, "gsm8k", max_new_tokens=20, **kw)
    lines = [str(w.message) for w in caught if w.category is steer.StopStringWarning]
    assert len(lines) == 1, lines  # one line for the run, not one per batch
    assert "'\\nQ:'" in lines[0] and "none of the 6 gsm8k outputs" in lines[0]
    assert "budget of 20" in lines[0]
    assert res.records[1]["output"] == "The final answer is 1,250."  # nothing cut or lost
    with warnings.catch_warnings():
        warnings.simplefilter("error", steer.StopStringWarning)
        lirefs.evaluate(fake_model, "gsm8k", max_new_tokens=64, **kw)  # no row ran to the budget


def test_generate_calls(fake_model: Any, scripted: ScriptedEngine) -> None:
    liref = _direction()
    lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=liref, alphas=(0.0, 0.1),
                    batch_size=2, max_new_tokens=33)  # fmt: skip
    calls = [(c["alpha"], len(c["questions"]), c["layer"], c["edits"])
             for c in scripted.calls]  # fmt: skip
    # alpha 0 is plain greedy generation: no direction, no layer
    assert calls == [(0.0, 2, None, False), (0.0, 1, None, False),
                     (0.1, 2, 2, True), (0.1, 1, 2, True)]  # fmt: skip
    assert all(c["max_new_tokens"] == 33 for c in scripted.calls)
    assert scripted.calls[2]["mode"] == "project"


def test_ablate_mode(fake_model: Any, inject: Any) -> None:
    gen = inject(ScriptedEngine(answer=lambda a, q: SCRIPT[{0.0: 0.0, -1.0: -0.1}[a]][
        QUESTIONS.index(q)]))  # fmt: skip
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(),
                          alphas=(0.0, -1.0), mode="ablate")  # fmt: skip
    assert [c["mode"] for c in gen.calls] == ["project", "ablate"]  # alpha 0: no edit
    assert [c["edits"] for c in gen.calls] == [False, True]
    assert res.accuracy == {0.0: pytest.approx(2 / 3), -1.0: 0.0}


def test_skipped_rows_are_recorded(
    fake_model: Any, scripted: ScriptedEngine, tmp_path: Path
) -> None:
    lines = (GSM8K / "test.jsonl").read_text().splitlines()
    (tmp_path / "test.jsonl").write_text("\n".join([*lines, '{"question": "x?"}']) + "\n")
    shutil.copy(GSM8K / "train.jsonl", tmp_path)
    with pytest.raises(DataError, match="row 4"):
        lirefs.evaluate(fake_model, "gsm8k", data_path=tmp_path)
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=tmp_path, skip_bad_rows=True)
    assert res.n_items == 3
    [skipped] = res.metadata["data"]["skipped_rows"]
    assert "row 4" in skipped and "'answer' is missing" in skipped


def test_limit_and_default_max_new_tokens(fake_model: Any, scripted: ScriptedEngine) -> None:
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, limit=2)
    assert res.n_items == 2
    ids = [r["id"] for r in res.records]
    assert len(set(ids)) == 2 and set(ids) <= {"0", "1", "2"}
    gold = {"0": True, "1": True, "2": False}  # SCRIPT at alpha 0 answers items 0 and 1 right
    assert res.accuracy[0.0] == pytest.approx(sum(gold[i] for i in ids) / 2)
    assert scripted.calls[0]["max_new_tokens"] == 200  # the benchmark's default length
    assert res.paired == {}
    assert res.metadata["settings"]["limit"] == 2
    assert res.metadata["settings"]["sample"]["seed"] == 0


def test_metadata(fake_model: Any, scripted: ScriptedEngine) -> None:
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(),
                          alphas=(0.0, 0.1))  # fmt: skip
    meta = res.metadata
    assert meta["kind"] == "evaluation" and meta["model"]["fingerprint"] == "f" * 16
    assert meta["data"]["benchmark"] == "gsm8k" and len(meta["data"]["hash"]) == 16
    s = meta["settings"]
    assert (s["alphas"], s["layer"], s["mode"], s["max_new_tokens"]) == (
        [0.0, 0.1],
        2,
        "project",
        200,
    )
    assert s["layer_source"] == "chosen on the direction's held-out split"
    assert s["direction"]["best_layer"] == 2 and s["direction"]["n_reasoning"] == 4
    json.dumps(res.to_dict(records=True))  # JSON-ready


# ---------------------------------------------------------------------------------------------
# layer choice and argument errors


def test_layer_given_by_user(fake_model: Any, scripted: ScriptedEngine) -> None:
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(),
                          layer=1, alphas=(0.1,))  # fmt: skip
    assert res.layer == 1 and res.layer_source == "given by the user"
    assert scripted.calls[0]["layer"] == 1


def test_direction_without_chosen_layer_needs_layer(fake_model: Any, scripted: Any) -> None:
    with pytest.raises(LayerError, match=r"no chosen layer.*--layer"):
        lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(None),
                        alphas=(0.1,))  # fmt: skip


def test_direction_file_is_loaded_and_checked(
    fake_model: Any, scripted: Any, tmp_path: Path
) -> None:
    path = _direction().save(tmp_path / "liref.safetensors")
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=path, alphas=(0.1,))
    assert res.metadata["settings"]["direction"]["path"] == str(path)
    other = SimpleNamespace(
        lirefs_info=ModelInfo(**{**INFO.to_dict(), "fingerprint": "0" * 16}), _module=None
    )
    with pytest.raises(MetadataMismatchError, match="fingerprint"):
        lirefs.evaluate(other, "gsm8k", data_path=GSM8K, direction=path, alphas=(0.1,))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0}, DataError, "limit must be a positive integer, got 0"),
        ({"limit": -3}, DataError, "limit must be a positive integer, got -3"),
        ({"alphas": (0.1,)}, DirectionError, r"no direction was given.*--direction"),
        ({"alphas": ()}, DataError, "alphas is empty"),
        ({"alphas": (0.1, 0.1), "direction": "D"}, DataError, "more than once"),
        ({"alphas": (float("nan"),)}, DataError, "finite"),
        ({"mode": "scale"}, DataError, "mode 'scale' is not one of"),
        ({"mode": "ablate", "alphas": (0.0, 0.1), "direction": "D"}, DataError, "ambiguous"),
        ({"layer": 1}, LayerError, "without a direction"),
        ({"layer": 9, "direction": "D", "alphas": (0.1,)}, LayerError, "out of range"),
        ({"batch_size": 0}, DataError, "batch_size must be a positive integer"),
    ],
)
def test_argument_errors(
    fake_model: Any, scripted: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    if kwargs.get("direction") == "D":
        kwargs = {**kwargs, "direction": _direction()}
    with pytest.raises(error, match=message):
        lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, **kwargs)
    assert scripted.calls == []


def test_unknown_benchmark(fake_model: Any) -> None:
    with pytest.raises(DataError, match="known benchmarks: builtin-arithmetic"):
        lirefs.evaluate(fake_model, "gsm-8k")


# ---------------------------------------------------------------------------------------------
# records file: save, resume


def _run(model: Any, records: Path | None, **kw: Any) -> Any:
    kw.setdefault("alphas", (0.0, 0.1))
    kw.setdefault("batch_size", 1)
    return lirefs.evaluate(model, "gsm8k", data_path=GSM8K, direction=_direction(),
                           records_path=records, **kw)  # fmt: skip


def test_resume_after_interruption_gives_same_records(
    fake_model: Any, inject: Any, tmp_path: Path
) -> None:
    fresh = inject(ScriptedEngine())
    reference = _run(fake_model, None)
    assert len(fresh.calls) == 6

    records = tmp_path / "records.jsonl"
    inject(ScriptedEngine(fail_after=4))
    with pytest.raises(RuntimeError, match="interrupted"):
        _run(fake_model, records)
    lines = records.read_text().splitlines()
    assert json.loads(lines[0])["format"] == ev.RECORDS_FORMAT and len(lines) == 1 + 4

    rest = inject(ScriptedEngine())
    resumed = _run(fake_model, records)
    assert [(c["alpha"], c["questions"]) for c in rest.calls] == [
        (0.1, [QUESTIONS[1]]), (0.1, [QUESTIONS[2]])
    ]  # fmt: skip
    assert resumed.records == reference.records
    assert resumed.accuracy == reference.accuracy and resumed.ci == reference.ci

    again = inject(ScriptedEngine())
    assert _run(fake_model, records).records == reference.records
    assert again.calls == []  # everything was on disk


def test_resume_with_larger_limit(fake_model: Any, inject: Any, tmp_path: Path) -> None:
    inject(ScriptedEngine())
    reference = _run(fake_model, None, batch_size=2, limit=3)
    records = tmp_path / "r.jsonl"
    _run(fake_model, records, batch_size=2, limit=2)
    rest = inject(ScriptedEngine())
    resumed = _run(fake_model, records, batch_size=2, limit=3)  # the sample of 2, extended
    assert [len(c["questions"]) for c in rest.calls] == [1, 1]  # only the missing batch [2, 3)
    assert resumed.records == reference.records


def test_resume_drops_a_line_cut_short(fake_model: Any, scripted: Any, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    reference = _run(fake_model, records)
    text = records.read_text()
    records.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + '{"alpha": 0.1, "ind')
    n_before = len(scripted.calls)
    resumed = _run(fake_model, records)
    assert len(scripted.calls) == n_before + 1  # only the lost batch again
    assert resumed.records == reference.records
    assert all(json.loads(line) for line in records.read_text().splitlines())


def test_resume_with_an_extra_alpha_and_a_moved_direction_file(
    fake_model: Any, scripted: ScriptedEngine, tmp_path: Path
) -> None:
    first = _direction().save(tmp_path / "a.safetensors")
    records = tmp_path / "r.jsonl"
    lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=first, alphas=(0.0,),
                    records_path=records)  # fmt: skip
    n = len(scripted.calls)
    moved = Path(shutil.copy(first, tmp_path / "b.safetensors"))
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=moved,
                          alphas=(0.0, -0.1), records_path=records)  # fmt: skip
    assert [c["alpha"] for c in scripted.calls[n:]] == [-0.1]  # alpha 0 came from the file
    assert res.accuracy == {0.0: pytest.approx(2 / 3), -0.1: 0.0}


def test_records_held_by_another_run_are_refused_and_released_after(
    fake_model: Any, scripted: Any, tmp_path: Path
) -> None:
    from lirefs.errors import LockError
    from lirefs.store import lock

    records = tmp_path / "r.jsonl"
    with lock(records), pytest.raises(LockError, match=r"another run .* holds the lock"):
        _run(fake_model, records)  # the lock stands for a second process on the same records
    assert not records.exists() and scripted.calls == []
    _run(fake_model, records)  # free again: a finished or failed run releases it
    with pytest.raises(MetadataMismatchError):
        _run(fake_model, records, max_new_tokens=50)
    _run(fake_model, records)  # a run refused after taking the lock released it too


def test_resume_refuses_other_settings(fake_model: Any, scripted: Any, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    _run(fake_model, records)
    with pytest.raises(MetadataMismatchError, match=r"max_new_tokens=200.*max_new_tokens=50"):
        _run(fake_model, records, max_new_tokens=50)
    with pytest.raises(MetadataMismatchError, match="layer=2, now layer=1"):
        _run(fake_model, records, layer=1)
    other = SimpleNamespace(
        lirefs_info=ModelInfo(**{**INFO.to_dict(), "fingerprint": "0" * 16}), _module=None
    )
    with pytest.raises(MetadataMismatchError, match="fingerprint"):
        lirefs.evaluate(other, "gsm8k", data_path=GSM8K, batch_size=1, records_path=records)
    (tmp_path / "x.jsonl").write_text('{"something": 1}\n')
    with pytest.raises(MetadataMismatchError, match="not a lirefs evaluation records file"):
        _run(fake_model, tmp_path / "x.jsonl")


def test_save(fake_model: Any, scripted: ScriptedEngine, tmp_path: Path) -> None:
    res = _run(fake_model, None)
    folder = res.save(tmp_path / "out")
    saved = json.loads((folder / "result.json").read_text())
    assert saved["benchmark"] == "gsm8k" and saved["alphas"] == [0.0, 0.1]
    assert saved["results"][0]["accuracy"] == pytest.approx(2 / 3)
    assert saved["results"][1]["paired"]["n_gained"] == 1
    lines = (folder / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 6
    # the saved records resume: nothing is generated again
    n = len(scripted.calls)
    assert _run(fake_model, folder / "records.jsonl").records == res.records
    assert len(scripted.calls) == n


# ---------------------------------------------------------------------------------------------
# end to end on the real model


@pytest.mark.slow
def test_end_to_end_smollm2(smollm2: Any) -> None:
    sets = lirefs.data.load("builtin")
    r = lirefs.collect_activations(smollm2, sets.reasoning_prompts()[:2], batch_size=2)
    m = lirefs.collect_activations(smollm2, sets.memory_prompts()[:2], batch_size=2)
    liref = lirefs.Direction.from_activations(r, m, model=smollm2, settings={"best_layer": 15})
    # 8-shot prompts are about 700 tokens: keep the run to 2 items and 8 new tokens
    res = lirefs.evaluate(smollm2, "builtin-arithmetic", direction=liref, alphas=(0.0, 0.1),
                          limit=2, max_new_tokens=8, batch_size=2)  # fmt: skip
    assert res.layer == 15 and res.layer_source == "chosen on the direction's held-out split"
    # --limit takes the seeded stratified sample (seed 0), the same items for every alpha
    data = lirefs.get_benchmark("builtin-arithmetic").load()
    sample = stratified_order(data.items, 0)[:2]
    assert sorted((r["alpha"], r["index"]) for r in res.records) == sorted(
        (alpha, i) for alpha in (0.0, 0.1) for i in sample
    )
    assert set(res.accuracy) == {0.0, 0.1} and all(0 <= a <= 1 for a in res.accuracy.values())
    assert 0.1 in res.paired
    # alpha 0 (through the shared-prefix path) is exactly plain greedy generation of the prompts
    prompts = [data.prompt(data.items[i]) for i in sample]
    plain = lirefs.generate(smollm2, prompts, max_new_tokens=8, batch_size=2)
    unsteered = {r["index"]: r["output"] for r in res.records if r["alpha"] == 0.0}
    assert [unsteered[i] for i in sample] == plain.texts
    for record in res.records:
        extracted = record["extracted"]
        assert record["correct"] == (extracted is not None and extracted == record["gold"])


# ---------------------------------------------------------------------------------------------
# command line


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, fake_model: Any, scripted: ScriptedEngine) -> Any:
    from click.testing import CliRunner

    from lirefs.cli import main

    # every command loads its model through lirefs.cli._common.load
    common = importlib.import_module("lirefs.cli._common")
    monkeypatch.setattr(common, "load", lambda *args: fake_model)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["evaluate", *args])


def test_cli_help_has_example(cli: Any) -> None:
    res = cli("--help")
    assert res.exit_code == 0
    assert "lirefs evaluate --benchmark builtin-arithmetic" in res.output
    assert "--paper-alphas" in res.output


def test_cli_writes_result_records_and_plot(cli: Any, tmp_path: Path) -> None:
    path = _direction().save(tmp_path / "liref.safetensors")
    out = tmp_path / "eval"
    res = cli("-B", "gsm8k", "--data-path", str(GSM8K), "-d", str(path), "--alpha", "0,0.1",
              "--alpha", "-0.1", "--out", str(out), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["alphas"] == [-0.1, 0.0, 0.1]
    assert [r["accuracy"] for r in payload["results"]] == pytest.approx([0.0, 2 / 3, 2 / 3])
    assert (out / "result.json").is_file() and (out / "records.jsonl").is_file()
    pytest.importorskip("matplotlib")
    assert (out / "accuracy_vs_alpha.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_table(cli: Any, tmp_path: Path) -> None:
    path = _direction().save(tmp_path / "liref.safetensors")
    res = cli("-B", "gsm8k", "--data-path", str(GSM8K), "-d", str(path))
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "95% CI" in text and "McNemar" in text
    # alpha, acc, exact CI of 2/3, flexible acc and CI, no answer, paired diff + its exact
    # conditional CI (1 of 2 changed items better: (2/3)(2 [CP of 1/2] - 1)), p, Holm p,
    # degen, (1+a)^L
    assert "+0.1 66.7 [9.4,99.2] 66.7 [9.4,99.2] 0.0 +0.0 [-65.0,+65.0] 1 1 0.0 1.33" in text
    assert "survive Holm correction at 0.05: none" in text
    # gsm8k shows working: its outcome is the answer log-prob after the model's own working
    # (the scripted scorer gives -(len(answer) + 10 alpha)); alpha 0's third output ("I do not
    # know.") never reaches the marker: missing, and left out of the paired difference
    assert "gold-answer log-probability" not in text
    assert "answer log-probability" in text
    assert "+0 -5.00" in text and "-1.00 (n=2)" in text


def test_cli_controls_table_json_and_dose_plot(
    cli: Any, scripted: ScriptedEngine, tmp_path: Path
) -> None:
    path = _direction().save(tmp_path / "liref.safetensors")
    args = ["-B", "gsm8k", "--data-path", str(GSM8K), "-d", str(path), "--alpha", "0,0.1"]
    res = cli(*args, "--controls", "1")
    assert res.exit_code == 0, res.output
    assert "real direction vs controls" in res.output and "random-0" in res.output
    assert [c["alpha"] for c in scripted.calls] == [0.0, 0.1, 0.1]  # alpha 0 once
    res = cli(*args, "--controls", "1", "--json", "--plot", "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    row = payload["results"][1]
    assert row["alpha"] == 0.1 and set(row["controls"]) == {"random-0"}
    assert row["controls"]["random-0"]["real_minus_control"]["accuracy"]["diff"] == 0.0
    assert payload["controls"]["random-0"]["kind"] == "random"
    pytest.importorskip("matplotlib")
    assert (tmp_path / "o" / "dose_response.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_without_matplotlib(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_matplotlib(self: Any, path: Any) -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(ev.EvalResult, "plot", no_matplotlib)
    res = cli("-B", "gsm8k", "--data-path", str(GSM8K), "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    assert "matplotlib is not installed" in res.output
    assert (tmp_path / "o" / "result.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-B", "gsm9k"], "unknown benchmark 'gsm9k'"),
        (["-B", "gsm8k", "--data-path", str(GSM8K), "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
        (["-B", "gsm8k", "--data-path", str(GSM8K), "--alpha", "0.1"], "no direction was given"),
        (["-B", "gsm8k", "--alpha", "x"], "'x' is not a number"),
        ([], "--benchmark is required"),
    ],
)
def test_cli_errors(cli: Any, args: list[str], message: str) -> None:
    res = cli(*args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())


def test_paper_alphas() -> None:
    cli_module = importlib.import_module("lirefs.cli.evaluate")
    got = cli_module.parse_alphas((), True, True)
    assert got == [-1.0, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15]
    assert cli_module.parse_alphas(("0.2, 0",), True, True)[-1] == 0.2
    assert cli_module.parse_alphas((), False, True) == [0.0, 0.1]
    assert cli_module.parse_alphas((), False, False) == [0.0]


def test_cli_list_benchmarks(cli: Any) -> None:
    res = cli("--list-benchmarks")
    assert res.exit_code == 0 and "mgsm-zh" in res.output and "openai/gsm8k" in res.output


# ---------------------------------------------------------------------------------------------
# issue 13: statistics, sample, lm-eval layout, chat and thinking prompts


def test_mcnemar_matches_the_binomial_sum_at_popqa_size() -> None:
    import math

    for lost, gained in [(500, 530), (7000, 7100), (0, 40)]:
        n, k = lost + gained, min(lost, gained)
        exact = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
        assert ev.mcnemar_exact(lost, gained) == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_clopper_pearson_against_closed_forms() -> None:
    from lirefs.evaluation.stats import clopper_pearson

    low, high = clopper_pearson(0, 24)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 24))
    low, high = clopper_pearson(24, 24)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 24))
    # 1 of 2: low solves P(X >= 1) = 1 - (1 - p)^2 = 0.025, high solves p^2 = 0.975... mirrored
    low, high = clopper_pearson(1, 2)
    assert low == pytest.approx(1 - 0.975**0.5) and high == pytest.approx(0.975**0.5)


def test_paired_interval_is_exact_when_no_item_changes(fake_model: Any, inject: Any) -> None:
    inject(ScriptedEngine(answer=lambda a, q: SCRIPT[0.0][QUESTIONS.index(q)]))
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=_direction(),
                          alphas=(0.0, 0.1))  # fmt: skip
    u = 1 - 0.025 ** (1 / 3)
    assert res.paired[0.1].diff == 0.0
    assert res.paired[0.1].ci == (pytest.approx(-u), pytest.approx(u))


def test_flexible_accuracy_and_records(fake_model: Any, inject: Any) -> None:
    outputs = ["So 18.", "The final answer is 1,250.", "\\boxed{-5}"]
    inject(ScriptedEngine(answer=lambda a, q: outputs[QUESTIONS.index(q)]))
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K)
    assert res.accuracy[0.0] == pytest.approx(1 / 3)
    assert res.flexible_accuracy[0.0] == 1.0
    first = res.records[0]
    assert (first["extracted"], first["extracted_flexible"]) == (None, "18")
    assert first["prompt"].endswith(f"Q: {QUESTIONS[0]}\nA:")
    assert {"alpha", "id", "prompt", "output", "extracted", "extracted_flexible", "correct"} <= set(
        first
    )


def test_limit_sample_is_seeded_and_stratified() -> None:
    from lirefs.evaluation.tasks import Item

    items = [Item(id=str(i), question="q", answer="1", group="ab"[i % 4 == 0]) for i in range(40)]
    first = stratified_order(items, seed=3)
    assert first == stratified_order(items, seed=3) and sorted(first) == list(range(40))
    assert first != stratified_order(items, seed=4)
    for n in (4, 10, 20):  # group "b" holds a quarter of the items: a quarter of every prefix
        n_b = sum(items[i].group == "b" for i in first[:n])
        assert abs(n_b - n / 4) <= 1


def test_rerun_with_fewer_alphas_keeps_finished_records(
    cli: Any, scripted: ScriptedEngine, tmp_path: Path
) -> None:
    path = _direction().save(tmp_path / "liref.safetensors")
    out = tmp_path / "eval"
    base = ["-B", "gsm8k", "--data-path", str(GSM8K), "-d", str(path), "--out", str(out)]
    assert cli(*base, "--alpha", "0,0.1,-0.1").exit_code == 0
    assert cli(*base, "--alpha", "0").exit_code == 0
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 9  # the -0.1 and 0.1 records are still there


def test_lm_eval_layout(fake_model: Any, scripted: ScriptedEngine, tmp_path: Path) -> None:
    res = _run(fake_model, None)
    res.save(tmp_path / "out")
    files = [str(p) for p in (tmp_path / "out" / "lm_eval").rglob("*.json*")]
    (results_file,) = [f for f in files if "/results_" in f]  # lm-eval's own file names
    results = json.loads(Path(results_file).read_text())
    task = results["results"]["gsm8k_alpha+0.1"]
    strict = np.array([1.0, 0.0, 1.0])  # alpha 0.1 outcomes from SCRIPT
    assert task["exact_match,strict-match"] == pytest.approx(2 / 3)
    assert task["exact_match_stderr,strict-match"] == pytest.approx(strict.std(ddof=1) / np.sqrt(3))
    assert task["exact_match,flexible-extract"] == pytest.approx(2 / 3)
    (samples,) = [f for f in files if "/samples_gsm8k_alpha+0.1_" in f]
    first = json.loads(Path(samples).read_text().splitlines()[0])
    assert first["arguments"]["gen_args_0"]["arg_0"].endswith("\nA:") and first["target"] == "18"


def test_system_prompt_needs_chat_template(fake_model: Any, scripted: Any) -> None:
    with pytest.raises(DataError, match="system_prompt needs chat_template"):
        lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, system_prompt="Be brief.")


def test_chat_template_without_template_is_one_clear_error(make_tiny: Any) -> None:
    model = make_tiny("llama")
    saved = model.tokenizer.chat_template
    model.tokenizer.chat_template = None
    try:
        with pytest.raises(DataError, match="has no chat template"):
            lirefs.evaluate(model, "builtin-arithmetic", chat_template=True, limit=1)
    finally:
        model.tokenizer.chat_template = saved


def test_chat_template_prompts_are_multi_turn(make_tiny: Any, scripted_any: Any) -> None:
    model = make_tiny("llama")
    scripted_any(model)
    res = lirefs.evaluate(model, "builtin-arithmetic", chat_template=True, system_prompt="Sys.",
                          limit=2, max_new_tokens=4)  # fmt: skip
    data = lirefs.get_benchmark("builtin-arithmetic").load()
    item = next(i for i in data.items if i.id == res.records[0]["id"])
    parts = data.parts(item)
    messages = parts.messages("Sys.")
    reference = model.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert [m["role"] for m in messages[:3]] == ["system", "user", "assistant"]
    assert len(messages) == 2 + 2 * len(parts.shots)
    assert res.records[0]["prompt"] in (
        reference,
        reference.removeprefix(model.tokenizer.bos_token or ""),
    )
    assert res.metadata["settings"]["prompt_format"] == "chat_template"


def test_thinking_reads_after_the_think_block(fake_model: Any, inject: Any) -> None:
    outputs = ["x is 3, so 18</think>The final answer is 18.", "I keep thinking 1,250", "7</think>"]
    engine = inject(ScriptedEngine(answer=lambda a, q: outputs[QUESTIONS.index(q)]))
    res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, thinking=True)
    r = res.records
    assert (r[0]["extracted"], r[0]["thinking"], r[0]["output"]) == (
        "18", "x is 3, so 18", "The final answer is 18."
    )  # fmt: skip
    assert (r[1]["extracted"], r[1]["extracted_flexible"], r[1]["think_closed"]) == (
        None, None, False
    )  # fmt: skip
    assert res.metadata["settings"]["max_new_tokens"] == 4096  # the thinking budget
    assert engine.calls[0]["stop"] is None  # a think block may hold "\nQ:": no stop string


def test_direction_format_mismatch_warns(fake_model: Any, scripted: Any) -> None:
    torch.manual_seed(0)
    liref = lirefs.Direction.from_activations(
        torch.randn(4, 4, 8) + 1.0, torch.randn(5, 4, 8), model=INFO,
        settings={"best_layer": 2, "prompt_format": "chat_template"},
    )  # fmt: skip
    with pytest.warns(UserWarning, match="built from 'chat_template' prompts"):
        res = lirefs.evaluate(fake_model, "gsm8k", data_path=GSM8K, direction=liref,
                              alphas=(0.0, 0.1))  # fmt: skip
    assert "chat_template" in res.metadata["settings"]["format_warning"]


def test_short_context_drops_exemplars_never_the_question(
    make_tiny: Any, scripted_any: Any
) -> None:
    model = make_tiny("gpt2")  # n_positions = 256: 8-shot prompts do not fit
    scripted_any(model)
    with pytest.warns(UserWarning, match="fewer exemplars"):
        res = lirefs.evaluate(model, "builtin-arithmetic", limit=2, max_new_tokens=16)
    for record in res.records:
        assert record["n_shots"] < 8
        assert lirefs.batching.token_lengths(model, [record["prompt"]])[0] + 16 <= 256
    data = lirefs.get_benchmark("builtin-arithmetic").load()
    item = next(i for i in data.items if i.id == res.records[0]["id"])
    assert res.records[0]["prompt"].endswith(f"Q: {item.question}\nA:")


# ---------------------------------------------------------------------------------------------
# prompting baselines

THINK = "Let's think step by step."
GOLDS = ["18", "1,250", "-5"]


def _baseline_answer(alpha: float, question: str) -> str:
    """SCRIPT for steering rows; a prompt baseline (its text ends the question) gets every item
    right, or every item wrong for the text "Be wrong."."""
    for text, right in ((THINK, True), ("Be wrong.", False)):
        if question.endswith(" " + text):
            q = question[: -len(text) - 1]
            return f"The final answer is {GOLDS[QUESTIONS.index(q)]}." if right else "???"
    return SCRIPT[alpha][QUESTIONS.index(question)]


def test_prompt_baseline_rows_are_tested_against_alpha_zero(
    fake_model: Any, inject: Any, tmp_path: Path
) -> None:
    engine = inject(ScriptedEngine(answer=_baseline_answer))
    records = tmp_path / "records.jsonl"
    kw = {"data_path": GSM8K, "direction": _direction(), "alphas": (0.0, 0.1),
          "records_path": records, "n_boot": 200}  # fmt: skip
    res = lirefs.evaluate(fake_model, "gsm8k", prompt_baselines=(THINK,), **kw)
    # the text ends each item's own question, before "\nA:"; the exemplars are unchanged
    mine = [c for c in engine.calls if c["questions"][0].endswith(THINK)]
    assert [c["alpha"] for c in mine] == [0.0] and not mine[0]["edits"]
    for prompt, q in zip(mine[0]["prompts"], QUESTIONS, strict=True):
        assert prompt.endswith(f"Q: {q} {THINK}\nA:") and prompt.count(THINK) == 1
    b = res.prompt_baselines[THINK]
    assert b.label == f"prompt: {THINK}" and b.accuracy == 1.0
    assert b.row["ci"] == pytest.approx(list(clopper_pearson(3, 3)))
    test = b.paired
    assert test is not None and test.test == "mcnemar" and (test.n_gained, test.n_lost) == (1, 0)
    assert test.diff == pytest.approx(1.0 - 2 / 3)
    # one Holm family for accuracy: the steered alpha and the baseline together
    want = ev.holm([res.paired[0.1].p_value, test.p_value])
    assert [res.paired[0.1].p_holm, test.p_holm] == pytest.approx(want)
    # the answer outcome and its paired test, as for a steered row
    assert b.row["answer_logprob_n"] == 3 and "answer_logprob" in b.tests
    # records carry the baseline, alpha 0, and its prompt
    lines = [json.loads(x) for x in records.read_text().splitlines()[1:]]
    own = [r for r in lines if r.get("baseline") == THINK]
    assert len(own) == 3 and {r["alpha"] for r in own} == {0.0}
    assert all(THINK in r["prompt"] for r in own)
    assert [r["index"] for r in b.records] == [0, 1, 2]
    assert all(r["baseline"] == THINK for r in b.records)
    # resume: nothing again; a second baseline runs only its own rows
    n = len(engine.calls)
    again = lirefs.evaluate(fake_model, "gsm8k", prompt_baselines=(THINK,), **kw)
    assert len(engine.calls) == n and again.prompt_baselines[THINK].row == b.row
    both = lirefs.evaluate(fake_model, "gsm8k", prompt_baselines=(THINK, "Be wrong."), **kw)
    assert [c["questions"][0].endswith("Be wrong.") for c in engine.calls[n:]] == [True]
    assert both.prompt_baselines["Be wrong."].accuracy == 0.0
    assert both.prompt_baselines["Be wrong."].paired.n_lost == 2
    # save and load round trip
    back = ev.EvalResult.load(both.save(tmp_path / "out"))
    assert set(back.prompt_baselines) == {THINK, "Be wrong."}
    for text, orig in both.prompt_baselines.items():
        assert back.prompt_baselines[text].to_dict() == json.loads(json.dumps(orig.to_dict()))
        assert back.prompt_baselines[text].records == orig.records
    assert back.records == both.records
    assert (
        json.loads((tmp_path / "out" / "result.json").read_text())["prompt_baselines"][0]["label"]
        == f"prompt: {THINK}"
    )


def test_prompt_baselines_are_checked() -> None:
    with pytest.raises(DataError, match="non-empty texts"):
        ev.EvalConfig(prompt_baselines=("",))
    with pytest.raises(DataError, match="more than once"):
        ev.EvalConfig(prompt_baselines=("a", "a"))
    assert ev.EvalConfig(prompt_baselines="Think.").prompt_baselines == ("Think.",)


def test_cli_prompt_baseline_row(cli: Any, inject: Any, tmp_path: Path) -> None:
    inject(ScriptedEngine(answer=_baseline_answer))
    path = _direction().save(tmp_path / "liref.safetensors")
    res = cli("-B", "gsm8k", "--data-path", str(GSM8K), "-d", str(path), "--alpha", "0,0.1",
              "--prompt-baseline", THINK)  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"prompt: {THINK} 100.0" in text
