"""tracers: architecture layouts, reading blocks, and what the package may import."""

from __future__ import annotations

import ast
import os
import subprocess
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


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


#: Dunder names a module may bind at its top level or in a class body (never read back by code).
ALLOWED_DUNDER_STORES = {"__all__", "__slots__"}
ATTRIBUTE_BUILTINS = {"getattr", "setattr", "hasattr", "delattr"}


def dunder_accesses(source: str) -> list[str]:
    """Every dunder attribute access in ``source``, as ``"line N: what"``.

    Flags ``x.__foo__`` (including ``object.__setattr__`` and ``super().__init__``), the
    ``getattr``/``setattr``/``hasattr``/``delattr`` builtins given a literal dunder name, and any
    dunder name read as a variable (``__builtins__``, ``__import__``, ``__file__``...). Defining a
    dunder method (``def __eq__``) is not an access; Python calls it itself.
    """
    problems: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(source)):
        where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if isinstance(node, ast.Attribute) and is_dunder(node.attr):
            problems.append((*where, f".{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_BUILTINS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_dunder(node.args[1].value)
        ):
            problems.append((*where, f"{node.func.id}(..., {node.args[1].value!r})"))
        elif (
            isinstance(node, ast.Name)
            and is_dunder(node.id)
            and not (isinstance(node.ctx, ast.Store) and node.id in ALLOWED_DUNDER_STORES)
        ):
            problems.append((*where, f"name {node.id}"))
    return [f"line {line}: {what}" for line, _, what in sorted(problems)]


@pytest.mark.parametrize("path", sorted(TRACERS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_tracers_access_no_dunder_attribute(path: Path) -> None:
    """Production NDIF guards dunder attribute access in the code it runs; tracers travels there."""
    assert dunder_accesses(path.read_text(encoding="utf-8")) == []


def test_the_dunder_check_catches_every_form() -> None:
    source = (
        "from __future__ import annotations\n"
        "__all__ = ['f']\n"
        "class C:\n"
        "    __slots__ = ('_x',)\n"
        "    def __init__(self, x):\n"
        "        object.__setattr__(self, '_x', x)\n"
        "        super().__init__()\n"
        "def f(x):\n"
        "    a = getattr(x, '__dict__')\n"
        "    setattr(x, '__class__', int)\n"
        "    b = getattr(x, 'shape', None)\n"
        "    c = type(x).__name__\n"
        "    return __builtins__, __import__('os')\n"
    )
    assert dunder_accesses(source) == [
        "line 6: .__setattr__",
        "line 7: .__init__",
        "line 9: getattr(..., '__dict__')",
        "line 10: setattr(..., '__class__')",
        "line 12: .__name__",
        "line 13: name __builtins__",
        "line 13: name __import__",
    ]


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
    assert lay != tracers.Layout("transformer.h", "transformer.ln_f")
    assert hash(lay) == hash(tracers.ARCHITECTURES["gpt2"])
    assert {lay: 1}[tracers.ARCHITECTURES["gpt2"]] == 1
    back = pickle.loads(pickle.dumps(lay))
    assert back == lay and back.attn == "attn" and back.final_norm == "transformer.ln_f"
    assert repr(lay) == (
        "Layout(blocks='transformer.h', final_norm='transformer.ln_f', attn='attn', mlp='mlp')"
    )
    for name in ("blocks", "final_norm", "attn", "mlp"):
        with pytest.raises(AttributeError):
            setattr(lay, name, "x")
    with pytest.raises(AttributeError):
        lay.extra = "x"  # type: ignore[attr-defined]
    assert lay.blocks == "transformer.h"
    with pytest.raises(tracers.TracerError, match="non-empty"):
        tracers.Layout("", "model.norm")
    with pytest.raises(tracers.TracerError, match="got None"):
        tracers.Layout("model.layers", None)  # type: ignore[arg-type]


def test_check_layer_refuses_what_is_not_a_whole_number() -> None:
    for bad in (True, 1.5, "1", None, float("nan"), float("inf")):
        with pytest.raises(tracers.LayerOutOfRangeError, match=r"0\.\.3"):
            tracers.check_layer(bad, 3)  # type: ignore[arg-type]
    assert tracers.check_layer(torch.tensor(2), 3) == 2


def read_in_a_trace(model: Any, prompts: list[str], read: Any, **kwargs: Any) -> None:
    with torch.no_grad(), model.trace(prompts) as tr:
        read(model, **kwargs)
        tr.stop()


def test_token_states_refuses_a_repeated_layer(make_tiny: Any, prompts: list[str]) -> None:
    with pytest.raises(tracers.ShapeError, match=r"layers \[1, 1\] repeat an index"):
        read_in_a_trace(make_tiny("llama"), prompts[:2], tracers.token_states, layers=[1, 1])


def test_token_states_refuses_an_index_of_another_batch(make_tiny: Any, prompts: list[str]) -> None:
    with pytest.raises(tracers.ShapeError, match=r"tensor of 2 token positions, got \(3,\)"):
        read_in_a_trace(
            make_tiny("llama"),
            prompts[:2],
            tracers.token_states,
            layers=[1],
            index=torch.tensor([0, 1, 2]),
        )


def test_last_token_refuses_no_layers(make_tiny: Any, prompts: list[str]) -> None:
    with pytest.raises(tracers.ShapeError, match="layers is empty"):
        read_in_a_trace(make_tiny("llama"), prompts[:2], tracers.last_token, layers=[])


OPTIMIZED_SCRIPT = """
import torch, transformers
from nnsight import NNsight
import tracers

assert not __debug__, "run me with python -O"
torch.manual_seed(0)
config = transformers.LlamaConfig(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=64,
)
model = NNsight(transformers.AutoModelForCausalLM.from_config(config).eval())
ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
cases = {
    "index": dict(layers=[1], index=torch.zeros(2, 2, dtype=torch.long)),
    "repeat": dict(layers=[1, 1]),
    "range": dict(layers=[5]),
}
for name, kwargs in cases.items():
    try:
        with torch.no_grad(), model.trace(ids) as tr:
            tracers.token_states(model, **kwargs)
            tr.stop()
    except tracers.TracerError as exc:
        print(name, type(exc).__name__)
    else:
        print(name, "no error")
"""


def test_shape_checks_hold_under_python_optimize(tmp_path: Path) -> None:
    """``python -O`` strips asserts; the checks are raises, so they still fire."""
    script = tmp_path / "optimized.py"
    script.write_text(OPTIMIZED_SCRIPT, encoding="utf-8")
    repo = str(TRACERS_DIR.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-O", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-4:] == [
        "index ShapeError",
        "repeat ShapeError",
        "range LayerOutOfRangeError",
        "",
    ]
