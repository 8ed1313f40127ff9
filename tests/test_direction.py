"""Direction math against numpy, projections, and the file format with its metadata checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lirefs
from lirefs.errors import (
    ActivationError,
    DataError,
    DirectionError,
    LayerError,
    MetadataMismatchError,
)


def random_acts(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, 8, generator=g) + shift


def test_difference_of_means_matches_numpy() -> None:
    r, m = random_acts(7, 0, 1.0), random_acts(5, 1)
    liref = lirefs.Direction.from_activations(r, m)
    expected = r.double().numpy().mean(0) - m.double().numpy().mean(0)
    np.testing.assert_allclose(liref.vectors.numpy(), expected, rtol=0, atol=1e-12)
    assert liref.vectors.dtype == torch.float64
    assert liref.n_layers == 3 and liref.d_model == 8
    assert (liref.n_reasoning, liref.n_memory) == (7, 5)


def test_unit_and_scores_follow_the_method() -> None:
    r, m = random_acts(6, 2, 0.5), random_acts(6, 3)
    liref = lirefs.Direction.from_activations(r, m)
    for layer in range(4):
        v = liref.vector(layer).numpy()
        u = liref.unit(layer).numpy()
        np.testing.assert_allclose(u, v / np.linalg.norm(v), atol=1e-12)
        scores = liref.scores(r, layer).numpy()
        np.testing.assert_allclose(scores, r[:, layer].double().numpy() @ u, atol=1e-9)
        np.testing.assert_allclose(liref.scores(r[:, layer], layer).numpy(), scores)


def test_zero_direction_has_no_unit_vector() -> None:
    same = random_acts(4, 4)
    liref = lirefs.Direction.from_activations(same, same.clone())
    with pytest.raises(DirectionError, match="all zeros"):
        liref.unit(2)
    assert torch.equal(liref.units(), torch.zeros(4, 8, dtype=torch.float64))


def test_bad_activations_are_refused() -> None:
    good = random_acts(3, 5)
    with pytest.raises(DataError, match="empty"):
        lirefs.Direction.from_activations(good[:0], good)
    with pytest.raises(ActivationError, match="disagree"):
        lirefs.Direction.from_activations(good, good[:, :2])
    bad = good.clone()
    bad[0, 1, 2] = float("inf")
    with pytest.raises(ActivationError, match="NaN or inf"):
        lirefs.Direction.from_activations(bad, good)
    with pytest.raises(ActivationError, match=r"\[n, L \+ 1, d_model\]"):
        lirefs.Direction.from_activations(good[0], good)
    liref = lirefs.Direction.from_activations(good, random_acts(3, 6))
    with pytest.raises(
        LayerError, match=r"out of range: this direction has residual indices 0\.\.3"
    ):
        liref.unit(4)
    for bad_layer in ("a", None, True, 1.5):
        with pytest.raises(LayerError, match="not a whole number"):
            liref.unit(bad_layer)  # type: ignore[arg-type]
    assert torch.equal(liref.unit(2.0), liref.unit(2))  # type: ignore[arg-type]
    with pytest.raises(DirectionError, match="do not match"):
        liref.scores(torch.zeros(2, 4, 9), 1)


def test_save_load_round_trip_keeps_tensors_and_metadata(
    make_tiny: Any, prompts: list[str], tmp_path: Path
) -> None:
    model = make_tiny("llama")
    acts = lirefs.collect_activations(model, prompts)
    liref = lirefs.Direction.from_activations(
        acts[:3], acts[3:], model=model, data={"hash": "abc"}, settings={"prompt": "Q/A"}
    )
    path = liref.save(tmp_path / "liref.safetensors")
    back = lirefs.Direction.load(path, model=model)
    assert torch.equal(back.vectors, liref.vectors)
    assert torch.equal(back.mean_reasoning, liref.mean_reasoning)
    assert (back.n_reasoning, back.n_memory) == (3, 2)
    meta = back.metadata
    assert meta["model"]["fingerprint"] == lirefs.model_info(model).fingerprint
    assert meta["layer_convention"].startswith("hf_hidden_states")
    assert meta["data"]["hash"] == "abc" and meta["settings"] == {"prompt": "Q/A"}
    assert meta["lirefs_version"] == lirefs.__version__
    assert list(tmp_path.iterdir()) == [path], "no temporary files left behind"


def test_load_refuses_a_direction_from_another_model(
    make_tiny: Any, prompts: list[str], tmp_path: Path
) -> None:
    llama, qwen = make_tiny("llama"), make_tiny("qwen2")
    acts = lirefs.collect_activations(llama, prompts)
    path = lirefs.Direction.from_activations(acts[:3], acts[3:], model=llama).save(
        tmp_path / "d.safetensors"
    )
    with pytest.raises(MetadataMismatchError, match="tiny-llama"):
        lirefs.Direction.load(path, model=qwen)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(DirectionError, match="does not exist"):
        lirefs.Direction.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(DirectionError, match="not a safetensors"):
        lirefs.Direction.load(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(DirectionError, match="not a lirefs direction"):
        lirefs.Direction.load(other)


def test_load_refuses_another_layer_convention(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    liref = lirefs.Direction.from_activations(random_acts(3, 7, 1.0), random_acts(3, 8))
    path = liref.save(tmp_path / "d.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["lirefs"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["layer_convention"] = "block outputs, 0-based"
    save_file(tensors, str(path), metadata={"lirefs": json.dumps(meta)})
    with pytest.raises(MetadataMismatchError, match="layer convention"):
        lirefs.Direction.load(path)
