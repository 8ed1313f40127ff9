"""Checks of what a caller hands lirefs (prompts, stop strings, the model's device), run first.

Each check raises the package's own error in one line before any tokenizer or forward pass runs,
so bad input never reaches a library that would fail with a bare ``TypeError`` or abort the
process (a tokenizer given a 200 MB prompt). ``lirefs generate``/``collect_activations`` and the
command line call them on their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import DataError, DeviceError, StopArgumentError

__all__ = [
    "MAX_PROMPT_CHARS",
    "check_not_meta",
    "check_prompts",
    "check_stop",
    "check_text",
    "warn_beyond_context",
]

#: Longest prompt (in characters) lirefs accepts: about 250,000 tokens, beyond the context of the
#: models lirefs steers; a 200 MB prompt would otherwise abort the tokenizer's process.
MAX_PROMPT_CHARS = 1_000_000


def check_text(value: object, what: str, *, limit: int = MAX_PROMPT_CHARS) -> str:
    """``value`` if it is a ``str`` of valid Unicode text of at most ``limit`` characters.

    An argument whose bytes are not UTF-8 reaches Python as a string with surrogate escapes, which
    tokenizers reject with a bare ``TypeError``.

    Raises:
        DataError: not a string, not valid UTF-8 text, or longer than ``limit`` characters.
    """
    if not isinstance(value, str):
        raise DataError(f"{what} must be text (a str), got {type(value).__name__}")
    if len(value) > limit:
        raise DataError(
            f"{what} is {len(value):,} characters long, over lirefs' limit of {limit:,} "
            "(lirefs.inputs.MAX_PROMPT_CHARS); shorten it"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = value[max(0, exc.start - 10) : exc.end + 10].encode("utf-8", "surrogateescape")
        raise DataError(
            f"{what} is not valid UTF-8 text (near {raw!r}, character {exc.start}); pass UTF-8 text"
        ) from None
    return value


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """``prompts`` as a list, each checked by :func:`check_text`.

    Raises:
        DataError: a lone string (wrap it in a list), ``None``, no prompts, an entry that is not a
            non-empty string, not UTF-8, or over :data:`MAX_PROMPT_CHARS` characters.
    """
    if isinstance(prompts, str):
        raise DataError("prompts must be a list of strings, got a single string; wrap it in a list")
    if prompts is None:
        raise DataError("prompts is None: pass a list of non-empty strings")
    try:
        prompts = list(prompts)
    except TypeError:
        raise DataError(
            f"prompts must be a list of strings, got {type(prompts).__name__}"
        ) from None
    if not prompts:
        raise DataError("no prompts given: pass at least one prompt")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p]
    if bad:
        raise DataError(f"prompts must be non-empty strings; entries {bad[:5]} are not")
    return [check_text(p, f"prompt {i}") for i, p in enumerate(prompts)]


def check_stop(stop: object) -> list[str]:
    """A ``stop=`` argument as a list of non-empty strings: ``None`` -> ``[]``, a string -> ``[it]``.

    Raises:
        StopArgumentError: anything else (``stop=5``), or an empty stop string (a ``DataError``
            and a ``SteeringError``).
    """
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, Sequence) or not all(isinstance(s, str) for s in items):
        raise StopArgumentError(
            f"stop must be a string or a list of strings, got {stop!r}; e.g. stop=['\\n\\nQ:']"
        )
    if any(not s for s in items):
        raise StopArgumentError(
            "stop strings must not be empty; leave stop out to generate to the end"
        )
    return [check_text(s, "stop string", limit=10_000) for s in items]


def check_not_meta(model: Any, remote: object = False) -> None:
    """Refuse a model whose weights are all on PyTorch's ``meta`` device for a local run.

    A model built for NDIF (``load_model(..., remote=True)``) holds no weights here; running it
    locally fails deep inside torch ("Tensor on device meta is not on the expected device").

    Raises:
        DeviceError: a local run (``remote`` false) of a model with meta tensors.
    """
    if remote:
        return
    module = getattr(model, "_module", model)
    if getattr(module, "hf_device_map", None):
        return  # dispatched by accelerate: offloaded weights sit on meta until their block runs
    parameters = getattr(module, "parameters", None)
    if not callable(parameters):
        return
    # every weight on meta: nothing to run here. A model with only some blocks on meta can still
    # be read up to its first meta block (a trace that stops early), so that is not refused.
    flags = [bool(getattr(p, "is_meta", False)) for p in parameters()]
    if flags and all(flags):
        raise DeviceError(
            "the model's weights are on the meta device (it was loaded for NDIF, or not "
            "loaded): run it with remote=True (--remote), or load it with remote=False"
        )


def warn_beyond_context(
    model: Any, prompts: Sequence[str] | Sequence[Sequence[int]], what: str = "prompts"
) -> int:
    """Warn (``ContextLengthWarning``, one line) when prompts are longer than the model's context.

    A prompt beyond ``max_position_embeddings`` runs on positions the model never saw, so its
    generations (or states) are out of distribution; ``lirefs evaluate`` and
    ``collect_activations`` warn the same way. ``prompts`` are texts, or their token ids (special
    tokens in) when the caller has tokenized them already, which spares tokenizing twice.
    Returns how many prompts are too long.
    """
    import warnings

    from .errors import ContextLengthWarning

    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    tok = getattr(model, "tokenizer", None)
    if not isinstance(limit, int) or limit <= 0 or tok is None:
        return 0
    lengths = [len(tok(p).input_ids) if isinstance(p, str) else len(p) for p in prompts]
    long = [i for i, n in enumerate(lengths) if n > limit]
    if long:
        warnings.warn(
            f"{len(long)} {what} (e.g. number {long[0] + 1}, {lengths[long[0]]} tokens) are longer "
            f"than the model's context of {limit} tokens: the output is beyond what it was "
            "trained on; shorten them",
            ContextLengthWarning,
            stacklevel=2,
        )
    return len(long)
