"""Reading direction files a user (or an editor) may have changed: one package error, never garbage.

Hand-made edits of the metadata and tensors, and property-based ones (hypothesis): every file
either loads as a usable direction (finite float64 ``[L + 1, d_model]`` tensors, whole class sizes,
a best layer in range) or raises one of lirefs' own errors with a one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lirefs
from lirefs.errors import ActivationError, DirectionError, LirefsError, MetadataMismatchError


def _direction(layers: int = 4, width: int = 8) -> lirefs.Direction:
    g = torch.Generator().manual_seed(0)
    r = torch.randn(3, layers, width, generator=g) + 1.0
    m = torch.randn(2, layers, width, generator=g)
    return lirefs.Direction.from_activations(r, m, settings={"best_layer": 2})


def _parts(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["lirefs"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    return tensors, meta


def _write(path: Path, tensors: dict[str, torch.Tensor], header: str) -> None:
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"lirefs": header}
    )


def _edited(tmp_path: Path, edit: Any) -> Path:
    path = _direction().save(tmp_path / "d.safetensors")
    tensors, meta = _parts(path)
    header = edit(tensors, meta)
    _write(path, tensors, header if isinstance(header, str) else json.dumps(meta))
    return path


def _set(key: str, value: Any) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if value is _DROP:
            meta.pop(key)
        else:
            meta[key] = value

    return edit


def _setting(key: str, value: Any) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        meta["settings"][key] = value

    return edit


def _tensor(name: str, value: Any) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        tensors[name] = value(tensors[name])

    return edit


_DROP = object()


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t[1, 3] = float("nan")
    return t


def _inf(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t[0, 0] = float("inf")
    return t


EDITS = {
    "header not JSON": (lambda t, m: "{not json", "not JSON"),
    "header a list": (lambda t, m: "[1, 2]", "not a JSON object"),
    "n_reasoning missing": (_set("n_reasoning", _DROP), "n_reasoning is None"),
    "n_reasoning a string": (_set("n_reasoning", "3"), "n_reasoning is '3'"),
    "n_reasoning a float": (_set("n_reasoning", 2.5), "n_reasoning is 2.5"),
    "n_memory zero": (_set("n_memory", 0), "n_memory is 0"),
    "n_memory true": (_set("n_memory", True), "n_memory is True"),
    "best_layer a word": (_setting("best_layer", "x"), "best_layer 'x'"),
    "best_layer out of range": (_setting("best_layer", 99), "best_layer 99"),
    "settings a list": (_set("settings", [1]), "settings must be a JSON object"),
    "model a string": (_set("model", "gpt2"), "records model 'gpt2'"),
    "vectors 1-D": (_tensor("vectors", lambda t: t[0]), r"vectors is torch.float64 \(8,\)"),
    "vectors of another shape": (_tensor("vectors", lambda t: t[:, :4]), "disagree"),
    "means of ints": (_tensor("mean_memory", lambda t: t.long()), "mean_memory is torch.int64"),
    "vectors with NaN": (_tensor("vectors", _nan), "vectors holds NaN or inf"),
    "mean with inf": (_tensor("mean_reasoning", _inf), "mean_reasoning holds NaN or inf"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_an_edited_direction_file_is_one_clear_error(tmp_path: Path, case: str) -> None:
    edit, says = EDITS[case]
    path = _edited(tmp_path, edit)
    with pytest.raises(LirefsError, match=says) as err:
        lirefs.Direction.load(path)
    assert isinstance(err.value, (DirectionError, MetadataMismatchError))
    assert "\n" not in str(err.value)


def test_a_direction_that_records_no_model_is_refused_on_a_model(
    tmp_path: Path, make_tiny: Any
) -> None:
    model = make_tiny("llama")
    info = lirefs.model_info(model)
    path = _edited(tmp_path, _set("model", None))
    tensors, meta = _parts(path)
    shaped = {k: torch.zeros(info.n_layers + 1, info.d_model, dtype=torch.float64) for k in tensors}
    shaped["mean_reasoning"][:, 0] = 1.0
    shaped["vectors"][:, 0] = 1.0
    _write(path, shaped, json.dumps(meta))
    assert lirefs.Direction.load(path).d_model == info.d_model  # without a model: nothing to check
    with pytest.raises(MetadataMismatchError, match=r"records no model \(\"model\": null\)"):
        lirefs.Direction.load(path, model=model)


@pytest.mark.parametrize("bad", [None, 3, ["d.safetensors"]])
def test_a_direction_path_that_is_not_a_path_is_refused(bad: Any) -> None:
    with pytest.raises(DirectionError, match="must be a file path"):
        lirefs.Direction.load(bad)


def test_a_folder_is_not_a_direction_file(tmp_path: Path) -> None:
    with pytest.raises(DirectionError, match="is a folder"):
        lirefs.Direction.load(tmp_path)


def test_from_activations_refuses_states_of_another_shape_than_the_model(make_tiny: Any) -> None:
    model = make_tiny("llama")  # [L + 1, d_model] = [4, 64]
    g = torch.Generator().manual_seed(1)
    other = torch.randn(3, 31, 576, generator=g)  # SmolLM2-shaped states
    with pytest.raises(
        ActivationError, match=r"model 'tiny-llama' has \[L \+ 1, d_model\] = \[4, 64\]"
    ):
        lirefs.Direction.from_activations(other, other + 1, model=model)


# ---------------------------------------------------------------------------------------------
# property-based: any metadata, any tensors -> a usable direction or one package error

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = ["n_reasoning", "n_memory", "model", "settings", "data", "kind", "layer_convention"]


def _assert_usable(d: lirefs.Direction) -> None:
    assert d.vectors.dtype == torch.float64 and d.vectors.dim() == 2
    assert d.vectors.shape == d.mean_reasoning.shape == d.mean_memory.shape
    assert torch.isfinite(d.vectors).all()
    assert isinstance(d.n_reasoning, int) and d.n_reasoning >= 1
    assert isinstance(d.n_memory, int) and d.n_memory >= 1
    best = d.chosen_layer
    assert best is None or 0 <= best <= d.n_layers


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.dictionaries(st.sampled_from(_KEYS), _json, max_size=4), best=_json)
def test_any_metadata_loads_or_is_a_package_error(
    tmp_path: Path, edits: dict[str, Any], best: Any
) -> None:
    path = _direction().save(tmp_path / "d.safetensors")
    tensors, meta = _parts(path)
    meta.update(edits)
    if isinstance(meta.get("settings"), dict):
        meta["settings"]["best_layer"] = best
    _write(path, tensors, json.dumps(meta))
    try:
        direction = lirefs.Direction.load(path)
    except LirefsError as exc:
        assert "\n" not in str(exc)
        return
    _assert_usable(direction)


_dims = st.lists(st.integers(0, 5), min_size=0, max_size=3)
_dtypes = st.sampled_from([torch.float64, torch.float32, torch.bfloat16, torch.int64, torch.bool])
_fill = st.sampled_from([0.0, 1.5, float("nan"), float("inf"), -1e308])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shapes=st.tuples(_dims, _dims, _dims), dtype=_dtypes, fill=_fill)
def test_any_tensors_load_or_are_a_package_error(
    tmp_path: Path, shapes: tuple[list[int], ...], dtype: torch.dtype, fill: float
) -> None:
    path = _direction().save(tmp_path / "d.safetensors")
    _, meta = _parts(path)
    tensors = {
        name: torch.full(shape, fill, dtype=torch.float64).to(dtype)
        for name, shape in zip(("vectors", "mean_reasoning", "mean_memory"), shapes, strict=True)
    }
    _write(path, tensors, json.dumps(meta))
    try:
        direction = lirefs.Direction.load(path)
    except LirefsError as exc:
        assert "\n" not in str(exc)
        return
    _assert_usable(direction)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_damaged_bytes_load_or_are_a_package_error(tmp_path: Path, data: st.DataObject) -> None:
    path = _direction().save(tmp_path / "d.safetensors")
    raw = bytearray(path.read_bytes())
    cut = data.draw(st.integers(0, len(raw)), label="keep")
    flips = data.draw(st.lists(st.integers(0, len(raw) - 1), max_size=4), label="flip")
    for i in flips:
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw[:cut]))
    try:
        direction = lirefs.Direction.load(path)
    except LirefsError as exc:
        assert "\n" not in str(exc)
        return
    _assert_usable(direction)
