"""``lirefs export``: share a direction as a llama.cpp control vector, ablated weights or an
lm-eval steer file, each in the format its owner program reads."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    ModelArgs,
    check_output,
    deprecated_spelling,
    direction_option,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    layer_option,
    local_model_options,
    one_alpha,
    parse_index_list,
    resolve_direction,
)

__all__ = ["command"]

#: ``-d/--direction`` of every export (the file may also come first, the old spelling).
_DIRECTION = direction_option(required=True, positional=True)


def _layers(layer: str | None, layers: str | None) -> list[int] | None:
    """``-l/--layer N`` (one index) or ``--layers 10-20`` (several); ``-l 10-20`` is the old
    spelling of ``--layers``."""
    if layer is not None and layers is not None:
        raise DataError("give either -l/--layer (one layer) or --layers (several), not both")
    if layer is not None and not layer.strip().isdigit():
        deprecated_spelling(f"-l/--layer {layer} (several layers)", f"use --layers {layer}")
        layers, layer = layer, None
    if layer is not None:
        layers = layer.strip()
    return parse_index_list(layers, "--layers", "15, 10-20 or 3,4,5", "residual indices 1..L")


def _report(as_json: bool, what: str, path: Path) -> None:
    """Say what was written: layers, alpha, mode and offsets, read back from the export itself."""
    from ..export import describe_export

    done = describe_export(path)
    if as_json:
        offsets = {str(k): v for k, v in done["offsets"].items()}
        echo_json({**done, "offsets": offsets, "format": what, "path": str(path)})
    else:
        from ..console import console, out_console

        console.print(f"wrote {what}: {path}", markup=False)
        out_console.print(f"  {done['summary']}", markup=False)


@click.group("export", context_settings=CONTEXT_SETTINGS)
def command() -> None:
    """Export a direction for other programs (llama.cpp, transformers/vLLM, lm-eval).

    \b
    Layer offsets (lirefs layer l == HF hidden_states[l]):
      gguf     direction.{l-1}: llama.cpp adds it to block l-1's output
      ablated  r̂ of layer l removed from every weight that writes the residual stream
      lm-eval  "add" hook on the module whose output is hidden_states[l]
    """


@command.command("gguf", context_settings=CONTEXT_SETTINGS)
@_DIRECTION
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="The .gguf file to write.",
)
@click.option(
    "--layer",
    "-l",
    "layer",
    default=None,
    metavar="N",
    help="Residual index 1..L whose direction is added (default: the chosen layer).",
)
@click.option(
    "--layers",
    "layers",
    default=None,
    metavar="RANGE",
    help="Several residual indices 1..L, e.g. 10-20 or 3,4,5 (instead of --layer).",
)
@click.option(
    "--alpha",
    "-a",
    "alpha",
    multiple=True,
    help="Multiple of the unit direction to add; exactly one [default: 1].",
)
@json_option
@handle_errors
@holds_output_lock
def gguf(
    direction_path: Path | None,
    legacy_direction: Path | None,
    out: Path,
    layer: str | None,
    layers: str | None,
    alpha: tuple[str, ...],
    as_json: bool,
) -> None:
    """A llama.cpp control vector (also read by repeng and EasySteer).

    \b
    Examples:
      lirefs export gguf -d liref.safetensors -o liref.gguf -l 15 -a 4
      lirefs export gguf -d liref.safetensors -o liref.gguf --layers 10-20 -a 2
      llama-cli -m model.gguf --control-vector liref.gguf
    """
    from ..direction import Direction
    from ..export import export_gguf

    path_in = resolve_direction(direction_path, legacy_direction, "export gguf")
    chosen = _layers(layer, layers)
    scale = one_alpha(alpha, "export gguf", default=1.0)
    if out.exists():
        raise DataError(f"{out} already exists; give a new file name")
    liref = Direction.load(path_in)
    path = export_gguf(liref, out, layers=chosen, alpha=scale)
    _report(as_json, "gguf control vector", path)


@command.command("ablated", context_settings=CONTEXT_SETTINGS)
@_DIRECTION
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="A new (or empty) folder for the HF model.",
)
@layer_option("Residual index whose direction is removed (default: the chosen layer).")
@local_model_options
@json_option
@handle_errors
@holds_output_lock
def ablated(
    direction_path: Path | None,
    legacy_direction: Path | None,
    out: Path,
    layer: int | None,
    model_args: ModelArgs,
    as_json: bool,
) -> None:
    """A Hugging Face model folder with the direction orthogonalised out of its weights.

    A plain transformers forward of the folder equals `lirefs steer --mode ablate`; vLLM,
    TGI or llama.cpp (after convert_hf_to_gguf.py) then serve it at full speed.

    \b
    Examples:
      lirefs export ablated -d liref.safetensors -o smollm2-ablated/
      lirefs export ablated -d liref.safetensors -o ablated/ --model path/to/model -l 15
    """
    from ..checks import residual_index
    from ..direction import Direction
    from ..export import export_ablated

    path_in = resolve_direction(direction_path, legacy_direction, "export ablated")
    check_output(out, folder=True)  # all before the model loads
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an empty folder; give a new folder")
    liref = Direction.load(path_in)
    if layer is not None:
        residual_index(layer, liref.n_layers, "this direction has")
    nn_model = model_args.load(path_in)
    path = export_ablated(nn_model, liref, layer, out)
    _report(as_json, "ablated model folder", path)


@command.command("lm-eval", context_settings=CONTEXT_SETTINGS)
@_DIRECTION
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="The .pt steer file to write.",
)
@layer_option("Residual index 1..L to add at (default: the chosen layer).")
@click.option(
    "--alpha",
    "-a",
    "alpha",
    multiple=True,
    help="Multiple of the unit direction to add; exactly one, required.",
)
@json_option
@handle_errors
@holds_output_lock
def lm_eval(
    direction_path: Path | None,
    legacy_direction: Path | None,
    out: Path,
    layer: int | None,
    alpha: tuple[str, ...],
    as_json: bool,
) -> None:
    """The steer file of lm-evaluation-harness' `steered` model (action "add").

    \b
    Examples:
      lirefs export lm-eval -d liref.safetensors -o steer.pt -l 15 -a 8
      lm_eval --model steered --model_args pretrained=MODEL,steer_path=steer.pt --tasks gsm8k
    """
    from ..direction import Direction
    from ..export import export_lm_eval

    path_in = resolve_direction(direction_path, legacy_direction, "export lm-eval")
    scale = one_alpha(alpha, "export lm-eval")
    if out.exists():
        raise DataError(f"{out} already exists; give a new file name")
    liref = Direction.load(path_in)
    path = export_lm_eval(liref, out, layer=layer, alpha=scale)
    _report(as_json, "lm-eval steer file", path)
