"""tracers: architecture layouts, reading blocks, and what the package may import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_models import FAMILIES

import tracers

TRACERS_DIR = Path(tracers.__file__).parent
ALLOWED_THIRD_PARTY = {"torch"}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(TRACERS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_tracers_import_only_torch_math_and_the_standard_library(path: Path) -> None:
    foreign = {
        name
        for name in imported_top_level_modules(path)
        if name not in sys.stdlib_module_names and name not in ALLOWED_THIRD_PARTY
    }
    assert not foreign, f"{path.name} imports {sorted(foreign)}: tracers must travel to NDIF as is"


def test_the_import_check_catches_a_foreign_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom safetensors import torch as st\nimport math\n")
    assert imported_top_level_modules(bad) - sys.stdlib_module_names - ALLOWED_THIRD_PARTY == {
        "numpy",
        "safetensors",
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_layout(make_tiny: Any, family: str) -> None:
    model = make_tiny(family)
    assert tracers.n_layers(model) == 3
    assert tracers.final_norm(model) is not None


def test_unknown_architecture_says_how_to_pass_a_layout(make_tiny: Any) -> None:
    model = make_tiny("llama")
    with pytest.raises(tracers.UnsupportedArchitectureError, match=r"layout=tracers\.Layout"):
        tracers.layout_of(type("M", (), {"config": type("C", (), {"model_type": "mamba"})()})())
    custom = tracers.Layout(blocks="model.layers", final_norm="model.norm")
    assert tracers.layout_of(model, custom) is custom


def test_layer_out_of_range() -> None:
    with pytest.raises(tracers.LayerOutOfRangeError, match=r"0\.\.3"):
        tracers.check_layer(4, 3)
    with pytest.raises(tracers.LayerOutOfRangeError):
        tracers.check_layer(-1, 3)
    assert tracers.check_layer(3, 3) == 3


def test_last_token_in_a_users_own_trace(make_tiny: Any, prompts: list[str]) -> None:
    """The block reads in forward order whatever order the layers are asked in."""
    model = make_tiny("llama")
    with torch.no_grad(), model.trace(prompts[:2]) as tr:
        states = tracers.last_token(model, [3, 0, 2]).save()
        tr.stop()
    with torch.no_grad(), model.trace(prompts[:2]) as tr:
        also = tracers.save_last_token(model, [1])
        tr.stop()
    assert states.shape == (2, 3, 64) and also.shape == (2, 1, 64)
    hf = model._module
    enc = model.tokenizer(prompts[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        hs = hf(**enc, output_hidden_states=True).hidden_states
    for col, layer in enumerate([3, 0, 2]):
        torch.testing.assert_close(states[:, col], hs[layer][:, -1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(also[:, 0], hs[1][:, -1], rtol=1e-5, atol=1e-5)


def test_layout_is_immutable_hashable_and_picklable() -> None:
    import pickle

    lay = tracers.Layout("transformer.h", "transformer.ln_f", attn="attn")
    assert lay == tracers.Layout("transformer.h", "transformer.ln_f", "attn", "mlp")
    assert hash(lay) == hash(tracers.ARCHITECTURES["gpt2"])
    assert pickle.loads(pickle.dumps(lay)) == lay
    with pytest.raises(AttributeError, match="immutable"):
        lay.blocks = "x"  # type: ignore[misc]
    with pytest.raises(tracers.TracerError, match="non-empty"):
        tracers.Layout("", "model.norm")
