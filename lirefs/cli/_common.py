"""Shared pieces of the CLI: options, error handling, JSON output."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..console import console
from ..errors import DataError, LirefsError

__all__ = [
    "CONTEXT_SETTINGS",
    "echo_json",
    "fail",
    "handle_errors",
    "json_option",
    "model_options",
    "parse_alpha_list",
    "remote_value",
]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print one red line to stderr and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn lirefs errors (and a few obvious user errors) into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LirefsError as exc:
            fail(str(exc))
        except FileNotFoundError as exc:
            fail(f"file not found: {exc.filename}")
        except KeyboardInterrupt:
            fail("interrupted", code=130)

    return wrapper  # type: ignore[return-value]


def model_options(fn: F) -> F:
    """``--model``, ``--device``, ``--dtype``, ``--remote``, ``--batch-size``."""
    options = [
        click.option(
            "--model",
            "-m",
            default="smollm2-135m",
            show_default=True,
            help="Built-in alias, local HF folder, .gguf file, or Hub id.",
        ),
        click.option(
            "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)."
        ),
        click.option(
            "--dtype",
            default=None,
            help="float32, bfloat16 or float16 (default: float32 on CPU, bfloat16 on GPU).",
        ),
        click.option("--device-map", default=None, help="Split the model over GPUs, e.g. 'auto'."),
        click.option(
            "--remote",
            is_flag=True,
            default=False,
            help="Run every trace on NDIF (needs NDIF_API_KEY).",
        ),
        click.option(
            "--batch-size",
            "-b",
            default=None,
            type=click.IntRange(min=1),
            help="Prompts per forward pass [default: collection fills batches up to 1,024 padded "
            "tokens; generation and evaluation use 8].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def json_option(fn: F) -> F:
    """``--json``: print machine-readable output on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of tables."
    )(fn)


def remote_value(remote: bool) -> bool | str:
    """``--remote`` as the ``remote=`` argument of the API."""
    return bool(remote)


def parse_alpha_list(values: tuple[str, ...]) -> list[float]:
    """``--alpha`` values, repeatable and with comma lists (``-a 0 -a 0.1`` or ``-a 0,0.1``).

    Raises:
        DataError: a value that is not a finite number (one line in the CLI, not a usage block).
    """
    out: list[float] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                alpha = float(part)
            except ValueError:
                raise DataError(f"--alpha {part!r} is not a number (e.g. --alpha 0,0.1)") from None
            if not math.isfinite(alpha):
                raise DataError(f"--alpha {part!r} is not finite; give a finite number")
            out.append(alpha + 0.0)  # -0.0 -> 0.0
    return out


def echo_json(obj: Any) -> None:
    """Write ``obj`` as JSON to stdout."""
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=_default))


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def load(
    model: str, device: str | None, dtype: str | None, device_map: str | None, remote: bool
) -> Any:
    """Load the model a command asked for, with a status line while it loads."""
    from ..models import load_model

    with console.status(f"loading {model}{' on NDIF' if remote else ''}..."):
        return load_model(model, remote=remote, device=device, dtype=dtype, device_map=device_map)
