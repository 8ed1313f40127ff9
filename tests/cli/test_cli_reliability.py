"""Bad input through the installed ``lirefs`` console script: one red line, exit code 2, no file.

Each test runs the real entry point in a subprocess, as a user's shell does, on a tiny random
Llama saved as a Hugging Face folder (so a command that loads a model takes seconds), and checks
three things: stderr is exactly one line starting with ``error: ``, the exit code, and that the
command left no file behind. Read-only and full disks are real small tmpfs mounts where ``mount``
is permitted (skipped otherwise); a unit test of the atomic writers covers a full disk everywhere.
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

LIREFS = Path(sys.executable).with_name("lirefs")
REPO = Path(__file__).parents[2]

pytestmark = pytest.mark.script


def _run(
    *args: str, cwd: Path, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(LIREFS)] if LIREFS.exists() else [sys.executable, "-m", "lirefs.cli"]
    env = {
        **os.environ,
        "LIREFS_PROGRESS": "0",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
        "NDIF_API_KEY": "",
        **(env or {}),
    }
    env.pop("LIREFS_DEBUG", None)
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def _fails_cleanly(
    args: list[str],
    cwd: Path,
    watch: Path | None = None,
    code: int = 2,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``lirefs *args`` in ``cwd``: one line, exit ``code``, no new file under ``watch``."""
    watch = watch if watch is not None else cwd
    before = _files(watch)
    line = _one_error_line(_run(*args, cwd=cwd, env=env), code)
    assert _files(watch) == before, sorted(map(str, _files(watch) - before))
    return line


# -- fixtures: a tiny model folder, its activations and direction ------------------------------


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
    """``acts`` (16 per class), ``small`` (8 per class) and ``liref`` files of the tiny model."""
    import lirefs
    from lirefs import data
    from lirefs.pipeline import collect_split, find_direction

    folder = tmp_path_factory.mktemp("artifacts")
    model = lirefs.load_model(str(tiny_dir), device="cpu")
    sets = data.load("builtin")
    split = collect_split(model, sets.subset(16, seed=0))
    split.save(folder / "acts.safetensors")
    collect_split(model, sets.subset(8, seed=0)).save(folder / "small.safetensors")
    direction, _ = find_direction(split, n_permutations=5)
    direction.save(folder / "liref.safetensors")
    return {
        "acts": folder / "acts.safetensors",
        "small": folder / "small.safetensors",
        "liref": folder / "liref.safetensors",
    }


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working folder holding one plain file, ``plain.txt``."""
    (tmp_path / "plain.txt").write_text("a file, not a folder\n")
    return tmp_path


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty read-only tmpfs (skipped where ``mount`` is not permitted)."""
    folder = tmp_path / "ro"
    if not _mount_tmpfs(folder, "size=64k,ro"):
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs filled to the last byte by ``filler`` (skipped where not permitted)."""
    folder = tmp_path / "full"
    if not _mount_tmpfs(folder, "size=64k"):
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        with open(folder / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _writers(out: str, tiny: Path, arts: dict[str, Path]) -> dict[str, list[str]]:
    """Every command that writes, with ``out`` as its output (file or folder)."""
    m = ["-m", str(tiny), "--device", "cpu"]
    acts, liref = str(arts["acts"]), str(arts["liref"])
    return {
        "collect": ["collect", "--limit", "16", "-o", f"{out}/acts.safetensors", *m],
        "direction": ["direction", acts, "-o", f"{out}/liref.safetensors", "--permutations", "5"],
        "report": ["report", "-d", liref, acts, "-o", f"{out}/report", "--no-plots"],
        "transfer": ["transfer", "-d", f"a={liref}", "-t", f"a={acts}", "-o", f"{out}/t"],
        "demo": ["demo", "--limit", "16", "-o", f"{out}/demo", "--permutations", "5", *m],
        "evaluate": ["evaluate", "-B", "builtin-arithmetic", "--limit", "2", "--max-new-tokens",
                     "2", "-o", f"{out}/eval", *m],
    }  # fmt: skip


WRITERS = ["collect", "direction", "report", "transfer", "demo", "evaluate"]


# -- item 5: file systems that cannot be written ------------------------------------------------


@pytest.mark.parametrize("command", WRITERS)
def test_output_under_a_file_is_refused_before_any_work(
    command: str, work: Path, tiny_dir: Path, artifacts: dict[str, Path]
) -> None:
    args = _writers(str(work / "plain.txt"), tiny_dir, artifacts)[command]
    line = _fails_cleanly(args, work)
    assert "plain.txt" in line and "not a folder" in line


@pytest.mark.parametrize("command", WRITERS)
def test_read_only_file_system_is_refused_before_any_work(
    command: str, work: Path, read_only_dir: Path, tiny_dir: Path, artifacts: dict[str, Path]
) -> None:
    args = _writers(str(read_only_dir), tiny_dir, artifacts)[command]
    line = _fails_cleanly(args, work)
    assert "read-only" in line and str(read_only_dir) in line


@pytest.mark.parametrize("command", ["collect", "direction", "report", "transfer"])
def test_full_disk_is_one_line_and_leaves_no_partial_file(
    command: str, work: Path, full_dir: Path, tiny_dir: Path, artifacts: dict[str, Path]
) -> None:
    args = _writers(str(full_dir), tiny_dir, artifacts)[command]
    if command == "report":
        (full_dir / "report").mkdir()  # the folder fits; report.json does not
    line = _fails_cleanly(args, work, watch=full_dir)
    assert "free some disk space" in line
    assert all(p.is_dir() for p in full_dir.iterdir() if p.name != "filler")  # no file at all


@pytest.mark.parametrize("writer", ["tensors", "text"])
def test_atomic_writers_on_a_full_disk_keep_the_old_file(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lirefs import store

    target = tmp_path / "out.bin"
    target.write_bytes(b"old contents")

    def full(path: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store, "fsync_path", full)
    with pytest.raises(OSError) as info:
        if writer == "tensors":
            store.save_tensors(target, {"x": torch.zeros(3)}, {"kind": "test"})
        else:
            store.atomic_write_text(target, "new contents")
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_full_disk_under_safetensors_is_an_os_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.torch

    from lirefs import store

    def full(*args: Any, **kwargs: Any) -> None:
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    target = tmp_path / "liref.safetensors"
    with pytest.raises(OSError) as info:
        store.save_tensors(target, {"x": torch.zeros(3)}, {"kind": "test"})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


# -- item 5: text that is not UTF-8 -------------------------------------------------------------


def test_steer_file_that_is_not_utf8_names_the_file(work: Path, tiny_dir: Path) -> None:
    (work / "questions.txt").write_bytes(b"What is 2 + 2?\n\xff\xfe broken\n")
    line = _fails_cleanly(
        ["steer", "-f", "questions.txt", "-m", str(tiny_dir), "--device", "cpu"], work
    )
    assert "questions.txt" in line and "UTF-8" in line


def test_steer_argument_that_is_not_utf8_is_one_line(work: Path, tiny_dir: Path) -> None:
    question = os.fsdecode(b"What is 2 + \xff?")
    line = _fails_cleanly(
        ["steer", question, "-m", str(tiny_dir), "--device", "cpu", "-n", "2"], work
    )
    assert "UTF-8" in line


# -- item 5: model folders and files that cannot be loaded --------------------------------------


def _broken_model(kind: str, tiny: Path, where: Path) -> Path:
    if kind == "gguf":
        path = where / "broken.gguf"
        path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x07" * 64)
        return path
    folder = where / f"model-{kind}"
    folder.mkdir()
    if kind == "config-only":
        shutil.copy(tiny / "config.json", folder)
        return folder
    for item in tiny.iterdir():
        shutil.copy(item, folder)
    if kind == "truncated":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif kind == "pickled":
        (folder / "model.safetensors").unlink()
        torch.save({"model.embed_tokens.weight": torch.zeros(2, 2)}, folder / "pytorch_model.bin")
    elif kind == "unsupported":
        config = json.loads((folder / "config.json").read_text())
        config.update(architectures=["UnknownForCausalLM"], model_type="unknown-arch")
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("kind", ["gguf", "config-only", "truncated", "pickled"])
def test_a_model_that_cannot_be_loaded_is_one_line(
    kind: str, work: Path, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    broken = _broken_model(kind, tiny_dir, tmp_path_factory.mktemp("broken"))
    line = _fails_cleanly(["steer", "hi", "-m", str(broken), "--device", "cpu", "-n", "2"], work)
    assert broken.name in line


def test_pickled_weights_are_never_unpickled(
    work: Path, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = _broken_model("pickled", tiny_dir, tmp_path_factory.mktemp("pickle"))
    marker = work / "pickle-ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    torch.save({"payload": Payload()}, folder / "pytorch_model.bin")
    _one_error_line(_run("steer", "hi", "-m", str(folder), "--device", "cpu", cwd=work))
    assert not marker.exists()


def test_an_unknown_architecture_in_a_local_folder_is_one_line(
    work: Path, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = _broken_model("unsupported", tiny_dir, tmp_path_factory.mktemp("arch"))
    line = _fails_cleanly(["steer", "hi", "-m", str(folder), "-n", "2", "--device", "cpu"], work)
    assert folder.name in line


def _offline_hub(home: Path, repo: str, config: dict[str, Any], tiny: Path) -> None:
    """A Hugging Face cache under ``home`` holding ``repo``'s config and tokenizer only."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = entry / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, snapshot)
    (snapshot / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("model_type", "fragment"),
    [("unknown-arch", "unknown-arch"), ("mamba", "no known residual-stream layout")],
    ids=["unknown-to-transformers", "no-layout"],
)
def test_an_unsupported_architecture_on_the_remote_path_is_one_line(
    model_type: str, fragment: str, work: Path, tiny_dir: Path
) -> None:
    config = {
        "model_type": model_type,
        "architectures": ["SomethingForCausalLM"],
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "vocab_size": 49152,
    }
    _offline_hub(work / "hf", "org/model", config, tiny_dir)
    env = {"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1"}
    line = _fails_cleanly(
        ["steer", "hi", "-m", "org/model", "--remote", "-n", "2"], work, watch=work / "out", env=env
    )
    assert fragment in line


# -- item 5: devices ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--device", "tpu"],
        pytest.param(
            ["--device", "cuda"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"),
        ),
        ["--device-map", "nonsense"],
    ],
    ids=["tpu", "cuda-without-cuda", "device-map-nonsense"],
)
def test_an_unusable_device_is_one_line(option: list[str], work: Path, tiny_dir: Path) -> None:
    line = _fails_cleanly(["steer", "hi", "-m", str(tiny_dir), "-n", "2", *option], work)
    assert option[1] in line


# -- item 5 (and 6): direction files with edited metadata or tensors ----------------------------


def _edited_direction(source: Path, target: Path, edit: str) -> Path:
    """A copy of ``source`` with one field of its header or one tensor damaged as ``edit`` says."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as fh:
        header = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    (key,) = header
    meta = json.loads(header[key])
    text = None
    if edit == "non-json":
        text = "{not json"
    elif edit == "a-list":
        text = json.dumps([meta])
    elif edit == "no-n_reasoning":
        del meta["n_reasoning"]
    elif edit == "n_reasoning-text":
        meta["n_reasoning"] = "many"
    elif edit == "n_reasoning-fraction":
        meta["n_reasoning"] = 2.5
    elif edit == "best_layer-x":
        meta["settings"]["best_layer"] = "x"
    elif edit == "model-null":
        meta["model"] = None
    elif edit == "1-d":
        tensors = {k: v[0].contiguous() for k, v in tensors.items()}
    elif edit == "mismatched":
        tensors["mean_memory"] = tensors["mean_memory"][:2].contiguous()
    elif edit in ("inf", "nan"):
        vectors = tensors["vectors"].clone()
        vectors[1, 0] = float(edit)
        tensors["vectors"] = vectors
    else:
        raise AssertionError(edit)
    save_file(tensors, str(target), metadata={key: text if text is not None else json.dumps(meta)})
    return target


EDITS = [
    "non-json",
    "a-list",
    "no-n_reasoning",
    "n_reasoning-text",
    "n_reasoning-fraction",
    "best_layer-x",
    "1-d",
    "mismatched",
    "inf",
    "nan",
]


@pytest.mark.parametrize("edit", EDITS)
def test_report_refuses_an_edited_direction_file(
    edit: str, work: Path, artifacts: dict[str, Path]
) -> None:
    bad = _edited_direction(artifacts["liref"], work / "edited.safetensors", edit)
    line = _fails_cleanly(["report", "-d", str(bad), str(artifacts["acts"]), "-o", "report"], work)
    assert "edited.safetensors" in line
    assert not (work / "report").exists()


@pytest.mark.parametrize("edit", ["non-json", "best_layer-x", "inf", "model-null"])
def test_steer_refuses_an_edited_direction_file(
    edit: str, work: Path, tiny_dir: Path, artifacts: dict[str, Path]
) -> None:
    bad = _edited_direction(artifacts["liref"], work / "edited.safetensors", edit)
    args = ["steer", "hi", "-d", str(bad), "-m", str(tiny_dir), "--device", "cpu", "-n", "2"]
    assert "edited.safetensors" in _fails_cleanly(args, work)


# -- item 5 and 7: damaged or deleted cache chunks ----------------------------------------------


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A finished ``collect --cache-dir`` folder of the tiny model (16 questions per class)."""
    folder = tmp_path_factory.mktemp("cache")
    proc = _run(
        "collect", "--limit", "16", "-m", str(tiny_dir), "--device", "cpu",
        "--cache-dir", "cache", "-o", "acts.safetensors", cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return folder / "cache"


@pytest.mark.parametrize("damage", ["truncated", "wrong-size", "deleted"])
def test_a_damaged_cache_chunk_is_one_line_naming_it(
    damage: str, work: Path, tiny_dir: Path, filled_cache: Path
) -> None:
    cache = work / "cache"
    shutil.copytree(filled_cache, cache)
    chunk = sorted(cache.rglob("chunk-*.safetensors"))[0]
    if damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:100])
    elif damage == "wrong-size":
        from safetensors.torch import save_file

        save_file({"states": torch.zeros(1, 2, 3)}, str(chunk))
    else:
        chunk.unlink()
    args = ["collect", "--limit", "16", "-m", str(tiny_dir), "--device", "cpu",
            "--cache-dir", "cache", "-o", "acts.safetensors"]  # fmt: skip
    line = _fails_cleanly(args, work)
    assert chunk.name in line and "None" not in line


# -- item 5: a records file that is not text ----------------------------------------------------


def test_evaluate_refuses_a_binary_records_file(work: Path, tiny_dir: Path) -> None:
    (work / "eval").mkdir()
    (work / "eval" / "records.jsonl").write_bytes(b"\x00\xff\xfe\x89PNG\r\n\x1a\n" * 8)
    args = ["evaluate", "-B", "builtin-arithmetic", "--limit", "2", "--max-new-tokens", "2",
            "-m", str(tiny_dir), "--device", "cpu", "-o", "eval"]  # fmt: skip
    line = _fails_cleanly(args, work)
    assert "records.jsonl" in line


# -- item 7: limits the CLI accepts must be usable ----------------------------------------------


def test_held_out_minimum_is_the_probe_folds() -> None:
    from lirefs.analysis import layer_report
    from lirefs.cli._common import MIN_HELD_OUT

    assert inspect.signature(layer_report).parameters["cv_folds"].default == MIN_HELD_OUT


@pytest.mark.parametrize("limit", [2, 8, 15])
def test_collect_refuses_a_limit_too_small_for_the_layer_choice(
    limit: int, work: Path, tiny_dir: Path
) -> None:
    args = ["collect", "--limit", str(limit), "-m", str(tiny_dir), "-o", "acts.safetensors"]
    line = _fails_cleanly(args, work)
    assert "--limit 16 or more" in line


def test_collect_accepts_the_smallest_limit_it_names(work: Path, tiny_dir: Path) -> None:
    args = ["collect", "--limit", "16", "-m", str(tiny_dir), "--device", "cpu"]
    proc = _run(*args, "-o", "acts.safetensors", cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = _run("direction", "acts.safetensors", "-o", "liref.safetensors", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert (work / "liref.safetensors").is_file()


def test_direction_on_a_small_collection_names_options_that_exist(
    work: Path, artifacts: dict[str, Path]
) -> None:
    from lirefs.cli import main

    line = _fails_cleanly(["direction", str(artifacts["small"]), "-o", "liref.safetensors"], work)
    collect = main.commands["collect"]
    named = {word.strip(".,;:()") for word in line.split() if word.startswith("--")}
    assert named, line
    assert named <= {opt for param in collect.params for opt in param.opts}, line


def test_demo_below_its_minimum_limit_names_the_minimum(work: Path) -> None:
    proc = _run("demo", "--limit", "4", "-o", "demo", cwd=work)
    assert proc.returncode == 2
    assert "16" in proc.stderr and "Traceback" not in proc.stderr
    assert not (work / "demo").exists()


def test_demo_at_its_documented_minimum_limit_works(work: Path, tiny_dir: Path) -> None:
    args = ["demo", "--limit", "16", "-m", str(tiny_dir), "--device", "cpu", "-o", "demo",
            "--permutations", "5", "--no-plots"]  # fmt: skip
    proc = _run(*args, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert (work / "demo" / "direction.safetensors").is_file()
    assert (work / "demo" / "report.json").is_file()


def test_report_with_an_out_of_range_layer_writes_nothing(
    work: Path, artifacts: dict[str, Path]
) -> None:
    args = ["report", "-d", str(artifacts["liref"]), str(artifacts["acts"]), "-o", "report",
            "--layer", "99"]  # fmt: skip
    line = _fails_cleanly(args, work)
    assert "99" in line
    assert not (work / "report").exists()


@pytest.mark.parametrize("question", ["", "   "], ids=["empty", "blank"])
def test_steer_refuses_an_empty_question(question: str, work: Path, tiny_dir: Path) -> None:
    line = _fails_cleanly(["steer", question, "-m", str(tiny_dir), "--device", "cpu"], work)
    assert "empty question" in line


# -- click's usage errors and Python warnings: one line each ------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["steer", "--no-such-option"], "No such option '--no-such-option'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["collect", "--limit", "abc"], "'abc' is not a valid integer"),
        (["evaluate", "-m", "x"], "--benchmark is required"),
    ],
)
def test_usage_errors_are_one_line_naming_the_help(
    work: Path, args: list[str], fragment: str
) -> None:
    line = _fails_cleanly(args, work)
    assert fragment in line and "--help'" in line, line


def test_help_and_version_still_exit_0(work: Path) -> None:
    for args in (["--help"], ["steer", "-h"], ["--version"]):
        proc = _run(*args, cwd=work)
        assert proc.returncode == 0 and proc.stdout and not proc.stderr, proc.stderr


def test_a_stop_string_that_never_occurs_is_one_warning_line(work: Path, tiny_dir: Path) -> None:
    # a literal backslash-n (what '\nQ:' gives in a shell) never occurs in a random model's text
    args = ["steer", "What is 2 + 2?", "-m", str(tiny_dir), "--device", "cpu", "-n", "6"]
    plain = _run(*args, "--json", cwd=work)
    proc = _run(*args, "--json", "--stop", "\\nQ:", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: stop string '\\\\nQ:'"), proc.stderr
    assert "occurred in none of the 1 outputs" in lines[0] and "budget of 6" in lines[0]
    # nothing lost: the texts are those of the run without a stop string
    texts = [json.loads(p.stdout)["runs"][0]["outputs"][0]["text"] for p in (plain, proc)]
    assert texts[0] == texts[1] and texts[0]


_SLOW_CLI = """
import sys, time
import click
from lirefs.cli import main
from lirefs.store import atomic_folder

@main.command("slow-write")
@click.argument("out")
def slow_write(out):
    with atomic_folder(out) as tmp:
        (tmp / "w.bin").write_bytes(b"x" * 100000)
        print("writing", flush=True)
        time.sleep(120)

main(sys.argv[1:])
"""


def test_sigterm_stops_the_cli_in_one_line_and_cleans_up(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "cli.py"
    script.write_text(_SLOW_CLI)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen(
        [sys.executable, str(script), "slow-write", str(out / "model")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 143
    assert err.strip().count("\n") == 0 and "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


# -- every option is checked before the model loads ---------------------------------------------
# ``-m /nonexistent/model``: a check that ran after loading would report the missing model instead.

NO_MODEL = ["-m", "/nonexistent/model-never-read"]


def _invoke(args: list[str]) -> tuple[int, str]:
    from click.testing import CliRunner

    from lirefs.cli import main

    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output.strip()


def _one_line(args: list[str], *words: str) -> str:
    code, out = _invoke(args)
    assert code == 2, out
    assert "\n" not in out and "unexpected" not in out and "never-read" not in out, out
    for word in words:
        assert word in out, out
    return out


def test_evaluate_seed_is_checked_before_the_model_loads(tmp_path: Path) -> None:
    _one_line(
        [
            "evaluate",
            "-B",
            "builtin-arithmetic",
            "--seed",
            "-1",
            "-o",
            str(tmp_path / "e"),
            *NO_MODEL,
        ],
        "--seed",
    )


def test_transfer_seed_is_checked_first(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    liref, acts = str(artifacts["liref"]), str(artifacts["acts"])
    _one_line(
        [
            "transfer",
            "-d",
            f"a={liref}",
            "-t",
            f"a={acts}",
            "--seed",
            "-1",
            "-o",
            str(tmp_path / "t"),
        ],
        "--seed",
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-kl", "-1"), ("--max-kl", "nan"), ("--causal-alpha", "nan"), ("--causal-alpha", "0")],
)
def test_causal_options_are_checked_first(
    tmp_path: Path, artifacts: dict[str, Path], option: str, value: str
) -> None:
    args = ["direction", str(artifacts["acts"]), "--layer-rule", "causal", option, value]
    _one_line([*args, "-o", str(tmp_path / "d.safetensors"), *NO_MODEL], option)


def test_causal_rule_on_a_limited_collection_is_refused_before_loading(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    out = tmp_path / "d.safetensors"
    args = ["direction", str(artifacts["acts"]), "--layer-rule", "causal", "-o", str(out)]
    _one_line([*args, *NO_MODEL], "--limit")
    assert not out.exists()


def test_export_ablated_checks_its_output_before_loading(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    _one_line(
        ["export", "ablated", "-d", str(artifacts["liref"]), "-o", str(used), *NO_MODEL], "empty"
    )
    _one_line(
        [
            "export",
            "ablated",
            "-d",
            str(artifacts["liref"]),
            "-o",
            str(tmp_path / "n"),
            "-l",
            "99",
            *NO_MODEL,
        ],
        "99",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["export", "gguf", "-d", "LIREF", "-o", "OUT/v.gguf", "--layers", "1-100000000000"],
        ["export", "lm-eval", "-d", "LIREF", "-o", "OUT/v.pt", "-l", "1-100000000000", "-a", "1"],
        ["steer", "hi", "-d", "LIREF", "--blocks", "0-100000000000", *NO_MODEL],
    ],
)
def test_huge_index_ranges_are_refused_without_building_them(
    tmp_path: Path, artifacts: dict[str, Path], args: list[str]
) -> None:
    import time

    args = [a.replace("LIREF", str(artifacts["liref"])).replace("OUT", str(tmp_path)) for a in args]
    start = time.perf_counter()
    _one_line(args, "100000000000")
    assert time.perf_counter() - start < 20


def test_report_refuses_a_direction_that_records_no_model(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    import lirefs

    liref = lirefs.Direction.load(artifacts["liref"])
    liref.metadata["model"] = None
    nameless = liref.save(tmp_path / "nameless.safetensors")
    out = tmp_path / "r"
    _one_line(
        ["report", "-d", str(nameless), str(artifacts["acts"]), "-o", str(out)], "records no model"
    )
    assert not (out / "report.json").exists()


def test_steer_warns_about_a_question_beyond_the_context(tiny_dir: Path) -> None:
    limit = json.loads((tiny_dir / "config.json").read_text())["max_position_embeddings"]
    code, out = _invoke(
        ["steer", "two " * (limit + 10), "-m", str(tiny_dir), "--device", "cpu", "-n", "1"]
    )
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and f"longer than the model's context of {limit}" in lines[0]
