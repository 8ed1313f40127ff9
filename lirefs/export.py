"""Share and serve a direction: llama.cpp control vectors, ablated weights, lm-eval steer files.

Each format puts the direction where its owner program expects it, with the owner's layer offset
(lirefs' residual index ``l == HF hidden_states[l]``; block ``b`` writes residual index ``b + 1``):

* ``export_gguf``: a llama.cpp control vector (``--control-vector``; repeng and EasySteer read and
  write the same files). llama.cpp adds ``direction.{n}`` to the OUTPUT of block ``n``, which is
  residual index ``n + 1``: ``direction.{l-1} = alpha * unit(l)``. Only additive steering has a
  meaning there. ``import_gguf`` reads such a file back (also files lirefs did not write).
* ``export_ablated``: a Hugging Face model folder whose weights no longer write ``r̂`` into the
  residual stream (embeddings, every attention output projection and MLP down projection, their
  biases), so a plain forward pass equals lirefs' ``"ablate"`` mode and any engine that loads HF
  weights serves the ablated model at full speed.
* ``export_lm_eval``: the steer file lm-evaluation-harness' ``steered`` model reads
  (``--model steered --model_args pretrained=...,steer_path=file.pt``): action ``"add"`` on the
  module whose output is residual index ``l``, which is lirefs' ``"add"`` mode.

Every writer refuses bad input before writing and writes through a temporary path, so a failure
never leaves a partial file or folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import tracers

from .checks import check_alpha, residual_index
from .direction import Direction
from .errors import ArchitectureError, DirectionError, ExportError, LayerError, SteeringError
from .layer_names import lm_eval_hookpoint
from .models import model_info
from .steer import get_mode
from .store import (
    LAYER_CONVENTION,
    atomic_folder,
    atomic_path,
    loads_json,
    make_metadata,
    version,
)

__all__ = [
    "ABLATION_FAMILIES",
    "ExportError",
    "describe_export",
    "export_ablated",
    "export_gguf",
    "export_lm_eval",
    "import_gguf",
]


logger = logging.getLogger("lirefs.export")

#: GGUF key under which lirefs keeps its own metadata (other readers ignore unknown keys).
GGUF_METADATA_KEY = "lirefs.metadata"


#: Smallest direction norm an export accepts: below it the paper's ``r / (|r| + 1e-8)`` is no longer
#: a unit vector (at 1e-6 it has length 0.99), and at 1e-100 it is all zeros in float32.
MIN_EXPORT_NORM = 1e-6

#: Most transformer blocks a foreign control-vector GGUF may describe (the largest models have a
#: few hundred); a file naming ``direction.1000000`` is refused before anything is allocated.
MAX_GGUF_BLOCKS = 4096


def _unit(direction: Direction, layer: int) -> torch.Tensor:
    """``tracers.unit_vector(r_l)``: the very vector lirefs' steering modes use, float64."""
    if not isinstance(direction, Direction):
        raise DirectionError(
            f"direction must be a lirefs.Direction, got {type(direction).__name__}; load one "
            "with lirefs.Direction.load(path)"
        )
    vector = direction.vector(layer)
    norm = float(vector.norm())
    if norm < MIN_EXPORT_NORM or not math.isfinite(norm):
        raise DirectionError(
            f"the direction at layer {layer} has norm {norm:.3g}: it cannot be normalised (the "
            f"unit vector r/(|r| + 1e-8) of a norm under {MIN_EXPORT_NORM:g} shrinks towards "
            "zeros); choose another layer"
        )
    return tracers.unit_vector(vector)


def _check_direction(direction: object) -> None:
    """``direction`` must be a ``Direction`` (not a bare tensor), else one ``ExportError`` line."""
    if not isinstance(direction, Direction):
        raise ExportError(
            f"direction must be a Direction, got {type(direction).__name__}; load one with "
            "lirefs.Direction.load(path) or build one with Direction.from_activations"
        )


def _check_alpha(alpha: Any) -> float:
    try:
        return check_alpha(alpha)
    except SteeringError as exc:
        raise ExportError(str(exc)) from None


def _check_new_file(path: str | os.PathLike[str], suffix: str) -> Path:
    target = Path(path)
    if target.suffix != suffix:
        raise ExportError(f"{target} should end in {suffix} (the format's own file name)")
    if target.is_dir():
        raise ExportError(f"{target} is a folder; give a file path ending in {suffix}")
    return target


def _model_of(direction: Direction) -> dict[str, Any]:
    return dict(direction.metadata.get("model") or {})


# ---------------------------------------------------------------------------------------------
# llama.cpp control vectors


def export_gguf(
    direction: Direction,
    path: str | os.PathLike[str],
    *,
    layers: Sequence[int] | None = None,
    alpha: float = 1.0,
    mode: str = "add",
) -> Path:
    """Write ``direction`` as a llama.cpp control vector (GGUF).

    Tensor ``direction.{l-1}`` holds ``alpha * unit(l)`` (float32, ``[d_model]``) for each
    residual index ``l`` in ``layers``, because llama.cpp adds ``direction.{n}`` to the output of
    block ``n``. For ``l == L`` that is the last block's output before the final norm (lirefs'
    ``hidden_states[L]`` is after it). The header carries ``general.architecture =
    "controlvector"``, ``controlvector.model_hint`` (the model's architecture),
    ``controlvector.layer_count`` and, under ``lirefs.metadata``, the direction's metadata.

    Args:
        direction: the direction to share.
        path: the ``.gguf`` file to write.
        layers: residual indices ``1..L`` to write (default: the direction's chosen layer).
        alpha: the added multiple (llama.cpp's ``--control-vector-scaled FILE SCALE`` scales it
            again).
        mode: must be ``"add"``: llama.cpp only adds vectors; the projection modes have no
            GGUF meaning.

    Returns:
        The path written.

    Raises:
        ExportError: a projection mode, a bad alpha or path.
        LayerError: a layer outside ``1..L``, or no layer given and none recorded.
    """
    import numpy as np
    from gguf import GGUFWriter

    _check_direction(direction)
    row = get_mode(mode)
    if row.edit != "add":
        raise ExportError(
            f"mode {row.name!r} scales or removes the component along r̂ in every block; a GGUF "
            "control vector can only be ADDED to block outputs (llama.cpp --control-vector), so "
            "only mode 'add' has a GGUF meaning. Use export_ablated for ablation"
        )
    a = _check_alpha(alpha)
    target = _check_new_file(path, ".gguf")
    chosen = _residual_layers(direction, layers, "GGUF")
    tensors = {
        f"direction.{layer - 1}": (a * _unit(direction, layer)).to(torch.float32).numpy()
        for layer in chosen
    }
    model = _model_of(direction)
    meta = {
        **direction.metadata,
        "export": {"format": "gguf", "layers": chosen, "alpha": a, "mode": "add"},
    }
    with atomic_path(target) as tmp:
        writer = GGUFWriter(str(tmp), "controlvector")
        writer.add_string("controlvector.model_hint", str(model.get("architecture") or "unknown"))
        writer.add_uint32("controlvector.layer_count", len(tensors))
        writer.add_string(GGUF_METADATA_KEY, json.dumps(meta, default=str))
        for name, values in tensors.items():
            writer.add_tensor(name, np.ascontiguousarray(values, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    logger.info(describe_export(target)["summary"])
    return target


def _residual_layers(direction: Direction, layers: Sequence[int] | None, what: str) -> list[int]:
    n = direction.n_layers
    if layers is None:
        if direction.chosen_layer is None:
            raise LayerError(
                f"this direction records no chosen layer; pass layers=[l] (residual indices "
                f"1..{n}) for the {what} file"
            )
        layers = [direction.resolve_layer()]
    if isinstance(layers, (int, str)):
        layers = [layers]  # type: ignore[list-item]
    out = []
    for layer in layers:
        value = residual_index(layer, n, "this direction has")
        if value == 0:
            raise LayerError(
                f"layer 0 (the embeddings) has no {what} slot: block outputs are residual indices "
                f"1..{n}; pass layers in 1..{n}"
            )
        out.append(value)
    if not out:
        raise LayerError(f"layers is empty: pass residual indices in 1..{n}")
    if len(set(out)) != len(out):
        raise LayerError(f"layers {list(layers)} contain repeats")
    return sorted(out)


def import_gguf(path: str | os.PathLike[str], *, n_layers: int | None = None) -> Direction:
    """Read a control-vector GGUF (lirefs', repeng's or llama.cpp's) as a ``Direction``.

    ``vector(l)`` is the file's ``direction.{l-1}`` (the vector llama.cpp adds to block
    ``l - 1``'s output); residual indices without a tensor are zero. Files lirefs wrote keep their
    metadata (model fingerprint, data hash); other files record the file's hash and model hint.

    Args:
        path: the ``.gguf`` file.
        n_layers: ``L`` of the model the vectors are for (default: the lirefs metadata, else the
            highest ``direction.{n}`` + 1).

    Raises:
        DirectionError: not a control-vector GGUF, tensors of different widths, or ``n_layers``
            too small for the file.
    """
    source = Path(path)
    reader = _gguf_control_vector_reader(source)
    if n_layers is not None:
        n_layers = _gguf_blocks(n_layers, f"n_layers for {source}")
    vectors = _gguf_vectors(source, reader.tensors)
    meta = _gguf_lirefs_metadata(source, reader.fields)
    if n_layers is None:
        recorded = ((meta or {}).get("model") or {}).get("n_layers")
        n_layers = (
            _gguf_blocks(recorded, f"{source}'s recorded model n_layers")
            if recorded is not None
            else max(vectors) + 1
        )
    if max(vectors) + 1 > n_layers:
        raise DirectionError(
            f"{source} has direction.{max(vectors)} (block {max(vectors)}), beyond a model of "
            f"{n_layers} blocks; pass the model's n_layers"
        )
    d_model = next(iter(vectors.values())).numel()
    table = torch.zeros(n_layers + 1, d_model, dtype=torch.float64)
    for block, values in vectors.items():
        table[block + 1] = values
    if meta is None:
        hint = _gguf_string(reader.fields, "controlvector.model_hint")
        meta = make_metadata(
            "direction",
            model=None,
            data={"hash": _file_hash(source), "source": f"gguf file {source.name}"},
            settings={
                "source": "gguf",
                "model_hint": hint,
                "layers": sorted(b + 1 for b in vectors),
            },
        )
    else:
        meta.pop("export", None)
    zeros = torch.zeros_like(table)
    return Direction(table, table.clone(), zeros, 0, 0, meta)


def _gguf_control_vector_reader(source: Path) -> Any:
    """Open ``source`` with gguf's reader and check it holds a control vector (not a model)."""
    from gguf import GGUFReader

    if not source.is_file():
        raise DirectionError(f"no GGUF file at {source}")
    try:
        reader = GGUFReader(str(source))
    except Exception as exc:  # the reader raises plain ValueError/struct errors on bad files
        raise DirectionError(f"{source} is not a readable GGUF file ({exc})") from None
    arch = _gguf_string(reader.fields, "general.architecture")
    if arch != "controlvector":
        raise DirectionError(
            f"{source} has general.architecture {arch!r}, not 'controlvector': it is not a "
            "control vector (a model GGUF holds weights, not a direction)"
        )
    return reader


def _gguf_vectors(source: Path, tensors: Any) -> dict[int, torch.Tensor]:
    """The file's ``direction.{block}`` tensors as ``{block: [d_model] float64}``.

    Every index, shape and value is checked before any table is allocated: a block beyond
    ``MAX_GGUF_BLOCKS``, a 2-D or empty tensor, a non-float type, mixed widths or NaN/inf values
    raise ``DirectionError``, as does a file with no such tensor.
    """
    found: dict[int, Any] = {}
    for tensor in tensors:
        match = re.fullmatch(r"direction\.(\d+)", tensor.name)
        if match is None:
            continue
        block = int(match.group(1))
        if block >= MAX_GGUF_BLOCKS:
            raise DirectionError(
                f"{source} has {tensor.name} (block {block}), beyond the {MAX_GGUF_BLOCKS} blocks "
                "lirefs reads; it is not a control vector of a real model"
            )
        shape = [int(n) for n in tensor.shape]
        if sum(n > 1 for n in shape) > 1:
            raise DirectionError(
                f"{source}: {tensor.name} is a 2-D tensor {shape}, not a [d_model] vector"
            )
        if int(tensor.n_elements) < 1:
            raise DirectionError(f"{source}: {tensor.name} holds no values (width 0)")
        if str(getattr(tensor.tensor_type, "name", "")) not in ("F32", "F16", "F64", "BF16"):
            raise DirectionError(
                f"{source}: {tensor.name} is stored as {getattr(tensor.tensor_type, 'name', '?')}, "
                "not as floats; a control vector holds F32 (or F16) values"
            )
        found[block] = tensor
    if not found:
        raise DirectionError(f"{source} holds no direction.{{n}} tensors")
    widths = {int(t.n_elements) for t in found.values()}
    if len(widths) != 1:
        raise DirectionError(f"{source} mixes vector widths {sorted(widths)}")
    vectors: dict[int, torch.Tensor] = {}
    for block, tensor in found.items():
        values = torch.from_numpy(tensor.data.copy()).to(torch.float64).reshape(-1)
        if not torch.isfinite(values).all():
            raise DirectionError(f"{source}: {tensor.name} holds NaN or inf values")
        vectors[block] = values
    return vectors


def _gguf_lirefs_metadata(source: Path, fields: Any) -> dict[str, Any] | None:
    """The metadata lirefs wrote into the file, or None for a file another tool wrote (or one
    written under another layer convention): then only what the tensors say is kept."""
    saved = _gguf_string(fields, GGUF_METADATA_KEY)
    meta: dict[str, Any] | None = None
    if saved:
        try:
            meta = loads_json(saved, what=f"{source}'s {GGUF_METADATA_KEY}", error=DirectionError)
        except DirectionError as exc:
            if "nested" in str(exc):
                raise
            meta = None
        if meta is not None and not isinstance(meta, dict):
            raise DirectionError(
                f"{source}: {GGUF_METADATA_KEY} is a JSON {type(meta).__name__}, not an object; "
                "the file was not written by lirefs"
            )
    if meta is not None and meta.get("layer_convention") != LAYER_CONVENTION:
        meta = None  # another convention: keep only what the tensors say
    if meta is not None and not isinstance(meta.get("model") or {}, dict):
        raise DirectionError(f"{source}: the recorded model is not a JSON object")
    return meta


def _gguf_blocks(value: Any, what: str) -> int:
    """A block count from a caller or a file: a whole number ``1..MAX_GGUF_BLOCKS``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GGUF_BLOCKS:
        raise DirectionError(
            f"{what} is {value!r}, expected a whole number of blocks from 1 to {MAX_GGUF_BLOCKS}"
        )
    return value


def _gguf_string(fields: Any, key: str) -> str | None:
    field = fields.get(key)
    if field is None or not field.data:
        return None
    try:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (UnicodeDecodeError, IndexError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------
# lm-evaluation-harness


def export_lm_eval(
    direction: Direction,
    path: str | os.PathLike[str],
    *,
    layer: int | None = None,
    alpha: float,
) -> Path:
    """Write the steer file lm-evaluation-harness' ``steered`` model reads (a ``.pt`` dict).

    ``{hookpoint: {"steering_vector": unit(l), "steering_coefficient": alpha, "action": "add",
    "bias": None, "head_index": None}}`` where ``hookpoint`` is the module (named inside the HF
    base model) whose output is residual index ``l``: block ``l - 1`` for ``l < L``, the final
    norm for ``l == L``. lm-eval adds ``alpha * unit(l)`` there at every position: lirefs'
    ``"add"`` mode. A ``<file>.json`` next to it carries the lirefs metadata (lm-eval reads every
    key of the ``.pt`` dict as a hookpoint, so the metadata cannot live inside it).

    Use it with ``lm_eval --model steered --model_args pretrained=MODEL,steer_path=FILE.pt``.

    Raises:
        ExportError: a bad alpha or path.
        LayerError: ``layer`` outside ``1..L`` (or none given and none recorded).
        ArchitectureError: the direction's model architecture has no known module names.
    """
    target = _check_new_file(path, ".pt")
    a = _check_alpha(alpha)
    chosen = _residual_layers(direction, None if layer is None else [layer], "lm-eval")[0]
    hookpoint = lm_eval_hookpoint(
        _model_of(direction).get("architecture"), chosen, direction.n_layers
    )
    config = {
        hookpoint: {
            "steering_vector": _unit(direction, chosen).to(torch.float32),
            "steering_coefficient": a,
            "action": "add",
            "bias": None,
            "head_index": None,
        }
    }
    meta = {
        **direction.metadata,
        "export": {
            "format": "lm-eval steered",
            "layer": chosen,
            "alpha": a,
            "hookpoint": hookpoint,
        },
    }
    sidecar = target.with_name(target.name + ".json")
    with atomic_path(target) as tmp:
        torch.save(config, tmp)
        with atomic_path(sidecar) as tmp_meta:
            tmp_meta.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    logger.info(describe_export(target)["summary"])
    return target


#: ``config.model_type`` -> the base-model prefix HF strips in ``model.base_model``.
# ---------------------------------------------------------------------------------------------
# ablated weights


@dataclass(frozen=True)
class _Family:
    """Which state-dict tensors write into the residual stream, per architecture."""

    embeddings: tuple[str, ...]  # [rows, d_model] tables added to the stream
    linear: str  # regex of nn.Linear weights [d_model, in] (and their .bias) writing the stream
    conv1d: str | None = None  # regex of GPT-2 Conv1D weights [in, d_model] (x @ W + b)
    lm_head: str = "lm_head.weight"


_LLAMA = _Family(
    embeddings=("model.embed_tokens.weight",),
    linear=r"model\.layers\.\d+\.(self_attn\.o_proj|mlp\.down_proj)\.(weight|bias)",
)

#: Families whose residual stream is a plain sum of embeddings, attention and MLP outputs (no
#: norm after a sub-module), so removing r̂ from what writes the stream is exact.
ABLATION_FAMILIES: dict[str, _Family] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "gpt2": _Family(
        embeddings=("transformer.wte.weight", "transformer.wpe.weight"),
        linear=r"$^",
        conv1d=r"transformer\.h\.\d+\.(attn|mlp)\.c_proj\.(weight|bias)",
    ),
    "gpt_neox": _Family(
        embeddings=("gpt_neox.embed_in.weight",),
        linear=r"gpt_neox\.layers\.\d+\.(attention\.dense|mlp\.dense_4h_to_h)\.(weight|bias)",
        lm_head="embed_out.weight",
    ),
}

_INEXACT = {
    "gemma2": "normalises each attention and MLP output (post_attention_layernorm, "
    "post_feedforward_layernorm) before adding it, which brings a component along r̂ back",
    "gemma3_text": "normalises each attention and MLP output before adding it (post norms)",
    "olmo2": "normalises each attention and MLP output before adding it (post norms)",
    "mixtral": "writes the stream through routed experts, not one down projection",
    "phi": "has no separate MLP output tensor lirefs' ablate mode edits in the same way",
    "phi3": "fuses its projections in a way lirefs does not map to weights yet",
}


def export_ablated(
    model: Any,
    direction: Direction,
    layer: int | None,
    folder: str | os.PathLike[str],
) -> Path:
    """Write an HF model folder whose weights have ``unit(layer)`` projected out of the stream.

    Every tensor that writes into the residual stream loses its component along
    ``u = tracers.unit_vector(r_layer)`` (the vector lirefs' ablate mode removes): embedding
    tables ``E <- E - (E u) u^T``, attention output and MLP down projections ``W <- W - u (u^T W)``
    and their biases ``b <- b - (u·b) u`` (GPT-2's Conv1D stores ``W`` transposed:
    ``W <- W - (W u) u^T``). Tied input/output embeddings are untied (the LM head keeps the
    original table) so only the stream changes. The stream then never carries ``u``, which is
    what ``mode="ablate"`` enforces at run time, so a plain transformers forward of the folder
    equals lirefs' ablate mode within float rounding. The user's model is not touched (the edit
    works on a copy of its state dict). A ``README.md`` model card names the direction, its data
    hash and the lirefs version.

    Args:
        model: the nnsight model from ``lirefs.load_model`` the direction was found on.
        direction: the direction (checked against ``model``).
        layer: residual index ``0..L`` whose direction to remove (default: the chosen layer).
        folder: a new (or empty) folder.

    Raises:
        ArchitectureError: a family whose weights cannot be orthogonalised exactly (e.g. Gemma-2's
            post-norms), or an unknown one.
        ExportError: ``folder`` exists and is not empty, or is a file.
        LayerError / DirectionError / MetadataMismatchError: as in ``lirefs.generate``.
    """
    from safetensors.torch import save_file

    _check_direction(direction)
    info = model_info(model)
    family = ABLATION_FAMILIES.get(info.architecture)
    if family is None:
        why = _INEXACT.get(info.architecture)
        if why is not None:
            raise ArchitectureError(
                f"cannot orthogonalise {info.architecture!r} weights exactly: it {why}; use "
                "lirefs.generate(..., mode='ablate') at run time instead"
            )
        known = ", ".join(sorted(ABLATION_FAMILIES))
        raise ArchitectureError(
            f"export_ablated knows the weights that write the residual stream for {known}, not "
            f"{info.architecture!r}; use lirefs.generate(..., mode='ablate') at run time"
        )
    target = Path(folder)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(
            f"{target} exists and is not an empty folder; give a new folder (nothing was written)"
        )
    direction.check_model(model)
    if layer is None and direction.chosen_layer is None:
        raise LayerError(
            f"this direction records no chosen layer; pass layer (residual index 0..{info.n_layers})"
        )
    layer = residual_index(direction.resolve_layer(layer), info.n_layers, "this model has")
    u = _unit(direction, layer)
    hf = model._module
    state = {k: v.detach().to("cpu").clone() for k, v in hf.state_dict().items()}
    edited = _orthogonalise(state, family, u, info.d_model)
    config = hf.config.to_dict()
    if family.lm_head in state or getattr(hf.config, "tie_word_embeddings", False):
        head = hf.get_output_embeddings()
        if head is not None:
            state[family.lm_head] = head.weight.detach().to("cpu").clone()
        config["tie_word_embeddings"] = False
    with atomic_folder(target) as tmp:
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
        generation = getattr(hf, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(tmp)
        model.tokenizer.save_pretrained(tmp)
        card = _ablation_card(info.name, direction, layer, edited)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        meta = {
            **direction.metadata,
            "export": {"format": "ablated weights", "layer": layer, "edited": edited},
        }
        (tmp / "lirefs_direction.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    logger.info(describe_export(target)["summary"])
    return target


def _orthogonalise(
    state: dict[str, torch.Tensor], family: _Family, u: torch.Tensor, d_model: int
) -> list[str]:
    """Remove ``u`` from every tensor of ``state`` that writes the stream (in place on the copy)."""
    edited = []

    def apply(name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        tensor = state[name]
        state[name] = fn(tensor.to(torch.float64)).to(tensor.dtype)
        edited.append(name)

    uu = u.to(torch.float64)
    for name in family.embeddings:
        if name not in state:
            raise ArchitectureError(f"expected the embedding table {name!r} in the state dict")
        apply(name, lambda e: e - torch.outer(e @ uu, uu))
    for name in sorted(state):
        if re.fullmatch(family.linear, name):
            if name.endswith(".bias"):
                apply(name, lambda b: b - (b @ uu) * uu)
            else:
                apply(name, lambda w: w - torch.outer(uu, uu @ w))
        elif family.conv1d is not None and re.fullmatch(family.conv1d, name):
            if name.endswith(".bias"):
                apply(name, lambda b: b - (b @ uu) * uu)
            else:
                apply(name, lambda w: w - torch.outer(w @ uu, uu))
    if len(edited) == len(family.embeddings):
        raise ArchitectureError("found no attention/MLP output projections to orthogonalise")
    return edited


def _file_hash(path: Path) -> str:
    """sha256 (hex, first 16 chars) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _ablation_card(name: str, direction: Direction, layer: int, edited: list[str]) -> str:
    """The README of an ablated folder: a ``huggingface_hub.ModelCard`` whose data names the
    Hub id of the original (``base_model``), the residual index and its layer map, and the mode.

    ``library_name`` is ``transformers``: the folder is a plain transformers model (what the Hub's
    "use this model" snippet should load); ``lirefs`` is among the tags.
    """
    from huggingface_hub import ModelCard

    from .direction import card_data

    data = direction.metadata.get("data") or {}
    made = direction.metadata.get("lirefs_version")
    model = {**_model_of(direction), "name": name}
    card = card_data(
        model,
        direction.n_layers,
        [layer],
        "ablate",
        library_name="transformers",
        tags=["lirefs", "directional-ablation"],
    )
    base = card.base_model or name
    text = (
        f"---\n{card.to_yaml()}\n---\n\n# {base}, direction ablated\n\n"
        f"- direction: reasoning-minus-memory mean difference (lirefs), residual index {layer}, "
        f"built from {direction.n_reasoning} reasoning and {direction.n_memory} memory prompts\n"
        f"- direction data hash: `{data.get('hash')}`\n"
        f"- direction made with lirefs {made}; exported with lirefs {version()}\n"
        f"- layer convention: {LAYER_CONVENTION}\n\n"
        "## Ablated weights\n\n"
        f"Base model: `{base}`. The unit direction of residual index {layer} "
        "(`l == hidden_states[l]`) was projected out of every tensor that writes the residual "
        f"stream ({len(edited)} tensors: embeddings, attention output and MLP down projections "
        'with their biases), so a plain forward pass equals lirefs\' `mode="ablate"`. The output '
        "embeddings are untied and unchanged.\n\n"
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")\n```\n'
    )
    return str(ModelCard(text))


# ---------------------------------------------------------------------------------------------
# what an export wrote


def describe_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an export wrote, read back from the written file's own lirefs metadata.

    Returns ``{"format", "path", "layers", "alpha", "mode", "offsets", "summary"}``: ``layers``
    are lirefs residual indices (``l == hidden_states[l]``), ``offsets`` maps each to the name
    the owner program uses (llama.cpp ``direction.{l-1}``, lm-eval's hookpoint, the ablated
    residual index), and ``summary`` is one line for people (the CLI prints it, the writers log
    it to the ``lirefs.export`` logger).

    Raises:
        ExportError: ``path`` is not a file or folder a lirefs export wrote.
    """
    target = Path(path)
    export: dict[str, Any] = {}
    if target.suffix == ".gguf" and target.is_file():
        from gguf import GGUFReader

        saved = _gguf_string(GGUFReader(str(target)).fields, GGUF_METADATA_KEY)
        export = (json.loads(saved) if saved else {}).get("export") or {}
        layers = [int(x) for x in export.get("layers") or []]
        offsets: dict[int, str] = {layer: f"direction.{layer - 1}" for layer in layers}
        where = "llama.cpp tensor"
    elif target.suffix == ".pt" and target.is_file():
        sidecar = target.with_name(target.name + ".json")
        if sidecar.is_file():
            export = json.loads(sidecar.read_text(encoding="utf-8")).get("export") or {}
        layers = [] if export.get("layer") is None else [int(export["layer"])]
        offsets = {layer: str(export.get("hookpoint")) for layer in layers}
        where = "lm-eval hookpoint"
    elif target.is_dir() and (target / "lirefs_direction.json").is_file():
        meta = json.loads((target / "lirefs_direction.json").read_text(encoding="utf-8"))
        export = meta.get("export") or {}
        layers = [] if export.get("layer") is None else [int(export["layer"])]
        n_edited = len(export.get("edited") or [])
        offsets = {layer: f"r̂ removed from {n_edited} weight tensors" for layer in layers}
        export.setdefault("mode", "ablate")
        where = "ablated"
    if not export:
        raise ExportError(f"{target} is not a file or folder written by a lirefs export")
    alpha = export.get("alpha")
    mode = export.get("mode", "add")
    shown = ", ".join(f"{layer} -> {offsets[layer]}" for layer in layers)
    summary = f"{export.get('format')}: layers {shown} ({where})"
    if alpha is not None:
        summary += f", alpha {alpha:g}"
    summary += f", mode {mode}"
    return {
        "format": export.get("format"),
        "path": str(target),
        "layers": layers,
        "alpha": alpha,
        "mode": mode,
        "offsets": offsets,
        "summary": summary,
    }
