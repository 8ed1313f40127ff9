"""Validation of user input shared by every module: one implementation of each check.

Each check returns the value in its canonical form or raises one of the package's own errors whose
message names the value given, what was expected and the fix. Layer words: a *layer* is a residual
index ``0..L`` (l == HF ``output_hidden_states[l]``); a *block* is a decoder block number
``0..L-1``; block ``b`` reads residual index ``b`` and writes ``b + 1``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import tracers

from .errors import (
    ActivationError,
    ArchitectureError,
    DataError,
    LayerError,
    LirefsError,
    RemoteError,
    SteeringError,
)
from .inputs import check_prompts

__all__ = [
    "TRACER_ERRORS",
    "block_indices",
    "check_alpha",
    "check_prompts",
    "check_remote",
    "finite_number",
    "positive_int",
    "renamed_keywords",
    "residual_index",
    "residual_indices",
    "translate_tracer_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The lirefs error each ``tracers`` error becomes (most specific first); any other
#: ``tracers.TracerError`` becomes a plain ``LirefsError``. ``tracers`` cannot raise lirefs' types
#: itself: it travels to the NDIF server, which does not have lirefs.
TRACER_ERRORS: tuple[tuple[type[Exception], type[LirefsError]], ...] = (
    (tracers.UnsupportedArchitectureError, ArchitectureError),
    (tracers.LayerOutOfRangeError, LayerError),
    (tracers.PositionError, DataError),
    (tracers.ShapeError, ActivationError),
)


@contextlib.contextmanager
def translate_tracer_errors() -> Iterator[None]:
    """Re-raise a ``tracers.TracerError`` from the block as the matching lirefs error.

    The one place where tracers' own errors become the package's (see ``TRACER_ERRORS``); the
    message is kept, the tracers traceback is dropped (``from None``) so the CLI shows one line.
    """
    try:
        yield
    except tracers.TracerError as exc:
        for theirs, ours in TRACER_ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from None
        raise LirefsError(str(exc)) from None


def residual_index(layer: Any, n: int, owner: str = "this model has") -> int:
    """``layer`` as an int if it is a whole number in ``0..n``, else ``LayerError``.

    ``n`` is L (the number of blocks): residual indices run 0 (embeddings) to L (after the final
    norm), l == HF ``output_hidden_states[l]``. ``owner`` starts the message's second half
    (``"this direction has"``, ``"these states have"``).
    """
    try:
        whole = not isinstance(layer, bool) and int(layer) == layer
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise LayerError(f"layer {layer!r} is not a whole number: {owner} residual indices 0..{n}")
    if not 0 <= int(layer) <= n:
        raise LayerError(f"layer {layer!r} is out of range: {owner} residual indices 0..{n}")
    return int(layer)


def residual_indices(layers: Sequence[int] | None, n: int) -> list[int]:
    """``layers`` as a list of distinct residual indices in ``0..n``; ``None`` means all of them."""
    if layers is None:
        return list(range(n + 1))
    out = [residual_index(layer, n) for layer in layers]
    if len(set(out)) != len(out):
        raise LayerError(f"layers {list(layers)} contain repeats")
    if not out:
        raise LayerError("layers is empty: pass at least one residual index")
    return out


def block_indices(blocks: Sequence[int] | None, n: int, name: str = "blocks") -> list[int] | None:
    """``blocks`` as a sorted list of distinct block numbers in ``0..n-1``; ``None`` stays ``None``.

    ``n`` is L, the number of decoder blocks. ``name`` is the argument's name in messages.
    """
    if blocks is None:
        return None
    if isinstance(blocks, (str, bytes)):
        raise LayerError(f"{name}= must be a list of block numbers 0..{n - 1}, got {blocks!r}")
    out = []
    for i in blocks:
        try:
            whole = not isinstance(i, bool) and int(i) == i
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole or not 0 <= int(i) < n:
            raise LayerError(
                f"block {i!r} in {name}= is out of range: this model has blocks 0..{n - 1}"
            )
        out.append(int(i))
    if not out:
        raise LayerError(f"{name}= is empty: pass at least one block number, or None for all")
    if len(set(out)) != len(out):
        raise LayerError(f"{name}= {list(blocks)} contains repeats")
    return sorted(out)


def renamed_keywords(**old_to_new: str) -> Callable[[F], F]:
    """Keep an old keyword argument working for one release, with a ``DeprecationWarning``.

    ``@renamed_keywords(liref="direction")`` lets callers still write ``f(liref=d)``: the value is
    passed on as ``direction=d`` and the warning names the new keyword. Giving both is an error.
    """

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"{func.__name__}() got both {old}= and {new}=; pass only {new}= "
                        f"({old}= is its old name)"
                    )
                warnings.warn(
                    f"{func.__name__}({old}=...) is deprecated: use {new}=...; {old}= will be "
                    "removed in the next release",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def positive_int(value: Any, name: str, hint: str = "") -> int:
    """``value`` as an int if it is a whole number ``>= 1`` (numpy ints too), else ``DataError``.

    ``name`` is the argument's name in the message; ``hint`` ends it (e.g. ``"or None for a token
    budget"``).
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise DataError(f"{name} must be a whole number >= 1{hint}, got {value!r}")
    return int(value)


def finite_number(
    value: Any, name: str, error: type[LirefsError] = DataError, hint: str = ""
) -> float:
    """``value`` as a float if it is a finite real number (numpy scalars too), else ``error``.

    ``np.float32(0.1)`` and ``np.int64(2)`` are numbers; ``None``, strings, booleans, NaN and
    infinities are not. ``name`` is the argument's name in the message; ``hint`` ends it.
    """
    import math
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number{hint}, got {value!r}")
    try:
        out = float(value)
    except (OverflowError, ValueError):
        out = math.inf
    if not math.isfinite(out):
        raise error(f"{name} must be a finite number{hint}, got {value!r}")
    return out


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """``alpha`` as a float if it is a finite real number (numpy scalars too), else
    ``SteeringError``; ``-0.0`` becomes ``0.0``. The one alpha check: which alphas a steering mode
    gives a meaning is the mode's own question (``lirefs.steer.Mode.check_alpha``).
    """
    import math
    import numbers

    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise SteeringError(f"{name} must be a number, got {alpha!r}")
    if not math.isfinite(float(alpha)):
        raise SteeringError(f"{name} must be finite, got {alpha!r}")
    return float(alpha) + 0.0  # -0.0 -> 0.0


def check_remote(remote: object) -> bool | str:
    """Validate a ``remote=`` argument: ``False``/``None``, ``True`` or ``"local"``."""
    if remote is None or remote is False:
        return False
    if remote is True or remote == "local":
        return remote  # type: ignore[return-value]
    raise RemoteError(
        f"remote must be False, True or 'local', got {remote!r}; pass remote=True to run on NDIF"
    )
