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
