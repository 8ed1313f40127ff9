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
        ("ShapeError", lirefs.ActivationError),
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


# ---------------------------------------------------------------------------------------------
# the fingerprint follows the weights


def _saved_tiny(make_tiny: Any, folder: Path) -> Path:
    tiny = make_tiny("llama")
    tiny._module.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


def _edit_in_place(folder: Path) -> None:
    """Change one tensor's values; names, shapes, dtypes and the file size stay the same."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    size = path.stat().st_size
    tensors = load_file(str(path))
    name = sorted(k for k in tensors if k.endswith("mlp.down_proj.weight"))[-1]
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, str(path), metadata={"format": "pt"})
    assert path.stat().st_size == size


def test_a_folder_changed_in_place_gets_a_new_fingerprint(make_tiny: Any, tmp_path: Path) -> None:
    folder = _saved_tiny(make_tiny, tmp_path / "m")
    before = lirefs.model_info(lirefs.load_model(str(folder), device="cpu")).fingerprint
    again = lirefs.model_info(lirefs.load_model(str(folder), device="cpu")).fingerprint
    _edit_in_place(folder)
    after = lirefs.model_info(lirefs.load_model(str(folder), device="cpu")).fingerprint
    assert before == again
    assert after != before


def test_a_cache_and_a_direction_of_the_old_weights_are_refused(
    make_tiny: Any, tmp_path: Path
) -> None:
    folder = _saved_tiny(make_tiny, tmp_path / "m")
    old = lirefs.load_model(str(folder), device="cpu")
    prompts = ["Q: 2+2?\nA: ", "Q: Capital of Peru?\nA: "]
    acts = lirefs.collect_activations(old, prompts, cache_dir=tmp_path / "c")
    lirefs.Direction.from_activations(acts[:1], acts[1:], model=old).save(
        tmp_path / "d.safetensors"
    )
    _edit_in_place(folder)
    new = lirefs.load_model(str(folder), device="cpu")
    with pytest.raises(lirefs.CacheMismatchError, match="fingerprint"):
        lirefs.collect_activations(new, prompts, cache_dir=tmp_path / "c")
    with pytest.raises(lirefs.MetadataMismatchError, match="fingerprint"):
        lirefs.Direction.load(tmp_path / "d.safetensors", model=new)


def test_weight_hashes_are_memoised_by_path_size_and_mtime(tmp_path: Path) -> None:
    import hashlib

    from lirefs.models import file_digest

    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    assert file_digest(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    stat = path.stat()
    path.write_bytes(b"b" * 1000)  # same size; restore the old mtime: the memo answers
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_digest(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_digest(path) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_in_memory_models_differ_by_any_weight(make_tiny: Any) -> None:
    from copy import deepcopy

    tiny = make_tiny("llama")
    hf = deepcopy(tiny._module)
    with torch.no_grad():
        hf.model.layers[-1].mlp.down_proj.weight.add_(1e-3)  # the last block: not in the first 4
    copy = lirefs.wrap(hf, deepcopy(tiny.tokenizer))
    assert lirefs.model_info(copy).fingerprint != lirefs.model_info(tiny).fingerprint


# ---------------------------------------------------------------------------------------------
# broken model files and devices: the package's own error, one line, before any compute


def _broken_folder(make_tiny: Any, root: Path, how: str) -> Path:
    folder = _saved_tiny(make_tiny, root / how)
    weights = folder / "model.safetensors"
    if how == "only-config":
        for f in folder.iterdir():
            if f.name != "config.json":
                f.unlink()
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:5000])
    elif how == "truncated-end":
        weights.write_bytes(weights.read_bytes()[:-1000])
    return folder


@pytest.mark.parametrize("how", ["only-config", "truncated", "truncated-end"])
def test_a_broken_model_folder_is_one_clear_error(make_tiny: Any, tmp_path: Path, how: str) -> None:
    folder = _broken_folder(make_tiny, tmp_path, how)
    with pytest.raises(ModelNotFoundError, match="could not load") as err:
        lirefs.load_model(str(folder), device="cpu")
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


def test_a_file_that_is_not_gguf_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file" * 64)
    with pytest.raises(ModelNotFoundError, match="could not read GGUF file") as err:
        lirefs.load_model(str(bad), device="cpu")
    assert "\n" not in str(err.value)


def test_a_hostile_pytorch_model_bin_is_refused_without_running(
    make_tiny: Any, tmp_path: Path
) -> None:
    folder = _saved_tiny(make_tiny, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    torch.save({"model.embed_tokens.weight": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelNotFoundError, match="could not load") as err:
        lirefs.load_model(str(folder), device="cpu")
    assert not marker.exists()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"device": "tpu"}, "not a torch device"),
        ({"device": "cuda"}, "needs CUDA"),
        ({"device": "cuda:7"}, "cuda"),
        ({"device": 3.5}, "not a torch device"),
        ({"device_map": "nonsense"}, "device_map 'nonsense' is not one of auto"),
        ({"device_map": 5}, "device_map 5 is not one of"),
    ],
)
def test_unusable_devices_are_refused_before_loading(kwargs: dict[str, Any], says: str) -> None:
    if torch.cuda.is_available() and kwargs.get("device") == "cuda":
        pytest.skip("this machine has CUDA")
    with pytest.raises(lirefs.DeviceError, match=says) as err:
        lirefs.load_model("/nonexistent/never-read", **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [123, None, "", "   ", b"smollm2-135m"])
def test_a_model_name_that_is_not_a_string_is_refused(bad: Any) -> None:
    with pytest.raises(ModelNotFoundError, match="must be a name, folder"):
        lirefs.load_model(bad)
