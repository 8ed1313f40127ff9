"""``lirefs export``: share a direction as a llama.cpp control vector, ablated weights or an
lm-eval steer file, each in the format its owner program reads."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    check_output,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    load,
    model_options,
    parse_index_list,
)

__all__ = ["command"]

_DIRECTION = click.argument(
    "direction_path", metavar="DIRECTION", type=click.Path(dir_okay=False, path_type=Path)
)


def _layers(value: str | None) -> list[int] | None:
    return parse_index_list(value, "--layers", "15, 10-20 or 3,4,5", "residual indices 1..L")


def _report(as_json: bool, what: str, path: Path, **info: object) -> None:
    """Say what was written: layers, alpha, mode and offsets, read back from the export itself."""
    from ..export import describe_export

    done = describe_export(path)
    if as_json:
        offsets = {str(k): v for k, v in done["offsets"].items()}
        echo_json({**done, "offsets": offsets, "format": what, "path": str(path)})
    else:
        from ..console import console

        console.print(f"wrote {what}: {path}", markup=False)
        console.print(f"  {done['summary']}", markup=False)


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
    "--layers",
    "-l",
    "layers",
    default=None,
    help="Residual indices 1..L, e.g. 15 or 10-20 (default: the chosen layer).",
)
@click.option(
    "--alpha",
    "-a",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiple of the unit direction to add.",
)
@click.option(
    "--mode",
    default="add",
    show_default=True,
    help="Only 'add' has a GGUF meaning; other modes are refused.",
)
@json_option
@handle_errors
@holds_output_lock
def gguf(
    direction_path: Path, out: Path, layers: str | None, alpha: float, mode: str, as_json: bool
) -> None:
    """A llama.cpp control vector (also read by repeng and EasySteer).

    \b
    Examples:
      lirefs export gguf liref.safetensors -o liref.gguf -l 15 -a 4
      llama-cli -m model.gguf --control-vector liref.gguf
    """
    from ..direction import Direction
    from ..export import export_gguf

    if out.exists():
        raise DataError(f"{out} already exists; give a new file name")
    liref = Direction.load(direction_path)
    path = export_gguf(liref, out, layers=_layers(layers), alpha=alpha, mode=mode)
    _report(as_json, "gguf control vector", path, layers=_layers(layers), alpha=alpha)


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
@click.option(
    "--layer",
    "-l",
    type=int,
    default=None,
    help="Residual index whose direction is removed (default: the chosen layer).",
)
@model_options
@json_option
@handle_errors
@holds_output_lock
def ablated(
    direction_path: Path,
    out: Path,
    layer: int | None,
    model: str,
    device: str | None,
    dtype: str | None,
    device_map: str | None,
    remote: bool,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """A Hugging Face model folder with the direction orthogonalised out of its weights.

    A plain transformers forward of the folder equals `lirefs steer --mode ablate`; vLLM,
    TGI or llama.cpp (after convert_hf_to_gguf.py) then serve it at full speed.

    \b
    Examples:
      lirefs export ablated liref.safetensors -o smollm2-ablated/
      lirefs export ablated liref.safetensors -o ablated/ --model path/to/model -l 15
    """
    from ..checks import residual_index
    from ..direction import Direction
    from ..export import export_ablated

    if remote:
        raise DataError("export ablated needs the weights locally; drop --remote")
    check_output(out, folder=True)  # all before the model loads
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an empty folder; give a new folder")
    liref = Direction.load(direction_path)
    if layer is not None:
        residual_index(layer, liref.n_layers, "this direction has")
    nn_model = load(model, device, dtype, device_map, False)
    path = export_ablated(nn_model, liref, layer, out)
    _report(as_json, "ablated model folder", path, layer=layer)


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
@click.option(
    "--layer",
    "-l",
    type=int,
    default=None,
    help="Residual index 1..L to add at (default: the chosen layer).",
)
@click.option("--alpha", "-a", type=float, required=True, help="Multiple of the unit direction.")
@json_option
@handle_errors
@holds_output_lock
def lm_eval(
    direction_path: Path, out: Path, layer: int | None, alpha: float, as_json: bool
) -> None:
    """The steer file of lm-evaluation-harness' `steered` model (action "add").

    \b
    Examples:
      lirefs export lm-eval liref.safetensors -o steer.pt -l 15 -a 8
      lm_eval --model steered --model_args pretrained=MODEL,steer_path=steer.pt --tasks gsm8k
    """
    from ..direction import Direction
    from ..export import export_lm_eval

    if out.exists():
        raise DataError(f"{out} already exists; give a new file name")
    liref = Direction.load(direction_path)
    path = export_lm_eval(liref, out, layer=layer, alpha=alpha)
    _report(as_json, "lm-eval steer file", path, layer=layer, alpha=alpha)
