"""The CLI: help with examples, one clear line on bad input, and the demo end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lirefs.cli import main


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_one_error_line(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {result.stderr!r}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_commands_with_examples() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("demo", "collect", "direction", "report"):
        assert name in result.output
    for name in ("demo", "collect", "direction", "report"):
        sub = run(name, "--help")
        assert sub.exit_code == 0 and "Example" in sub.output, name


def test_unknown_model_is_one_line(tmp_path: Path) -> None:
    result = run("collect", "--model", "no-such-model", "--out", str(tmp_path / "a.safetensors"))
    assert_one_error_line(result, "no-such-model")
    assert not list(tmp_path.iterdir()), "no partial file"


def test_missing_activation_file_is_one_line(tmp_path: Path) -> None:
    result = run(
        "direction", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "d.safetensors")
    )
    assert_one_error_line(result, "nope.safetensors")
    assert not (tmp_path / "d.safetensors").exists()


def test_malformed_data_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "What is 2+2?", "label": "reasoning"}\n{not json\n')
    result = run("collect", "--set", str(bad), "--out", str(tmp_path / "a.safetensors"))
    assert_one_error_line(result, "q.jsonl", "2")


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path, smollm2_dir: Path) -> None:
    out = tmp_path / "report"
    result = run("demo", "--limit", "24", "--permutations", "20", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    auroc = summary["report"]["auroc"]
    assert len(auroc) == 31
    assert 1 <= summary["best_layer"] <= 30
    names = {p.name for p in out.iterdir()}
    assert {"direction.safetensors", "report.json"} <= names
    pngs = [p for p in out.iterdir() if p.suffix == ".png"]
    assert len(pngs) >= 4
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import lirefs

    liref = lirefs.Direction.load(out / "direction.safetensors")
    assert liref.metadata["settings"]["best_layer"] == summary["best_layer"]
    assert liref.metadata["model"]["name"] == "smollm2-135m"


# -- the CLI prints what lirefs.pipeline computes ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A 3-block random Llama saved with a tokenizer, loadable by ``--model``."""
    import torch
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32)
    hf.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_set(path: Path, reasoning: list[str], memory: list[str]) -> Path:
    rows = [{"question": q, "label": "reasoning"} for q in reasoning]
    rows += [{"question": q, "label": "memory"} for q in memory]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_demo_prints_and_writes_what_the_pipeline_computes(
    tmp_path: Path, tiny_folder: Path
) -> None:
    import lirefs
    from lirefs import pipeline

    base = write_set(
        tmp_path / "base.jsonl",
        [f"A box holds {a} rows of {a + 1} eggs. How many eggs?" for a in range(2, 20)],
        [f"What is the capital of country number {c}?" for c in range(2, 20)],
    )
    other = write_set(
        tmp_path / "other.jsonl",
        [f"What is {a} plus {a - 5}?" for a in range(10, 28)],
        [f"What is the atomic number of element {e}?" for e in range(10, 28)],
    )
    out = tmp_path / "report"
    result = run(
        "demo", "--model", str(tiny_folder), "--set", str(base), "--transfer-set", str(other),
        "--permutations", "10", "--no-plots", "--no-html", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    model = lirefs.load_model(str(tiny_folder))
    expected = pipeline.run_demo(
        model, str(base), permutations=10, transfer_sets=[str(other)], batch_size=None
    )
    assert printed["best_layer"] == expected.report.best_layer
    assert printed["report"]["auroc"] == expected.report.to_dict()["auroc"]
    assert printed["transfer"]["auroc"] == expected.transfer.to_dict()["auroc"]  # type: ignore[union-attr]
    written = expected.save(tmp_path / "again", plots=False, html=False)
    assert [Path(p).name for p in printed["files"]] == [p.name for p in written]
    assert [p.name for p in written] == [
        "direction.safetensors",
        "report.json",
        "direction-other.safetensors",
        "transfer.json",
    ]
