"""One CLI vocabulary: every option has help, each concept one spelling, old spellings still work.

The table in docs/cli.md lists the same spellings; the checks here walk click's command tree, so a
new command or option is held to them without being named.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import torch
from click.testing import CliRunner

import lirefs
from lirefs.cli import main

REPO = Path(__file__).parents[1]


def _commands(group: click.Group = main, path: str = "lirefs") -> Iterator[tuple[str, Any]]:
    for name, command in sorted(group.commands.items()):
        where = f"{path} {name}"
        yield where, command
        if isinstance(command, click.Group):
            yield from _commands(command, where)


COMMANDS = dict(_commands())
LEAVES = {k: v for k, v in COMMANDS.items() if not isinstance(v, click.Group)}


def _option(command: Any, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in param.opts:
            return param
    return None


def test_every_option_has_help_text() -> None:
    missing = [
        f"{where} {param.opts[0]}"
        for where, command in [("lirefs", main), *COMMANDS.items()]
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert missing == []


def test_the_walk_finds_an_option_without_help() -> None:
    @click.command()
    @click.option("--bare")
    def bare(bare: str) -> None: ...

    assert [p.opts for p in bare.params if isinstance(p, click.Option) and not p.help] == [
        ["--bare"]
    ]


#: Long name -> the one short form it has wherever a command takes it.
SHORT = {
    "--layer": "-l",
    "--alpha": "-a",
    "--direction": "-d",
    "--max-new-tokens": "-n",
    "--model": "-m",
    "--out": "-o",
    "--batch-size": "-b",
}


def test_each_concept_has_one_spelling_everywhere() -> None:
    found = []
    for where, command in LEAVES.items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            long = next((o for o in param.opts if o.startswith("--")), None)
            if long in SHORT and SHORT[long] not in param.opts:
                found.append(f"{where} {long} lacks {SHORT[long]}")
            for short in param.opts:
                owner = {s: name for name, s in SHORT.items()}.get(short)
                if owner is not None and owner not in param.opts:
                    found.append(f"{where} uses {short} for {long}, not {owner}")
    assert found == []


@pytest.mark.parametrize("name", ["--limit", "--permutations"])
def test_limit_and_permutations_have_one_minimum(name: str) -> None:
    minimums = {
        where: option.type.min  # type: ignore[attr-defined]
        for where, command in LEAVES.items()
        if (option := _option(command, name)) is not None
    }
    assert len(minimums) >= 3 and set(minimums.values()) == {1}, minimums


def test_options_that_mean_nothing_are_gone() -> None:
    assert _option(COMMANDS["lirefs export gguf"], "--mode") is None
    ablated = COMMANDS["lirefs export ablated"]
    assert _option(ablated, "--remote") is None and _option(ablated, "-b") is None


def test_a_direction_is_given_with_d_everywhere_one_is_read() -> None:
    takes = [w for w, c in LEAVES.items() if _option(c, "--direction") is not None]
    assert set(takes) >= {
        "lirefs steer",
        "lirefs evaluate",
        "lirefs report",
        "lirefs calibrate",
        "lirefs export gguf",
        "lirefs export ablated",
        "lirefs export lm-eval",
    }
    usage = CliRunner().invoke(main, ["calibrate", "--help"]).output.splitlines()[0]
    assert "DIRECTION" not in usage  # the old positional is hidden


# -- behaviour, on a direction of a tiny model ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> dict[str, Path]:
    """A saved 3-block random Llama and a direction found on its states (records that model)."""
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    from lirefs import data
    from lirefs.analysis import collect_split, find_direction

    root = tmp_path_factory.mktemp("vocab")
    folder, other = root / "tiny-llama", root / "other-llama"
    for seed, where in ((0, folder), (1, other)):
        torch.manual_seed(seed)
        hf = AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32)
        hf.save_pretrained(where)
        tokenizer.save_pretrained(where)
    model = lirefs.load_model(str(folder), device="cpu")
    split = collect_split(model, data.load("builtin").subset(16, seed=0), progress=False)
    split.save(root / "acts.safetensors")
    direction, _ = find_direction(split, n_permutations=5, progress=False)
    direction.save(root / "liref.safetensors")
    return {
        "model": folder,
        "other": other,
        "acts": root / "acts.safetensors",
        "liref": root / "liref.safetensors",
    }


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_the_old_positional_direction_works_with_one_warning(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    liref = str(tiny["liref"])
    new = _run("export", "lm-eval", "-d", liref, "-o", str(tmp_path / "a.pt"), "-a", "2", "--json")
    old = _run("export", "lm-eval", liref, "-o", str(tmp_path / "b.pt"), "-a", "2", "--json")
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert "deprecated" not in new.stderr
    assert old.stderr.count("deprecated") == 1
    assert "-d/--direction" in old.stderr
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:  # {hookpoint: {"steering_vector": tensor, "action": ..., ...}}
        assert torch.equal(a[key].pop("steering_vector"), b[key].pop("steering_vector"))
        assert a[key] == b[key]
    both = _run("export", "lm-eval", liref, "-d", liref, "-o", str(tmp_path / "c.pt"), "-a", "2")
    assert both.exit_code == 2 and "give the direction once" in both.stderr
    assert not (tmp_path / "c.pt").exists()


def test_the_old_report_spelling_and_the_new_one_agree(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    liref, acts = str(tiny["liref"]), str(tiny["acts"])
    common = ["--permutations", "5", "--no-plots", "--json"]
    new = _run("report", "-d", liref, acts, "-o", str(tmp_path / "new"), *common)
    old = _run("report", liref, acts, "-o", str(tmp_path / "old"), *common)
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert old.stderr.count("deprecated") == 1 and "deprecated" not in new.stderr
    assert json.loads(new.stdout)["report"]["auroc"] == json.loads(old.stdout)["report"]["auroc"]


def test_alpha_is_parsed_the_same_and_one_is_said_where_one_is_needed(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    liref = str(tiny["liref"])
    two = _run("export", "gguf", "-d", liref, "-o", str(tmp_path / "x.gguf"), "-a", "1,2")
    assert two.exit_code == 2
    assert "export gguf takes exactly one --alpha" in two.stderr
    assert len(two.stderr.strip().splitlines()) == 1
    none = _run("export", "lm-eval", "-d", liref, "-o", str(tmp_path / "x.pt"))
    assert none.exit_code == 2 and "exactly one --alpha" in none.stderr
    bad = _run("export", "lm-eval", "-d", liref, "-o", str(tmp_path / "x.pt"), "-a", "x")
    assert bad.exit_code == 2 and "--alpha 'x' is not a number" in bad.stderr


def test_gguf_layer_is_one_index_and_layers_several(tiny: dict[str, Path], tmp_path: Path) -> None:
    from lirefs.export import describe_export

    liref = str(tiny["liref"])
    one = _run("export", "gguf", "-d", liref, "-o", str(tmp_path / "one.gguf"), "-l", "2")
    many = _run("export", "gguf", "-d", liref, "-o", str(tmp_path / "m.gguf"), "--layers", "1-3")
    old = _run("export", "gguf", "-d", liref, "-o", str(tmp_path / "o.gguf"), "-l", "1-3")
    assert (one.exit_code, many.exit_code, old.exit_code) == (0, 0, 0), old.output
    assert sorted(describe_export(tmp_path / "one.gguf")["offsets"]) == [2]
    assert sorted(describe_export(tmp_path / "m.gguf")["offsets"]) == [1, 2, 3]
    assert sorted(describe_export(tmp_path / "o.gguf")["offsets"]) == [1, 2, 3]
    assert "use --layers 1-3" in old.stderr and "deprecated" not in many.stderr


def test_the_model_defaults_to_the_one_the_direction_records(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    liref = str(tiny["liref"])
    steer = _run("steer", "2 + 2 =", "-d", liref, "-a", "0", "-n", "2", "--raw", "--json")
    assert steer.exit_code == 0, steer.output
    assert (
        json.loads(steer.stdout)["model"] == lirefs.Direction.load(liref).metadata["model"]["name"]
    )
    other = _run("steer", "2 + 2 =", "-d", liref, "-n", "2", "--raw", "-m", str(tiny["other"]))
    assert other.exit_code == 2, other.output
    assert len(other.stderr.strip().splitlines()) == 1 and "error:" in other.stderr


def test_limit_below_the_held_out_rule_says_which_limit_works(tmp_path: Path) -> None:
    result = _run("demo", "--limit", "3", "--out", str(tmp_path / "demo"))
    assert result.exit_code == 2
    assert "use --limit 16 or more" in result.stderr
    assert not (tmp_path / "demo").exists()
    zero = _run("evaluate", "-B", "builtin-arithmetic", "--limit", "0")
    assert zero.exit_code == 2 and "--limit" in zero.stderr


def test_a_foreign_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for args in (
        ["demo", "--limit", "16", "--out", str(out)],
        ["transfer", "-d", "x.safetensors", "-t", "y.safetensors", "-o", str(out)],
        ["evaluate", "-B", "builtin-arithmetic", "--out", str(out)],
    ):
        result = _run(*args)
        assert result.exit_code == 2, args
        assert "holds files lirefs did not write" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
