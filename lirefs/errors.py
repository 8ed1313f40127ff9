"""Exceptions raised by lirefs.

Every error a user can cause by giving bad input is one of these types. The message names the value
that was given, what was expected, and how to fix it; the CLI prints it as one line and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "ActivationError",
    "ArchitectureError",
    "CacheMismatchError",
    "DataError",
    "DeviceError",
    "DirectionError",
    "LayerError",
    "LirefsError",
    "LockError",
    "MetadataMismatchError",
    "ModelNotFoundError",
    "RemoteError",
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


class Terminated(KeyboardInterrupt):
    """The process got ``SIGTERM`` (``timeout``, a scheduler, a container stop): raised like
    Ctrl-C's ``KeyboardInterrupt`` so every writer removes its temporary files on the way out."""
