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


# --------------------------------------------------------------------------------------------
# the held-out layer choice recorded in Python (README flow), arithmetic, .to, apply


def test_readme_flow_records_the_layer_and_exports_without_l(
    make_tiny: Any, tmp_path: Path
) -> None:
    from click.testing import CliRunner
    from gguf import GGUFReader

    from lirefs.cli import main

    model = make_tiny("llama")
    sets = lirefs.data.load("builtin")
    train, test = sets.split(test_fraction=0.3)
    n = 12
    r = lirefs.collect_activations(model, train.reasoning_prompts()[:n])
    m = lirefs.collect_activations(model, train.memory_prompts()[:n])
    liref = lirefs.Direction.from_activations(r, m, model=model)
    report = lirefs.layer_report(
        liref,
        lirefs.collect_activations(model, test.reasoning_prompts()[:n]),
        lirefs.collect_activations(model, test.memory_prompts()[:n]),
        n_permutations=20,
    )
    chosen = liref.with_layer(report)
    assert liref.chosen_layer is None  # the original is untouched
    assert chosen.chosen_layer == report.best_layer
    assert chosen.metadata["settings"]["layer_rule"] == "auroc"  # as `lirefs direction` writes
    assert torch.equal(chosen.vectors, liref.vectors)
    path = chosen.save(tmp_path / "liref.safetensors")
    out = tmp_path / "liref.gguf"
    result = CliRunner().invoke(main, ["export", "gguf", "-d", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    names = [t.name for t in GGUFReader(str(out)).tensors]
    assert names == [f"direction.{report.best_layer - 1}"]  # llama.cpp's block = layer - 1
    # without the recorded layer the same export is refused
    bare = liref.save(tmp_path / "bare.safetensors")
    result = CliRunner().invoke(
        main, ["export", "gguf", "-d", str(bare), "-o", str(tmp_path / "b.gguf")]
    )
    assert result.exit_code != 0


def test_with_layer_checks_its_input() -> None:
    liref = lirefs.Direction.from_activations(random_acts(5, 0, 1.0), random_acts(5, 1))
    assert liref.with_layer(2).chosen_layer == 2
    assert liref.with_layer(2).metadata["settings"]["layer_rule"] == "given"
    with pytest.raises(LayerError):
        liref.with_layer(9)
    with pytest.raises(LayerError):
        liref.with_layer("2")
    other = lirefs.Direction.from_activations(
        random_acts(5, 2, 1.0), random_acts(5, 3), data={"hash": "other"}
    )
    report = lirefs.layer_report(other, random_acts(6, 4, 1.0), random_acts(6, 5), n_permutations=5)
    with pytest.raises(DirectionError, match="another direction"):
        liref.with_layer(report)


def test_arithmetic_matches_the_tensors_and_records_its_operands(tmp_path: Path) -> None:
    a = lirefs.Direction.from_activations(
        random_acts(5, 0, 1.0), random_acts(5, 1), data={"hash": "aaa"}
    )
    b = lirefs.Direction.from_activations(
        random_acts(4, 2, 0.5), random_acts(6, 3), data={"hash": "bbb"}
    )
    a = a.with_layer(2)
    b = b.with_layer(2)
    va, vb = a.vectors.numpy(), b.vectors.numpy()
    cases = {
        "sub": (a - b, va - vb),
        "add": (a + b, va + vb),
        "scale": (2 * a, 2 * va),
        "scale_right": (a * 0.5, 0.5 * va),
        "neg": (-a, -va),
        "div": (a / 4, va / 4),
    }
    for name, (got, want) in cases.items():
        np.testing.assert_allclose(got.vectors.numpy(), want, rtol=0, atol=1e-12, err_msg=name)
        # the class means combine alike, so vectors == mean_reasoning - mean_memory still holds
        np.testing.assert_allclose(
            (got.mean_reasoning - got.mean_memory).numpy(), want, rtol=0, atol=1e-12
        )
    diff = a - b
    combined = diff.metadata["settings"]["combined"]
    assert combined["op"] == "sub" and len(combined["operands"]) == 2
    assert [o["data_hash"] for o in combined["operands"]] == ["aaa", "bbb"]
    assert combined["operands"][0]["vectors_hash"] != combined["operands"][1]["vectors_hash"]
    assert diff.chosen_layer == 2 and (diff.n_reasoning, diff.n_memory) == (9, 11)
    assert (-a).metadata["settings"]["combined"]["op"] == "neg"
    assert (2 * a).metadata["settings"]["combined"]["factor"] == 2.0
    # a combination of a combination records the chain
    nested = (diff * 3).metadata["settings"]["combined"]["operands"][0]["combined"]
    assert nested["op"] == "sub"
    loaded = lirefs.Direction.load(diff.save(tmp_path / "diff.safetensors"))
    assert loaded.metadata["settings"]["combined"] == combined
    assert torch.equal(loaded.vectors, diff.vectors)
    # unit of -d is minus the unit of d
    assert torch.allclose((-a).unit(2), -a.unit(2))


def test_arithmetic_refuses_other_models_and_shapes() -> None:
    a = lirefs.Direction.from_activations(random_acts(5, 0, 1.0), random_acts(5, 1))
    wide = lirefs.Direction.from_activations(torch.randn(3, 4, 6), torch.randn(3, 4, 6))
    with pytest.raises(DirectionError, match="one model"):
        _ = a - wide
    other = lirefs.Direction.from_activations(random_acts(5, 2, 1.0), random_acts(5, 3))
    other.metadata["model"] = {"name": "m2", "fingerprint": "f2"}
    with pytest.raises(DirectionError, match="same model"):
        _ = a + other
    with pytest.raises(TypeError):
        _ = a + 1.0  # type: ignore[operator]
    with pytest.raises(DirectionError, match="finite"):
        _ = a * float("nan")
    with pytest.raises(DirectionError, match="by 0"):
        _ = a / 0


def test_to_moves_and_keeps_float64() -> None:
    a = lirefs.Direction.from_activations(random_acts(5, 0, 1.0), random_acts(5, 1))
    moved = a.to("cpu")
    assert moved.device == torch.device("cpu") and torch.equal(moved.vectors, a.vectors)
    assert a.to(dtype=torch.float64) is a
    with pytest.raises(DirectionError, match="float64"):
        a.to(dtype=torch.float16)
    if torch.cuda.is_available():
        on_gpu = a.to("cuda")
        assert on_gpu.vectors.is_cuda and on_gpu.mean_memory.is_cuda


def test_apply_steers_the_model_in_hand_and_restores_it(make_tiny: Any, prompts: list[str]) -> None:
    from reference_hooks import reference_generate

    model = make_tiny("llama")
    info = lirefs.model_info(model)
    g = torch.Generator().manual_seed(7)
    acts = torch.randn(8, info.n_layers + 1, info.d_model, generator=g)
    liref = lirefs.Direction.from_activations(acts[:4] + 0.5, acts[4:], model=model)
    hf, tok = model._module, model.tokenizer
    setting = {"layer": 2, "alpha": 3.0, "mode": "project"}

    def ref(steer: bool) -> list[list[int]]:
        vector = liref.vector(2) if steer else None
        return reference_generate(
            hf, tok, prompts, vector=vector, alpha=3.0, mode="project", layer=2, max_new_tokens=6
        )

    def ours() -> list[list[int]]:
        return lirefs.generate(model, prompts, max_new_tokens=6).token_ids

    plain, steered = ref(False), ref(True)
    assert plain != steered
    assert ours() == plain
    with liref.apply(model, **setting) as handle:
        assert handle is model
        assert ours() == steered
    assert ours() == plain
    with pytest.raises(RuntimeError, match="boom"), liref.apply(model, **setting):
        assert ours() == steered
        raise RuntimeError("boom")
    assert ours() == plain
    # a bad setting is refused before anything is stored
    with pytest.raises(lirefs.errors.LirefsError), liref.apply(model, layer=2, mode="nope"):
        pass
    assert ours() == plain
