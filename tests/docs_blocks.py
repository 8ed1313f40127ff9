"""Find the code blocks of README.md and docs/**/*.md, with the markers that say how to test them.

A fenced block's language decides what happens to it: ``bash``, ``sh``, ``shell`` and ``console``
blocks run in bash, ``python`` blocks in Python, and every other language (``text``, ``json``,
``csv``, ...) is shown, never run. A block without a language is an error: its author must say
which it is. An HTML comment on the line right before a block (invisible when rendered) changes
that, and a comment of its own can hold a hidden setup block::

    <!-- docs-test: skip long: the full built-in set, 79 s -->
    <!-- docs-test: setup bash
    lirefs collect --set builtin --limit 16 -o acts.safetensors
    -->

Skip kinds: ``network`` (needs the internet: pip, the Hugging Face Hub), ``ndif`` (needs an NDIF
key or server), ``gpu``, ``long`` (a full run; a small runnable version stands beside it) and
``external`` (a program lirefs does not install, e.g. llama.cpp). Every skip names its reason.
This module only reads markdown (no model, no lirefs import), so the fast tier can check the
markers; tests/docs_runner.py runs the blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Languages whose blocks run, mapped to the interpreter that runs them.
RUN_LANGUAGES = {
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "console": "bash",
    "python": "python",
}
#: Skip kinds, each with what it means (docs/contributing.md lists them).
SKIP_KINDS = {
    "network": "needs the internet (pip, the Hugging Face Hub)",
    "ndif": "needs an NDIF key or a running NDIF server",
    "gpu": "needs a CUDA device",
    "long": "a full run; a small runnable version stands beside it",
    "external": "needs a program or extra lirefs does not install",
}

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([^\s`]*)")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*(-->)?\s*$")


@dataclass(frozen=True)
class Block:
    """One code block: where it is, its language, its code and what the test does with it.

    ``action`` is ``"run"``, ``"show"`` (a language that is not run) or ``"skip"``; ``kind`` and
    ``reason`` are set for a skip. ``line`` is the 1-based line of the block's first code line
    (the line after the fence), so messages point at the code itself.
    """

    page: str
    line: int
    language: str
    code: str
    action: str
    kind: str = ""
    reason: str = ""
    hidden: bool = False

    @property
    def runner(self) -> str:
        """``"bash"`` or ``"python"`` (only for blocks that run)."""
        return RUN_LANGUAGES[self.language]

    @property
    def where(self) -> str:
        """``page:line (first code line)``, for messages."""
        first = next((s.strip() for s in self.code.splitlines() if s.strip()), "")
        return f"{self.page}:{self.line} ({first[:60]})"


def pages() -> list[Path]:
    """README.md and every markdown page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def page_name(path: Path) -> str:
    """The page's path relative to the repository root, with forward slashes (else its name)."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _dedent(lines: list[str], indent: str) -> str:
    return "\n".join(s[len(indent) :] if s.startswith(indent) else s.lstrip() for s in lines)


def _console_commands(code: str) -> str:
    """The commands of a ``console`` block: lines after ``$ `` and their continuations."""
    out: list[str] = []
    going = False
    for line in code.splitlines():
        if line.startswith("$ "):
            out.append(line[2:])
            going = line.rstrip().endswith("\\")
        elif going:
            out.append(line)
            going = line.rstrip().endswith("\\")
    return "\n".join(out)


def parse(path: Path) -> tuple[list[Block], list[str]]:
    """The blocks of one page, in order, and the problems found (``page:line: what``)."""
    name = page_name(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    pending: tuple[int, str, str, str] | None = None  # (line, action, kind, reason) of a marker
    i = 0
    while i < len(lines):
        text = lines[i]
        marker = _MARKER.match(text)
        if marker:
            words = marker.group(1)
            if words.startswith("setup"):
                language = words.split()[1] if len(words.split()) > 1 else ""
                end = i + 1
                while end < len(lines) and "-->" not in lines[end]:
                    end += 1
                if language not in RUN_LANGUAGES or marker.group(2) or end == len(lines):
                    problems.append(
                        f"{name}:{i + 1}: a setup comment is '<!-- docs-test: setup bash' or "
                        "'... setup python', the code on the next lines, then '-->' on a line"
                    )
                else:
                    code = "\n".join(lines[i + 1 : end])
                    blocks.append(Block(name, i + 2, language, code, "run", hidden=True))
                i = end + 1
                continue
            skip = re.match(r"skip\s+(\w+)\s*:\s*(\S.*)$", words)
            if skip is None or skip.group(1) not in SKIP_KINDS:
                problems.append(
                    f"{name}:{i + 1}: unknown marker {words!r}; write "
                    f"'<!-- docs-test: skip KIND: reason -->' with KIND one of {sorted(SKIP_KINDS)}"
                )
            else:
                pending = (i + 1, "skip", skip.group(1), skip.group(2))
            i += 1
            continue
        fence = _FENCE.match(text)
        if not fence:
            if pending and text.strip():
                problems.append(f"{name}:{pending[0]}: the marker is not right before a block")
                pending = None
            i += 1
            continue
        indent, ticks, language = fence.group(1), fence.group(2), fence.group(3).lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(ticks):
            end += 1
        code = _dedent(lines[i + 1 : end], indent)
        if not language:
            problems.append(
                f"{name}:{i + 1}: a block without a language; tag it bash or python (run by "
                "tests/test_docs_blocks.py) or text (shown only)"
            )
        elif pending:
            blocks.append(Block(name, i + 2, language, code, "skip", pending[2], pending[3]))
        elif language in RUN_LANGUAGES:
            if language == "console":
                code = _console_commands(code)
            blocks.append(Block(name, i + 2, language, code, "run"))
        else:
            blocks.append(Block(name, i + 2, language, code, "show"))
        pending = None
        i = end + 1
    if pending:
        problems.append(f"{name}:{pending[0]}: the marker is not right before a block")
    return blocks, problems
