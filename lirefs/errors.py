"""Exceptions raised by lirefs.

Every error a user can cause by giving bad input is one of these types. The message names the value
that was given, what was expected, and how to fix it; the CLI prints it as one line and exits non-zero.
Every warning class lirefs emits lives here too, and ``deprecated`` is the one way an old spelling
warns. The modules that first defined a class (``lirefs.steer``, ``lirefs.export``, ...) keep
re-exporting it under the same name.
"""

from __future__ import annotations

import warnings

__all__ = [
    "ActivationError",
    "ArchitectureError",
    "CacheMismatchError",
    "ContextLengthWarning",
    "DataError",
    "DeviceError",
    "DirectionError",
    "ExportError",
    "LayerError",
    "LirefsError",
    "LockError",
    "MetadataMismatchError",
    "ModelNotFoundError",
    "PlotsUnavailableError",
    "ReadMismatchWarning",
    "RemoteError",
    "RemoteVersionWarning",
    "SteeringError",
    "StopArgumentError",
    "StopStringWarning",
    "TracersClashError",
]


class LirefsError(Exception):
    """Base class of every error lirefs raises on purpose."""


class ModelNotFoundError(LirefsError, ValueError):
    """The model name is neither a built-in alias, a local folder, a GGUF file nor a Hub id."""


class ArchitectureError(LirefsError, ValueError):
    """The model's architecture is not one whose residual stream lirefs knows how to find."""


class LayerError(LirefsError, IndexError):
    """A layer index is outside 0..L (l == HF ``output_hidden_states[l]``)."""


class DataError(LirefsError, ValueError):
    """Question data is empty, one-class, or a data file is malformed."""


class ActivationError(LirefsError, ValueError):
    """Activations have the wrong shape or contain NaN/inf."""


class DeviceError(LirefsError, ValueError):
    """The device or device map asked for does not exist or is not available here."""


class DirectionError(LirefsError, ValueError):
    """A direction cannot be used as asked (zero vector, wrong dimension, bad file)."""


class MetadataMismatchError(LirefsError, ValueError):
    """A saved artifact was made with another model, layer convention or data set."""


class CacheMismatchError(MetadataMismatchError):
    """An activation cache folder belongs to another model, prompt set or setting."""


class LockError(LirefsError, RuntimeError):
    """Another run holds the lock on the same cache folder or output file."""


class RemoteError(LirefsError, RuntimeError):
    """NDIF could not be reached, rejected the request, or the API key is missing."""


class TracersClashError(LirefsError, ImportError):
    """``import tracers`` found another package of that name instead of the one lirefs ships."""


class SteeringError(LirefsError, ValueError):
    """A steering setting is invalid: unknown mode or positions, non-finite alpha, no direction."""


class StopArgumentError(SteeringError, DataError):
    """A ``stop=`` argument that is not a string or a list of non-empty strings.

    It is a steering setting and caller input at once, so ``except SteeringError`` and
    ``except DataError`` both catch it.
    """


class ExportError(LirefsError, ValueError):
    """A direction cannot be exported as asked (wrong mode, unusable path, no meaning there)."""


class PlotsUnavailableError(LirefsError, ImportError):
    """matplotlib, the optional plotting extra, is not installed."""


# ---------------------------------------------------------------------------------------------
# warnings


class StopStringWarning(UserWarning):
    """A stop string occurred in none of a run's outputs while some ran to the token budget.

    Nothing is cut or lost (the texts are whole); the string is most likely mistyped (a shell's
    literal ``\\n`` for a newline) or the budget too small to reach it.
    """


class ContextLengthWarning(UserWarning):
    """Some prompts are longer than the model's context: their states are out of distribution."""


class ReadMismatchWarning(UserWarning):
    """A direction is used with prompts formatted, or states read, another way than it was made."""


class RemoteVersionWarning(UserWarning):
    """The NDIF server runs other versions of nnsight/torch/transformers/Python than this client."""


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (``DeprecationWarning``) that ``old`` still works for now and ``new`` replaces it.

    The one deprecation message of the package: ``"{old} is deprecated: {new}; the old form goes
    in the next release"``. ``stacklevel`` counts from the caller of ``deprecated`` (3: the caller
    of the function that calls this).
    """
    warnings.warn(
        f"{old} is deprecated: {new}; the old form goes in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


class Terminated(KeyboardInterrupt):
    """The process got ``SIGTERM`` (``timeout``, a scheduler, a container stop): raised like
    Ctrl-C's ``KeyboardInterrupt`` so every writer removes its temporary files on the way out."""
