"""Shared pieces of the CLI: options, error handling, JSON output."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.markup import escape

from ..console import console, stage
from ..errors import DataError, LirefsError, Terminated
from ..pipeline import MIN_HELD_OUT, check_held_out_size, check_split_size
from ..store import sigterm_as_interrupt

__all__ = [
    "BATCH_HELP",
    "CONTEXT_SETTINGS",
    "DEBUG_ENV",
    "DEFAULT_MODEL",
    "LIMIT",
    "MAX_INDICES",
    "MIN_HELD_OUT",
    "PERMUTATIONS",
    "SEED",
    "FiniteFloat",
    "HiddenArgument",
    "ModelArgs",
    "OneLineGroup",
    "calibration_entry",
    "check_held_out_size",
    "check_output",
    "check_split_size",
    "check_text",
    "deprecated_spelling",
    "direction_option",
    "echo_json",
    "fail",
    "handle_errors",
    "holds_output_lock",
    "json_option",
    "layer_option",
    "load_calibration",
    "local_model_options",
    "model_name",
    "model_options",
    "one_alpha",
    "os_error_line",
    "parse_alpha_list",
    "parse_alpha_specs",
    "parse_index_list",
    "permutations_option",
    "read_texts",
    "recorded_model",
    "resolve_direction",
    "split_options",
]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print one red line to stderr and exit with ``code``."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the CLI: one yellow line, without Python's source echo."""
    text = " ".join(str(message).split())
    console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


class OneLineGroup(click.Group):
    """The ``lirefs`` group: usage errors and warnings each come out as one line on stderr.

    click's own usage errors print the usage block, a hint and the error (three lines or more);
    here they print ``error: <what> (see '<command> --help')`` and still exit with code 2. While a
    command runs, Python warnings (e.g. a context-length or read-position warning) print as one
    ``warning:`` line instead of a file/line header and the source line; the previous handler is
    restored afterwards.
    """

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        with warnings.catch_warnings(), sigterm_as_interrupt():
            warnings.showwarning = _show_warning
            try:
                code = super().main(args, prog_name, complete_var, False, **extra)
            except click.UsageError as exc:
                where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "lirefs")
                what = exc.format_message().rstrip(".")
                fail(f"{what} (see '{where} --help')", code=exc.exit_code)
            except click.ClickException as exc:
                fail(exc.format_message(), code=exc.exit_code)
            except click.Abort as exc:
                if isinstance(exc.__cause__, Terminated):
                    fail(_TERMINATED, code=143)
                fail("aborted", code=1)
        sys.exit(code if isinstance(code, int) else 0)


_TERMINATED = "terminated by SIGTERM; its temporary files were removed, rerun to finish"

#: Set to 1 to see the Python traceback of an unexpected error instead of its one-line summary.
DEBUG_ENV = "LIREFS_DEBUG"


def os_error_line(exc: OSError) -> str:
    """One line for a failed file operation: which path, and what the system said."""
    where = exc.filename if exc.filename is not None else "a file"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    reason = exc.strerror or type(exc).__name__
    hints = {
        errno.ENOSPC: "free some disk space or write elsewhere",
        errno.EROFS: "the file system is read-only; write elsewhere (e.g. --out /tmp/...)",
        errno.EACCES: "you lack permission there; write elsewhere or fix the permissions",
        errno.EPERM: "you lack permission there; write elsewhere or fix the permissions",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "the path is a folder; give a file path",
        errno.ENOENT: "check the path",
        # mkdir of a folder on the way to the output, where a file of that name already is
        errno.EEXIST: "a file is in the way of a folder the output needs; choose another path",
    }
    hint = hints.get(exc.errno or -1)
    return f"{reason}: {where}" + (f" ({hint})" if hint else "")


def check_output(path: Path, *, folder: bool = False) -> None:
    """Refuse, before any work, an output path that cannot be written.

    A file where a folder of the path must be (``ENOTDIR``), a folder where the output file
    should go (``EISDIR``) and a read-only file system (``EROFS``) are found here, so a command
    fails in one line before it loads a model or computes anything, not after. A full disk is
    only found when writing; the atomic writers then leave no partial file.

    Args:
        path: the file (or, with ``folder``, the folder) the command will write.
        folder: ``path`` is a folder the command writes files into.

    Raises:
        OSError: with the errno and the offending path (``handle_errors`` makes it one line).
    """
    path = Path(path)
    if not folder and path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    parents = [path, *path.parents] if folder else list(path.parents)
    existing = None
    for part in parents:
        if part.exists() or part.is_symlink():
            existing = part
            break
    if existing is None:
        return
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))


def handle_errors(fn: F) -> F:
    """Turn every error into one red line on stderr and a non-zero exit code.

    The package's own errors, file-system errors (missing file, read-only or full disk, a path under
    a file) and undecodable text are user errors: exit code 2. Anything else is reported in one line
    too (exit code 1), naming the exception type; set ``LIREFS_DEBUG=1`` for the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except LirefsError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(os_error_line(exc))
        except UnicodeError as exc:
            fail(f"text that is not valid UTF-8 ({exc}); give UTF-8 text")
        except Terminated:
            fail(_TERMINATED, code=143)
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            detail = str(exc).splitlines()[0] if str(exc) else ""
            fail(
                f"unexpected {type(exc).__name__}: {detail} (set {DEBUG_ENV}=1 for the traceback)",
                code=1,
            )

    return wrapper  # type: ignore[return-value]


def holds_output_lock(fn: F) -> F:
    """Hold a lock on the command's ``out`` path while it runs (below ``handle_errors``).

    A second run writing the same output at the same time gets one line (``LockError``) instead
    of doing the same work twice. The lock file is ``.<name>.lock`` beside the output (an output
    folder stays as the command leaves it) and is removed, still held, when the command ends, so
    no file is left behind.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is None:
            return fn(*args, **kwargs)
        from ..store import lock

        target = Path(out)
        if not target.parent.is_dir():  # nothing to lock yet: the command's own checks say why
            return fn(*args, **kwargs)
        with contextlib.ExitStack() as held:
            # a read-only or full place cannot hold a lock file: the command's output check
            # then reports it in its own words
            with contextlib.suppress(OSError):
                held.enter_context(
                    lock(
                        target.with_name(f".{target.name}"),
                        what=f"the output {target}",
                        fix="wait for that run to finish, or write somewhere else",
                        remove=True,
                    )
                )
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: The model a command loads when neither ``--model`` nor an input file names one.
DEFAULT_MODEL = "smollm2-135m"

#: ``--limit``: at most N questions per class (or benchmark items); each command then checks
#: what it needs (the held-out half's size rule) and says which limit works.
LIMIT = click.IntRange(min=1)

#: ``--permutations``: label shuffles of the chance baseline (the analysis needs at least one).
PERMUTATIONS = click.IntRange(min=1)


def deprecated_spelling(old: str, new: str) -> None:
    """One ``warning:`` line on stderr: the old spelling ``old`` still works, ``new`` replaces it.

    ``lirefs.errors.deprecated`` (a ``DeprecationWarning``), shown even though Python hides
    deprecation warnings of library code by default: the person typing the command line is the
    one who should change it.
    """
    from ..errors import deprecated

    with warnings.catch_warnings():
        warnings.simplefilter("always", DeprecationWarning)
        deprecated(old, new)


def recorded_model(path: Path | None) -> str | None:
    """The model name a lirefs file (direction, activations) records, or ``None``.

    Reads only the safetensors header; a missing or foreign file gives ``None`` (loading it
    later says what is wrong in its own words).
    """
    if path is None:
        return None
    try:
        from safetensors import safe_open

        from ..store import SAFETENSORS_META_KEY

        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})[SAFETENSORS_META_KEY])
        name = (meta.get("model") or {}).get("name")
    except Exception:
        return None
    return name if isinstance(name, str) and name else None


def model_name(model: str | None, *files: Path | None) -> str:
    """``--model`` as given, else the model the first of ``files`` records, else ``DEFAULT_MODEL``.

    A given ``--model`` that disagrees with a file is refused later, in one line, by the file's
    own metadata check when it loads against the model.
    """
    if model:
        return model
    for path in files:
        name = recorded_model(path)
        if name:
            return name
    return DEFAULT_MODEL


@dataclass(frozen=True)
class ModelArgs:
    """The model options of a command (``--model`` ... ``--batch-size``) as one value.

    Commands take it as ``model_args`` (see :func:`model_options`) and load through it, so the
    rule "the given ``--model``, else the model the input file records, else the default" is
    applied in one place.
    """

    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    remote: bool = False
    batch_size: int | None = None

    def name(self, *files: Path | None) -> str:
        """``--model``, else the model the first of ``files`` records, else the default."""
        return model_name(self.model, *files)

    def load(self, *files: Path | None, name: str | None = None) -> Any:
        """Load ``name`` (default: :meth:`name` of ``files``) with a status line."""
        return load(
            name or self.name(*files), self.device, self.dtype, self.device_map, self.remote
        )


_MODEL_KEYS = tuple(f.name for f in fields(ModelArgs))

#: ``--model`` help of the commands that fall back to the default model.
MODEL_HELP = (
    "Built-in alias, local HF folder, .gguf file, or Hub id [default: the model the input file "
    f"records; {DEFAULT_MODEL} when there is none]."
)
#: ``--batch-size`` help of the commands whose batches are counted in prompts.
BATCH_HELP = (
    "Prompts per forward pass [default: collection fills batches up to 1,024 padded tokens; "
    "generation and evaluation use 8]."
)


def _gather_model_args(fn: F) -> F:
    """Hand the command its model options as one ``model_args`` (a :class:`ModelArgs`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {key: kwargs.pop(key) for key in _MODEL_KEYS if key in kwargs}
        return fn(*args, model_args=ModelArgs(**given), **kwargs)

    return cast(F, wrapper)


def model_options(
    fn: F | None = None, *, batch_help: str = BATCH_HELP, model_help: str = MODEL_HELP
) -> Any:
    """``--model``, ``--device``, ``--dtype``, ``--device-map``, ``--remote``, ``--batch-size``,
    handed to the command as one ``model_args`` (:class:`ModelArgs`). Use it bare
    (``@model_options``) or with the help of a command whose batch default differs."""

    def decorate(fn: F) -> F:
        fn = _local_options(_gather_model_args(fn), model_help)
        fn = click.option(
            "--batch-size", "-b", default=None, type=click.IntRange(min=1), help=batch_help
        )(fn)
        return click.option(
            "--remote",
            is_flag=True,
            default=False,
            help="Run every trace on NDIF (needs NDIF_API_KEY).",
        )(fn)

    return decorate if fn is None else decorate(fn)


def local_model_options(fn: F) -> F:
    """``--model``, ``--device``, ``--dtype``, ``--device-map`` as one ``model_args`` (a command
    that needs the weights on this machine: no ``--remote``)."""
    return _local_options(_gather_model_args(fn), MODEL_HELP)


def _local_options(fn: F, model_help: str) -> F:
    options = [
        click.option(
            "--model",
            "-m",
            default=None,
            help=model_help,
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
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def split_options(fn: F) -> F:
    """``--test-fraction`` and ``--seed`` of the held-out split (collect, demo)."""
    fn = click.option(
        "--seed", default=0, show_default=True, type=SEED, help="Seed of the train/test split."
    )(fn)
    return click.option(
        "--test-fraction",
        default=0.3,
        show_default=True,
        type=click.FloatRange(0.05, 0.95),
        help="Share of each class held out for choosing the layer.",
    )(fn)


def read_texts(path: Path, field: str, what: str) -> list[str]:
    """The ``what`` (e.g. "prompts") of a file: a text file (one per line) or JSONL (a string
    ``field`` per line); each checked by :func:`check_text`.

    Raises:
        DataError: not UTF-8, empty, a line that is not JSON or lacks a string ``field``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} holds no {what}; write one per line or JSONL with {field!r}")
    if not lines[0].lstrip().startswith("{"):
        return lines
    out = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get(field), str):
            raise DataError(f'{path} line {number} has no string "{field}" field')
        out.append(check_text(row[field], f"{path} line {number}"))
    return out


def json_option(fn: F) -> F:
    """``--json``: print machine-readable output on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of tables."
    )(fn)


#: An ``--alpha`` name resolved through ``--calibration`` (``Calibration.resolve`` reads it).
_CALIBRATED = re.compile(r"[+-]?calibrated(?:\s*/.*)?")


def parse_alpha_specs(values: tuple[str, ...]) -> list[float | str]:
    """``--alpha`` values, repeatable and with comma lists (``-a 0 -a 0.1`` or ``-a 0,0.1``),
    where a calibrated name (``calibrated``, ``-calibrated``, ``calibrated/2``) stays a string.

    The one parser of alpha lists: numbers become floats, names are left for
    ``Calibration.resolve`` (``parse_alpha_list`` with a calibration).

    Raises:
        DataError: a value that is neither a finite number nor a calibrated name (one line in the
            CLI, not a usage block).
    """
    out: list[float | str] = []
    for value in values:
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise DataError(
                f"--alpha {value!r} gives no number; pass numbers such as --alpha 0,0.1, or leave "
                "--alpha out for the defaults"
            )
        for part in parts:
            if not part:
                continue
            if _CALIBRATED.fullmatch(part):
                out.append(part)
                continue
            try:
                alpha = float(part)
            except ValueError:
                raise DataError(f"--alpha {part!r} is not a number (e.g. --alpha 0,0.1)") from None
            if not math.isfinite(alpha):
                raise DataError(f"--alpha {part!r} is not finite; give a finite number")
            out.append(alpha + 0.0)  # -0.0 -> 0.0
    return out


def parse_alpha_list(values: tuple[str, ...], calibration: Any = None) -> list[float]:
    """``--alpha`` values as numbers (``parse_alpha_specs``), calibrated names resolved through
    ``calibration`` (a ``lirefs.Calibration``, from ``load_calibration``).

    Raises:
        DataError: a value that is not a finite number or a calibrated name, a name without a
            calibration, or a side the calibration found no alpha for.
    """
    out: list[float] = []
    for spec in parse_alpha_specs(values):
        if isinstance(spec, float):
            out.append(spec)
        elif calibration is None:
            raise DataError(
                f"--alpha {spec!r} needs --calibration cal.json (from `lirefs calibrate` of this "
                "model and direction)"
            )
        else:
            out.append(calibration.resolve(spec) + 0.0)
    return out


def load_calibration(path: Path, direction_path: Path | None, layer: int | None, mode: str) -> Any:
    """``--calibration``: the file, checked against the direction file, layer and mode before
    the model loads (the loaded model's fingerprint is checked after, ``Calibration.check``).

    Raises:
        DataError: not a calibration file, or no ``--direction``.
        MetadataMismatchError: a calibration of another direction, layer or mode.
    """
    from ..calibrate import Calibration
    from ..direction import Direction
    from ..errors import MetadataMismatchError

    try:
        cal = Calibration.load(path)
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not a calibration file; pass a file from `lirefs calibrate`"
        ) from None
    if direction_path is None:
        raise DataError("--calibration needs the --direction it was made for")
    direction = Direction.load(direction_path)
    cal.check(None, direction)
    used = direction.resolve_layer(layer)
    if used != cal.layer:
        raise MetadataMismatchError(
            f"{path} calibrates layer {cal.layer}, but the direction is used at layer {used}; "
            f"pass --layer {cal.layer} or calibrate layer {used}"
        )
    if mode != cal.mode:
        raise MetadataMismatchError(
            f"{path} calibrates mode {cal.mode!r}, not {mode!r} (alphas differ between modes); "
            f"pass --mode {cal.mode} or calibrate mode {mode}"
        )
    return cal


def calibration_entry(
    cal: Any, path: Path, values: tuple[str, ...], alphas: list[float]
) -> dict[str, Any]:
    """The ``calibration`` entry of a run's metadata: the file (path, SHA-256), its budget and
    bounds, each calibrated name with its number, ``within_budget`` per alpha
    (``Calibration.within_budget``, keyed by ``repr(alpha)``) and the calibration points."""
    import hashlib

    names = {
        spec: cal.resolve(spec) + 0.0 for spec in parse_alpha_specs(values) if isinstance(spec, str)
    }
    return {
        "path": str(path),
        "hash": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "budget": cal.max_kl,
        "alpha_max": cal.alpha_max,
        "alpha_min": cal.alpha_min,
        "mode": cal.mode,
        "layer": cal.layer,
        "unit_hash": cal.unit_hash,
        "resolved": names,
        "within_budget": {f"{a!r}": cal.within_budget(a) for a in alphas},
        "points": cal.rows(),
    }


def check_text(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text, else ``DataError``.

    An argument whose bytes are not UTF-8 reaches Python as a string with surrogate escapes,
    which tokenizers reject with a bare ``TypeError``; refuse it here, naming the argument. Text
    over ``lirefs.inputs.MAX_PROMPT_CHARS`` characters is refused too (a tokenizer aborts on it).
    """
    from ..inputs import MAX_PROMPT_CHARS

    if len(value) > MAX_PROMPT_CHARS:
        raise DataError(
            f"{what} is {len(value):,} characters long, over lirefs' limit of "
            f"{MAX_PROMPT_CHARS:,} (lirefs.inputs.MAX_PROMPT_CHARS); shorten it"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = value.encode("utf-8", "surrogateescape")
        raise DataError(
            f"{what} {raw!r} is not valid UTF-8 text (byte {exc.start}); pass UTF-8 text"
        ) from None
    return value


#: Most indices an index-list option (``--layers``, ``--blocks``) may name: no model has more
#: layers, and a range such as ``1-100000000000`` is refused before any list is built.
MAX_INDICES = 4096


def parse_index_list(value: str | None, flag: str, examples: str, meaning: str) -> list[int] | None:
    """An index list option (``15``, ``10-20`` or ``3,4,5``) as ints; ``None`` stays ``None``.

    A range's span and a list's length are checked against :data:`MAX_INDICES` before any list is
    built; each index must lie in ``0..MAX_INDICES`` (the model's own range is checked later).

    Raises:
        DataError: ``{flag} {value!r} must look like {examples} ({meaning})``, one CLI line.
    """
    if value is None:
        return None
    shown = value if len(value) <= 60 else value[:57] + "..."
    if len(value) > 8 * MAX_INDICES:
        raise DataError(f"{flag} {shown!r} is too long: name at most {MAX_INDICES} indices")
    try:
        if "-" in value.strip("-") and "," not in value:
            lo_text, hi_text = value.split("-")
            lo, hi = int(lo_text), int(hi_text)
            bounds = [lo, hi]
        else:
            parts = value.split(",")
            if len(parts) > MAX_INDICES:
                raise DataError(f"{flag} {shown!r} names more than {MAX_INDICES} indices")
            bounds = [int(p) for p in parts]
    except ValueError:
        raise DataError(f"{flag} {shown!r} must look like {examples} ({meaning})") from None
    far = [b for b in bounds if not 0 <= b <= MAX_INDICES]
    if far:
        raise DataError(
            f"{flag} {shown!r} names index {far[0]}, outside 0..{MAX_INDICES} (no model has more "
            f"layers); give {meaning}"
        )
    if "-" in value.strip("-") and "," not in value:
        return list(range(bounds[0], bounds[1] + 1))
    return bounds


class FiniteFloat(click.ParamType):
    """A click option type: a finite float, optionally ``> 0`` or ``!= 0``; one line otherwise.

    Checked while the command line is parsed, so a value such as ``--max-kl -1`` fails before a
    model loads or any work runs, not after it.
    """

    name = "number"

    def __init__(self, *, positive: bool = False, nonzero: bool = False) -> None:
        self.positive = positive
        self.nonzero = nonzero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not finite; give a finite number", param, ctx)
        if self.positive and number <= 0:
            self.fail(f"{value!r} must be > 0", param, ctx)
        if self.nonzero and number == 0:
            self.fail(f"{value!r} steers nothing; give a nonzero number such as 0.05", param, ctx)
        return number + 0.0


#: ``--seed``: a whole number numpy and torch both accept as a seed.
SEED = click.IntRange(0, 2**32 - 1)


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

    what = f"loading {model}{' on NDIF' if remote else ''}"
    if not console.is_terminal:  # a terminal shows the status line instead
        stage(what)
    with console.status(f"{what}..."):
        return load_model(model, remote=remote, device=device, dtype=dtype, device_map=device_map)


# -- one vocabulary: the options every command spells the same way -------------------------------


class HiddenArgument(click.Argument):
    """A positional argument kept so old command lines still run: absent from usage and help."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def direction_option(*, required: bool, positional: bool = False, help: str | None = None) -> Any:
    """``-d/--direction PATH``: the direction file a command reads.

    With ``positional`` the command also takes the file as a hidden positional argument (its old
    spelling, ``legacy_direction``); :func:`resolve_direction` merges the two and warns about it.
    """
    text = help or "Direction file (.safetensors) from `lirefs direction` or `lirefs demo`."
    option = click.option(
        "--direction",
        "-d",
        "direction_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=text + (" Required." if required else ""),
    )

    def decorate(fn: F) -> F:
        fn = option(fn)
        if positional:
            fn = click.argument(
                "legacy_direction",
                cls=HiddenArgument,
                required=False,
                type=click.Path(dir_okay=False, path_type=Path),
            )(fn)
        return fn

    return decorate


def resolve_direction(option: Path | None, positional: Path | None, command: str) -> Path:
    """The direction file from ``-d/--direction`` or the old positional spelling (one warning).

    Raises:
        click.UsageError: both spellings, or neither.
    """
    if positional is not None:
        if option is not None:
            raise click.UsageError("give the direction once, with -d/--direction")
        deprecated_spelling(
            f"the direction as a positional argument of `lirefs {command}`",
            f"pass it as -d/--direction {positional}",
        )
        return positional
    if option is None:
        raise click.UsageError("missing option -d/--direction (the direction file)")
    return option


def layer_option(help: str) -> Any:
    """``-l/--layer N``: one residual index (0..L, l == HF hidden_states[l])."""
    return click.option("--layer", "-l", type=int, default=None, help=help)


def permutations_option(fn: F) -> F:
    """``--permutations N`` (>= 1): label shuffles of the chance baseline."""
    return click.option(
        "--permutations",
        default=200,
        show_default=True,
        type=PERMUTATIONS,
        help="Label shuffles of the shuffled-label chance baseline (at least 1).",
    )(fn)


def one_alpha(values: tuple[str, ...], command: str, default: float | None = None) -> float:
    """The single ``--alpha`` of a command that takes exactly one (parsed as everywhere).

    Raises:
        DataError: no alpha where there is no default, or more than one.
    """
    alphas = parse_alpha_list(values)
    if not alphas and default is not None:
        return default
    if len(alphas) != 1:
        got = "none" if not alphas else ", ".join(f"{a:g}" for a in alphas)
        raise DataError(f"{command} takes exactly one --alpha (e.g. --alpha 4), got {got}")
    return alphas[0]
