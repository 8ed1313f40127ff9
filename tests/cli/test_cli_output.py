"""Output streams and progress: results on stdout, stage lines, progress, warnings on stderr.

The CLI is checked in two ways: click's ``CliRunner`` (separate ``stdout``/``stderr``) for where
each command prints its tables, and the real entry point in a subprocess with pipes (as in
``lirefs ... | grep`` or ``nohup``), where stderr is not a terminal: stage lines and periodic
lines arrive there, bars never do. A tiny random Llama saved as a Hugging Face folder keeps the
commands that load a model to seconds. The noise checks (transformers' deprecated cache name,
nnsight's end-of-loop warning on a steered copy, the stop-string hint) run real passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import lirefs
from lirefs.cli import main
from lirefs.console import progress_bar, stage
from lirefs.steer import StopStringWarning, warn_unmatched_stops

LIREFS = Path(sys.executable).with_name("lirefs")
REPO = Path(__file__).parents[2]
DEPRECATED = "are deprecated"


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _piped(*args: str, cwd: Path, progress: str | None = None) -> subprocess.CompletedProcess[str]:
    """``lirefs *args`` with stdout and stderr as pipes; ``LIREFS_PROGRESS`` unset unless given."""
    command = [str(LIREFS)] if LIREFS.exists() else [sys.executable, "-m", "lirefs.cli"]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
        "NDIF_API_KEY": "",
    }
    env.pop("LIREFS_PROGRESS", None)
    env.pop("LIREFS_DEBUG", None)
    if progress is not None:
        env["LIREFS_PROGRESS"] = progress
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A 3-block random Llama (d_model 64) saved with a tokenizer, loadable by ``--model``."""
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32)
    hf.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> dict[str, Path]:
    """``acts`` (16 per class) and the ``liref`` found on them, for the tiny model."""
    from lirefs import data
    from lirefs.analysis import collect_split, find_direction

    folder = tmp_path_factory.mktemp("artifacts")
    model = lirefs.load_model(str(tiny_dir), device="cpu")
    split = collect_split(model, data.load("builtin").subset(16, seed=0), progress=False)
    split.save(folder / "acts.safetensors")
    direction, _ = find_direction(split, n_permutations=5, progress=False)
    direction.save(folder / "liref.safetensors")
    return {"acts": folder / "acts.safetensors", "liref": folder / "liref.safetensors"}


# -- the progress module --------------------------------------------------------------------


def test_not_a_terminal_gives_a_stage_line_and_periodic_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LIREFS_PROGRESS", raising=False)
    with progress_bar("collecting train reasoning", 20, start="collecting 20 prompts") as bar:
        for _ in range(20):
            bar.advance(1)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "collecting 20 prompts"
    periodic = lines[1:]
    # every 10% of 20 items: 2, 4, ..., 18 (the end itself prints no line)
    assert periodic == [f"  collecting train reasoning: {k}/20, 0 s" for k in range(2, 20, 2)]


@pytest.mark.parametrize("how", ["env", "argument"])
def test_quiet_prints_nothing(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIREFS_PROGRESS", "0" if how == "env" else "")
    monkeypatch.delenv("LIREFS_PROGRESS") if how == "argument" else None
    progress = False if how == "argument" else None
    stage("a stage", progress)
    with progress_bar("counting", 10, progress) as bar:
        bar.advance(10)
    assert capsys.readouterr() == ("", "")


# -- which stream each command prints to ----------------------------------------------------


def test_list_benchmarks_is_on_stdout() -> None:
    result = _cli("evaluate", "--list-benchmarks")
    assert result.exit_code == 0, result.stderr
    assert "gsm8k" in result.stdout
    assert result.stderr == ""


def test_report_table_is_on_stdout_and_wrote_is_on_stderr(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    out = tmp_path / "report"
    result = _cli(
        "report",
        "-d",
        str(artifacts["liref"]),
        str(artifacts["acts"]),
        "-o",
        str(out),
        "--no-plots",
    )
    assert result.exit_code == 0, result.stderr
    assert "auroc" in result.stdout.lower()
    assert "wrote" not in result.stdout
    assert "wrote" in result.stderr


def test_steer_table_is_on_stdout(tiny_dir: Path, artifacts: dict[str, Path]) -> None:
    args = ["steer", "What is 2 + 3?", "-m", str(tiny_dir), "--device", "cpu", "-n", "2"]
    result = _cli(*args, "-d", str(artifacts["liref"]), "-a", "0,0.5")
    assert result.exit_code == 0, result.stderr
    assert "What is 2 + 3?" in result.stdout
    assert "What is 2 + 3?" not in result.stderr


def test_errors_are_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "-d", str(tmp_path / "no.safetensors"), "x"])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")


@pytest.mark.script
def test_piped_collect_prints_stage_lines_on_stderr_only(tmp_path: Path, tiny_dir: Path) -> None:
    out = tmp_path / "acts.safetensors"
    proc = _piped(
        "collect", "--limit", "16", "-o", str(out), "-m", str(tiny_dir), "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    for half in ("train", "test"):
        for cls in ("reasoning", "memory"):
            assert f"collecting {half} {cls}: " in proc.stderr
    assert "\x1b[" not in proc.stderr  # no bar, no cursor movement in a log
    assert f"wrote {out}" in proc.stderr.replace("\n", "")


@pytest.mark.script
def test_piped_collect_is_quiet_with_progress_off(tmp_path: Path, tiny_dir: Path) -> None:
    out = tmp_path / "acts.safetensors"
    proc = _piped(
        "collect", "--limit", "16", "-o", str(out), "-m", str(tiny_dir), "--device", "cpu",
        cwd=tmp_path, progress="0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "collecting" not in proc.stderr


@pytest.mark.script
def test_piped_evaluate_table_on_stdout_without_noise(tmp_path: Path, tiny_dir: Path) -> None:
    proc = _piped(
        "evaluate", "-B", "builtin-arithmetic", "--limit", "2", "--max-new-tokens", "2",
        "-m", str(tiny_dir), "--device", "cpu", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout.lower()
    assert f"loading {tiny_dir}" in proc.stderr
    assert "evaluating builtin-arithmetic: 2 items" in proc.stderr
    assert DEPRECATED not in proc.stderr + proc.stdout
    assert "was never reached" not in proc.stderr
    # every output ran to the 2-token budget before the benchmark's own stop string
    assert "ran out of token budget" in proc.stderr
    assert "shell" not in proc.stderr


# -- noise ------------------------------------------------------------------------------------


def test_evaluate_reads_the_prefix_cache_without_the_deprecated_name(
    make_tiny: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    from lirefs.evaluation.prefix import shared_prefix

    model = make_tiny("llama")
    ids = model.tokenizer("Q: 1 + 1 =\nA: 2\n\nQ:")["input_ids"]
    from transformers.utils import logging as hf_logging

    hf_logging.enable_propagation()
    try:
        with warnings.catch_warnings(record=True) as seen, shared_prefix(model, ids, None) as sp:
            warnings.simplefilter("always")
            sp.ensure()
    finally:
        hf_logging.disable_propagation()
    assert sp.cache.get_seq_length() == len(ids)
    messages = [str(w.message) for w in seen] + [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if DEPRECATED in m], messages


def test_a_trace_of_a_steered_copy_warns_nothing(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    g = torch.Generator().manual_seed(1)
    r = torch.randn(lirefs.model_info(model).d_model, generator=g, dtype=torch.float64)
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # every warning, each time (set before the copy is made)
        with lirefs.steered(model, r, alpha=3.0) as copy:
            for _ in range(2):
                with torch.inference_mode(), copy.trace(inputs):
                    steered_logits = copy.output.logits.save()
        with torch.inference_mode(), model.trace(inputs):
            plain_logits = model.output.logits.save()
    assert not torch.equal(steered_logits, plain_logits)  # the edit did run
    assert [str(w.message) for w in seen] == []
    # the filter lives only as long as the copy: nnsight's warning is back for user loops
    assert not any("never reached" in str(f[1]) for f in warnings.filters if f[1] is not None)


def test_default_stop_warning_names_the_budget_and_a_given_one_quoting() -> None:
    texts, tokens = ["1 2 3 4"], [4]
    with pytest.warns(StopStringWarning) as given:
        warn_unmatched_stops(texts, tokens, ["\\nQ:"], 4)
    with pytest.warns(StopStringWarning) as default:
        warn_unmatched_stops(texts, tokens, ["\nQ:"], 4, given=False)
    assert "shell" in str(given[0].message)
    assert "shell" not in str(default[0].message)
    assert "ran out of token budget" in str(default[0].message)
