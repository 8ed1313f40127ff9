"""load_model: the offline default, local folders, bad names, and model identity."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import lirefs
from lirefs.errors import ModelNotFoundError


def test_unknown_names_are_refused_with_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="built-in alias"):
        lirefs.load_model("no-such-model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        lirefs.load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        lirefs.load_model(str(tmp_path))


def test_hub_id_without_network_is_one_clear_error() -> None:
    with pytest.raises(ModelNotFoundError, match="could not load"):
        lirefs.load_model("no-such-org/no-such-model-xyz")


def test_tiny_models_carry_their_identity(make_tiny: Any) -> None:
    llama, gpt2 = make_tiny("llama"), make_tiny("gpt2")
    a, b = lirefs.model_info(llama), lirefs.model_info(gpt2)
    assert (a.architecture, a.n_layers, a.d_model) == ("llama", 3, 64)
    assert (b.architecture, b.n_layers, b.d_model) == ("gpt2", 3, 64)
    assert a.fingerprint != b.fingerprint


@pytest.mark.slow
def test_offline_default_model_and_local_folder(
    smollm2: Any, smollm2_dir: Path, tmp_path: Path
) -> None:
    info = lirefs.model_info(smollm2)
    assert (info.name, info.architecture, info.n_layers, info.d_model) == (
        "smollm2-135m",
        "llama",
        30,
        576,
    )
    assert info.repo_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert info.fingerprint in smollm2_dir.name  # keyed by the GGUF file's hash
    enc = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = smollm2._module.generate(**enc, max_new_tokens=3, do_sample=False)
    assert "Paris" in smollm2.tokenizer.decode(out[0, enc["input_ids"].shape[1] :])

    folder = tmp_path / "copy"
    shutil.copytree(smollm2_dir, folder)
    local = lirefs.load_model(str(folder))
    first = lirefs.model_info(local).fingerprint
    (folder / "liref.safetensors").write_bytes(b"saved beside the model")
    assert lirefs.model_info(lirefs.load_model(str(folder))).fingerprint == first


# ---------------------------------------------------------------------------------------------
# where traces run: the model remembers ``remote``


def test_models_does_not_import_the_ndif_plumbing() -> None:
    import ast

    source = Path(lirefs.models.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not {".ndif", "lirefs.ndif", ".remote", "lirefs.remote"} & imported


def test_a_model_remembers_remote_and_an_explicit_argument_wins(
    make_tiny: Any, tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copy import deepcopy

    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    import lirefs.collect as collect
    from lirefs.ndif import resolve_remote

    plain = make_tiny("llama")
    hf = AutoModelForCausalLM.from_config(tiny_config("llama")).eval()
    remembered = lirefs.wrap(hf, deepcopy(tokenizer), name="tiny", remote="local")
    assert resolve_remote(plain) is False
    assert resolve_remote(remembered) == "local"
    assert resolve_remote(remembered, False) is False
    assert resolve_remote(plain, True) is True
    with pytest.raises(lirefs.RemoteError, match="remote must be False, True or 'local'"):
        resolve_remote(plain, "yes")

    asked: list[object] = []

    def spy(remote: object) -> dict[str, Any]:
        asked.append(remote)
        return {}  # run locally: only the resolved setting is under test here

    monkeypatch.setattr(collect, "trace_kwargs", spy)
    lirefs.collect_activations(remembered, ["Q: 2+2?\nA: "], batch_size=1)
    lirefs.collect_activations(remembered, ["Q: 2+2?\nA: "], batch_size=1, remote=False)
    lirefs.collect_activations(plain, ["Q: 2+2?\nA: "], batch_size=1)
    assert asked == ["local", False, False]


def test_load_model_remembers_remote_local(make_tiny: Any, tmp_path: Path) -> None:
    from lirefs.ndif import resolve_remote

    tiny = make_tiny("gpt2")
    tiny._module.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    model = lirefs.load_model(str(tmp_path), remote="local", device="cpu")
    assert resolve_remote(model) == "local"
    assert resolve_remote(lirefs.load_model(str(tmp_path), device="cpu")) is False
    with pytest.raises(lirefs.RemoteError, match="remote must be"):
        lirefs.load_model(str(tmp_path), remote="sometimes")  # type: ignore[arg-type]


def test_load_model_remote_needs_a_hub_id() -> None:
    with pytest.raises(lirefs.RemoteError, match="Hub ids like"):
        lirefs.load_model("./some/folder", remote=True)


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("UnsupportedArchitectureError", lirefs.ArchitectureError),
        ("LayerOutOfRangeError", lirefs.LayerError),
        ("PositionError", lirefs.DataError),
        ("TracerError", lirefs.LirefsError),
    ],
)
def test_tracer_errors_become_the_packages_own(theirs: str, ours: type[Exception]) -> None:
    import tracers
    from lirefs.checks import translate_tracer_errors

    with pytest.raises(ours, match=r"^the tracer's message$") as err, translate_tracer_errors():
        raise getattr(tracers, theirs)("the tracer's message")
    assert not isinstance(err.value, tracers.TracerError)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_unknown_architecture_is_an_architecture_error(tokenizer: Any) -> None:
    from copy import deepcopy

    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            from transformers import PretrainedConfig

            self.config = PretrainedConfig()
            self.config.model_type = "odd"
            self.w = torch.nn.Linear(2, 2)

    with pytest.raises(lirefs.ArchitectureError):
        lirefs.wrap(Odd(), deepcopy(tokenizer))
