"""Where a prompt's state is read: its last token, the end of its question, or a mean of its tail.

The paper reads the state at the last prompt token (``read="last"``). With a chat template every
prompt ends in the same template tokens (``<|im_end|>\\n<|im_start|>assistant\\n``), so the last
token is a template token in every prompt; ``read="question_end"`` reads the token just before
the longest token suffix that every prompt of the set shares (or before suffix token ids the
caller gives), i.e. the last token that is not common template text. ``read="mean-last-K"``
averages the last ``K`` real tokens of each prompt (never pad positions).

This module parses and checks the read spelling, finds the shared suffix, and says when a
direction read one way is used with prompts formatted or read another way.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DataError, ReadMismatchWarning

__all__ = [
    "CHAT_FORMAT",
    "PLAIN_FORMAT",
    "READS",
    "ReadMismatchWarning",
    "ReadSpec",
    "check_read_positions",
    "common_suffix",
    "parse_read",
    "prompt_format_of",
    "read_mismatch",
    "warn_read_mismatch",
]

#: ``settings.prompt_format`` of the paper's plain framing (as directions record it).
PLAIN_FORMAT = "Q: {question}\\nA: "
#: ``settings.prompt_format`` of prompts wrapped in the tokenizer's chat template.
CHAT_FORMAT = "chat_template"

#: The read spellings ``collect_activations(read=...)`` accepts (``K`` a whole number >= 1).
READS = ("last", "question_end", "mean-last-K")

_MEAN = re.compile(r"mean-last-([0-9]+)")


@dataclass(frozen=True)
class ReadSpec:
    """A parsed read position.

    Attributes:
        kind: ``"last"``, ``"question_end"`` or ``"mean"``.
        k: tokens averaged (``"mean"`` only; 1 otherwise).
    """

    kind: str
    k: int = 1

    def __str__(self) -> str:
        return f"mean-last-{self.k}" if self.kind == "mean" else self.kind


def parse_read(read: Any) -> ReadSpec:
    """``"last"``, ``"question_end"`` or ``"mean-last-K"`` -> ``ReadSpec``; ``DataError`` otherwise."""
    if isinstance(read, ReadSpec):
        return read
    if read in ("last", "question_end"):
        return ReadSpec(str(read))
    match = _MEAN.fullmatch(read) if isinstance(read, str) else None
    if match is not None and int(match.group(1)) >= 1:
        return ReadSpec("mean", int(match.group(1)))
    raise DataError(
        f"read must be one of 'last', 'question_end' or 'mean-last-K' (K >= 1), got {read!r}; "
        "e.g. read='mean-last-4'"
    )


def common_suffix(ids: Sequence[Sequence[int]], start: Sequence[int] | None = None) -> list[int]:
    """The longest token suffix that every row of ``ids`` ends with.

    Args:
        ids: token ids of each prompt.
        start: the suffix already found on other prompts of the same set (the result is a
            suffix of it), so a large set can be scanned one chunk at a time.

    Returns:
        The shared token ids (empty when the rows end differently).
    """
    best = None if start is None else list(start)
    for row in ids:
        if best is None:
            best = list(row)
            continue
        n = 0
        while n < len(best) and n < len(row) and row[len(row) - 1 - n] == best[len(best) - 1 - n]:
            n += 1
        best = best[len(best) - n :]
        if not best:
            break
    return best or []


def check_read_positions(
    spec: ReadSpec,
    ids: Sequence[Sequence[int]],
    *,
    suffix: Sequence[int] = (),
    special_ids: Sequence[int] = (),
    offset: int = 0,
) -> None:
    """``DataError`` (one line) when a read position falls outside a prompt.

    ``mean-last-K``: every prompt must have at least ``K`` tokens. ``question_end``: every prompt
    must end with ``suffix`` and keep at least one token before it that is not a special token
    (an empty question part). ``offset`` is the index of ``ids[0]`` in the caller's list.
    """
    if spec.kind == "mean":
        short = [(offset + i, len(x)) for i, x in enumerate(ids) if len(x) < spec.k]
        if short:
            i, n = short[0]
            raise DataError(
                f"read='{spec}' averages the last {spec.k} tokens but prompt {i} has only {n} "
                f"tokens ({len(short)} prompts are shorter); use a smaller K"
            )
    elif spec.kind == "question_end":
        s, special = list(suffix), set(special_ids)
        for i, x in enumerate(ids):
            if s and list(x[len(x) - len(s) :]) != s:
                raise DataError(
                    f"prompt {offset + i} does not end with the question suffix {s[:8]} "
                    "(token ids); pass the suffix every prompt ends with, or none to find it"
                )
            pos = len(x) - len(s) - 1
            if pos < 0 or x[pos] in special:
                raise DataError(
                    f"prompt {offset + i} has an empty question part: nothing but special or "
                    f"shared suffix tokens ({len(s)} shared tokens of {len(x)}) for read="
                    "'question_end' to read; drop the prompt, or pass question_suffix= when the "
                    "set has one prompt"
                )


def prompt_format_of(model: Any, prompts: Sequence[str]) -> str | None:
    """``PLAIN_FORMAT``, ``CHAT_FORMAT`` or ``None`` (unknown): how ``prompts`` were framed.

    Plain: every prompt starts with ``"Q: "`` and ends with ``"\\nA: "``. Chat: every prompt ends
    with what the tokenizer's chat template appends after a user message.
    """
    if not prompts:
        return None
    if all(p.startswith("Q: ") and p.endswith("\nA: ") for p in prompts):
        return PLAIN_FORMAT
    tok = getattr(model, "tokenizer", None)
    if tok is not None and getattr(tok, "chat_template", None):
        marker = "\x00lirefs-question\x00"
        try:
            text = tok.apply_chat_template(
                [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
            )
        except Exception:  # a template that needs more than one user message: format unknown
            return None
        tail = str(text).split(marker)[-1] if marker in str(text) else ""
        if tail.strip() and all(p.endswith(tail) for p in prompts):
            return CHAT_FORMAT
    return None


def read_mismatch(
    settings: Mapping[str, Any] | None,
    *,
    prompt_format: str | None = None,
    read: str | None = None,
) -> str | None:
    """Why a direction made with ``settings`` does not fit this use, or ``None`` when it fits.

    Args:
        settings: the direction's (or activations') ``metadata["settings"]``.
        prompt_format: how the prompts of this use are framed (``None``: unknown, not compared).
        read: how the states of this use were read (``None``: no states read, not compared).
    """
    settings = settings or {}
    made_format = settings.get("prompt_format")
    made_read = settings.get("read", "last")
    problems = []
    if (
        made_format is not None
        and prompt_format is not None
        and (made_format == CHAT_FORMAT) != (prompt_format == CHAT_FORMAT)
    ):
        problems.append(f"built from {made_format!r} prompts, used with {prompt_format!r} prompts")
    if read is not None and str(parse_read(read)) != str(made_read):
        problems.append(f"its states were read at {made_read!r}, these at {read!r}")
    if not problems:
        return None
    return (
        "the direction was "
        + "; ".join(problems)
        + ": its states may not match (use the same prompt format and read position)"
    )


def warn_read_mismatch(
    settings: Mapping[str, Any] | None,
    *,
    prompt_format: str | None = None,
    read: str | None = None,
    stacklevel: int = 3,
) -> str | None:
    """``read_mismatch``, also raised as one ``ReadMismatchWarning``; returns the message."""
    message = read_mismatch(settings, prompt_format=prompt_format, read=read)
    if message is not None:
        warnings.warn(message, ReadMismatchWarning, stacklevel=stacklevel)
    return message
