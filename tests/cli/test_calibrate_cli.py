"""``--alpha calibrated`` and ``--calibration`` in ``lirefs steer`` / ``lirefs evaluate``, the
within-budget marks and the calibration section of report.html, on a tiny saved model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import lirefs
from lirefs.calibrate import Calibration, neutral_prompts
from lirefs.cli import main
from lirefs.cli._common import parse_alpha_list, parse_alpha_specs
from lirefs.errors import DataError

QUESTION = "What is 2 plus 3?"


def _direction(model: Any, seed: int) -> lirefs.Direction:
    info = lirefs.model_info(model)
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(6, info.n_layers + 1, info.d_model, generator=g) + 1.0
    m = torch.randn(6, info.n_layers + 1, info.d_model, generator=g)
    return lirefs.Direction.from_activations(r, m, model=model, settings={"best_layer": 2})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> dict[str, Any]:
    """A saved tiny Llama, two directions of it, and a calibration of the first (file + object)."""
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    tmp = tmp_path_factory.mktemp("calint")
    folder = tmp / "tiny-llama"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("llama")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = lirefs.load_model(str(folder), device="cpu")
    direction = _direction(model, 1)
    path = direction.save(tmp / "liref.safetensors")
    other = _direction(model, 2).save(tmp / "other.safetensors")
    cal = lirefs.calibrate(
        model, direction, prompts=neutral_prompts()[:3], max_kl=1e-4, start=0.02, factor=4.0,
        rtol=0.5, feature_per_class=4, progress=False,
    )  # fmt: skip
    assert cal.alpha_max is not None and cal.alpha_min is not None
    cal_path = cal.save(tmp / "cal<x>&.json")  # a name the HTML page must escape
    return {"tmp": tmp, "model_dir": folder, "model": model, "direction": direction,
            "path": path, "other": other, "cal": cal, "cal_path": cal_path}  # fmt: skip


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _one_line_error(result: Any, words: str) -> None:
    assert result.exit_code != 0, result.output
    assert words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def test_alpha_specs_parse_in_one_place() -> None:
    assert parse_alpha_specs(("0,calibrated", " -calibrated/2 ,0.1")) == [
        0.0, "calibrated", "-calibrated/2", 0.1,
    ]  # fmt: skip
    assert parse_alpha_list(("0,0.1", "-0.0", "1e-2,")) == [0.0, 0.1, 0.0, 0.01]
    with pytest.raises(DataError, match="needs --calibration"):
        parse_alpha_list(("0,calibrated",))
    with pytest.raises(DataError, match="is not a number"):
        parse_alpha_specs(("calibrate",))


def test_steer_resolves_calibrated_names(setup: dict[str, Any]) -> None:
    cal: Calibration = setup["cal"]
    base = ["steer", QUESTION, "-m", str(setup["model_dir"]), "-d", str(setup["path"]), "-n", "3"]
    named = _invoke(*base, "-a", "0,calibrated", "-a", "-calibrated/2",
                    "--calibration", str(setup["cal_path"]), "--json")  # fmt: skip
    assert named.exit_code == 0, named.output
    got = json.loads(named.stdout)
    wanted = [0.0, cal.alpha_max, cal.alpha_min / 2]
    assert [run["alpha"] for run in got["runs"]] == wanted
    entry = got["calibration"]
    assert entry["resolved"] == {"calibrated": cal.alpha_max, "-calibrated/2": cal.alpha_min / 2}
    assert entry["budget"] == cal.max_kl and entry["alpha_max"] == cal.alpha_max
    assert entry["alpha_min"] == cal.alpha_min and entry["path"] == str(setup["cal_path"])
    assert len(entry["hash"]) == 64
    table = _invoke(*base, "-a", "calibrated", "--calibration", str(setup["cal_path"]))
    assert table.exit_code == 0, table.output
    assert f"calibrated = {cal.alpha_max:+.5g}" in " ".join(table.stdout.split())
    # the same tokens as the numbers given directly
    numbers = _invoke(*base, "-a", ",".join(repr(a) for a in wanted), "--json")
    assert numbers.exit_code == 0, numbers.output
    plain = json.loads(numbers.stdout)
    ids = [[o["token_ids"] for o in run["outputs"]] for run in plain["runs"]]
    assert [[o["token_ids"] for o in run["outputs"]] for run in got["runs"]] == ids


def test_refusals_in_one_line(setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import lirefs.cli._common as common_cli

    def no_load(*args: Any) -> Any:
        raise AssertionError("the model must not load")

    tmp: Path = setup["tmp"]
    base = ["steer", QUESTION, "-m", str(setup["model_dir"]), "-n", "2", "-a", "calibrated"]
    with monkeypatch.context() as m:
        m.setattr(common_cli, "load", no_load)  # where every command loads its model
        cal = ["--calibration", str(setup["cal_path"])]
        _one_line_error(_invoke(*base, "-d", str(setup["path"])), "needs --calibration")
        _one_line_error(_invoke(*base, "-d", str(setup["other"]), *cal), "another direction")
        evaluate = ["evaluate", "-B", "builtin-arithmetic", "-m", str(setup["model_dir"])]
        evaluate += ["-d", str(setup["other"]), "-a", "0,calibrated", *cal]
        _one_line_error(_invoke(*evaluate), "another direction")
        _one_line_error(
            _invoke(*base, "-d", str(setup["path"]), "-l", "3", *cal), "calibrates layer 2"
        )
        _one_line_error(
            _invoke(*base, "-d", str(setup["path"]), "--mode", "add", *cal), "calibrates mode"
        )
        _one_line_error(
            _invoke(*base, "-d", str(setup["path"]), "--calibration", str(setup["path"])),
            "not a calibration file",
        )
        raw = json.loads(setup["cal_path"].read_text("utf-8"))
        none_side = tmp / "none.json"
        none_side.write_text(
            json.dumps({**raw, "alpha_max": None, "status": {**raw["status"], "positive": "none"}}),
            "utf-8",
        )
        _one_line_error(
            _invoke(*base, "-d", str(setup["path"]), "--calibration", str(none_side)),
            "even the smallest positive step exceeds the budget",
        )
    # another model: checked by fingerprint once the model is loaded
    raw = json.loads(setup["cal_path"].read_text("utf-8"))
    raw["metadata"]["model"] = {**raw["metadata"]["model"], "fingerprint": "another-model"}
    foreign = tmp / "foreign.json"
    foreign.write_text(json.dumps(raw), "utf-8")
    _one_line_error(
        _invoke(*base, "-d", str(setup["path"]), "--calibration", str(foreign)), "made on model"
    )


def _rule(cal: Calibration, alpha: float) -> bool | None:
    """The documented rule, written out from the calibration's fields."""
    if alpha == 0:
        return True
    if alpha > 0:
        bound, over = cal.alpha_max, cal.next_above["positive"]
    else:
        bound, over = cal.alpha_min, cal.next_above["negative"]
    if bound is not None and abs(alpha) <= abs(bound):
        return True
    if over is not None and abs(alpha) >= abs(over):
        return False
    return None


def test_evaluate_marks_within_budget_and_the_page_shows_it(setup: dict[str, Any]) -> None:
    from lirefs.analysis import load_evaluation, write_html_report
    from lirefs.cli.evaluate import PAPER_ALPHAS

    cal: Calibration = setup["cal"]
    tmp: Path = setup["tmp"]
    out = tmp / "eval"
    args = ["evaluate", "-B", "builtin-arithmetic", "-m", str(setup["model_dir"]),
            "-d", str(setup["path"]), "--paper-alphas", "-a", "calibrated/2,-calibrated",
            "--calibration", str(setup["cal_path"]), "--limit", "1", "--max-new-tokens", "2",
            "--no-gold-logprob", "--n-boot", "20", "--out", str(out)]  # fmt: skip
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "budget" in text and "! over" in text
    saved = json.loads((out / "result.json").read_text("utf-8"))
    alphas = sorted({*PAPER_ALPHAS, cal.alpha_max / 2, cal.alpha_min})
    assert saved["alphas"] == alphas
    entry = saved["metadata"]["settings"]["calibration"]
    assert entry["within_budget"] == {f"{a!r}": _rule(cal, a) for a in alphas}
    assert entry["within_budget"][f"{cal.alpha_min!r}"] is True
    marks = set(entry["within_budget"].values())
    assert marks == {True, False, None}  # -1 over; +0.15 between the bisection bounds
    assert entry["points"] == cal.rows()

    # report.html: the calibration section, every string escaped
    g = torch.Generator().manual_seed(3)
    n = lirefs.model_info(setup["model"]).n_layers
    d = lirefs.model_info(setup["model"]).d_model
    r = torch.randn(8, n + 1, d, generator=g) + 1.0
    m = torch.randn(8, n + 1, d, generator=g)
    report = lirefs.layer_report(setup["direction"], r, m, probe=False, n_permutations=10)
    page = write_html_report(
        tmp / "r.html", report, setup["direction"], evaluations=[load_evaluation(out)]
    )
    html_text = page.read_text("utf-8")
    assert "Calibration" in html_text and "cal&lt;x&gt;&amp;.json" in html_text
    assert "cal<x>" not in html_text
    assert "budget mean next-token KL &lt;=" in html_text
    assert "within budget" in html_text and "shift, reasoning" in html_text


def test_within_budget_of_an_ablation_and_of_a_side_with_no_alpha(setup: dict[str, Any]) -> None:
    import dataclasses

    cal: Calibration = setup["cal"]
    point = dataclasses.replace(cal.points[0], alpha=-1.0, within=False, stage="ablate")
    ablate = dataclasses.replace(cal, mode="ablate", points=[point], alpha_max=None,
                                 alpha_min=None, next_above={"positive": None, "negative": None})  # fmt: skip
    assert ablate.within_budget(0.0) is True and ablate.within_budget(-1.0) is False
    first = cal.settings["start"]
    none = dataclasses.replace(
        cal, alpha_max=None, next_above={**cal.next_above, "positive": first}
    )
    assert none.within_budget(first / 2) is None  # below the first step: not measured
    assert none.within_budget(first) is False and none.within_budget(-0.01) is True
