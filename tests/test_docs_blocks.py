"""Every shell and Python block of README.md and docs/ runs as written, so the docs cannot drift.

tests/docs_blocks.py finds the blocks and their markers (docs/contributing.md describes them);
tests/docs_runner.py runs one page's blocks in order in a fresh temp folder, with ``lirefs`` on
the PATH running this checkout's CLI on the offline model. One test per page (a failure names the
page, the block's first line and its first code line); one skipped test per skipped block, whose
reason ``pytest -rs`` lists. The marker check is fast; the pages load the model (``model``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, SKIP_KINDS, Block, page_name, pages, parse

#: Seconds one page may take before its test fails: a page on a busy 2-core machine can take
#: several times what it takes on an idle one.
PAGE_TIMEOUT = 1200


def _blocks(path: Path) -> list[Block]:
    return parse(path)[0]


def test_every_block_says_what_it_is() -> None:
    """Every fence has a language, every marker is known, names its reason and sits on a block."""
    problems = [p for path in pages() for p in parse(path)[1]]
    assert problems == [], "\n".join(problems)


RUNNABLE = [p for p in pages() if any(b.action == "run" for b in _blocks(p))]
SKIPPED = [b for p in pages() for b in _blocks(p) if b.action == "skip"]


@pytest.mark.parametrize("block", SKIPPED, ids=[f"{b.page}:{b.line}" for b in SKIPPED])
def test_skipped_block(block: Block) -> None:
    """One skipped test per block marked skip, so ``pytest -rs`` lists each with its reason."""
    pytest.skip(f"{block.where}: {block.kind}: {block.reason}")


def _environment(folder: Path) -> dict[str, str]:
    """This checkout first on PYTHONPATH, ``lirefs`` and ``python`` shims first on PATH."""
    shims = folder / ".bin"
    shims.mkdir()
    for name, command in (
        ("lirefs", f'"{sys.executable}" -m lirefs.cli'),
        ("python", f'"{sys.executable}"'),
    ):
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env.update(
        PATH=f"{shims}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        LIREFS_PROGRESS="0",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        MPLBACKEND="Agg",
    )
    env.setdefault(
        "LIREFS_CACHE_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "lirefs-test-cache")
    )
    return env


@pytest.mark.model
@pytest.mark.parametrize("path", RUNNABLE, ids=[page_name(p) for p in RUNNABLE])
def test_page_runs(path: Path, tmp_path: Path) -> None:
    """The page's runnable blocks, hidden setup blocks included, run in order in one folder."""
    run = [b for b in _blocks(path) if b.action == "run"]
    spec = [
        {"page": b.page, "line": b.line, "runner": b.runner, "code": b.code, "where": b.where}
        for b in run
    ]
    (tmp_path / ".blocks.json").write_text(json.dumps(spec), encoding="utf-8")
    runner = Path(__file__).with_name("docs_runner.py")
    done = subprocess.run(
        [sys.executable, str(runner), str(tmp_path / ".blocks.json")],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    output = done.stdout
    failed = [s for s in done.stdout.splitlines() if s.startswith("FAILED: ")]
    assert done.returncode == 0, (
        (failed[-1] if failed else f"exit {done.returncode}") + "\n" + output[-6000:]
    )


def test_markers_are_read_as_documented(tmp_path: Path) -> None:
    """The parser on a page with each kind of block and marker, and each mistake it must name."""
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "<!-- docs-test: skip network: needs the Hub -->",
                "```bash",
                "pip install x",
                "```",
                "<!-- docs-test: setup bash",
                "touch made.txt",
                "-->",
                "```console",
                "$ lirefs --version \\",
                "    --help",
                "lirefs, version 0.1.0",
                "```",
                "```text",
                "output",
                "```",
                "```",
                "untagged",
                "```",
                "<!-- docs-test: skip later: no such kind -->",
                "```python",
                "x = 1",
                "```",
                "<!-- docs-test: skip long: nothing follows -->",
                "prose",
            ]
        ),
        encoding="utf-8",
    )
    blocks, problems = parse(page)
    assert [(b.line, b.action, b.kind) for b in blocks] == [
        (3, "skip", "network"),
        (6, "run", ""),
        (9, "run", ""),
        (14, "show", ""),
        (21, "run", ""),
    ]
    assert blocks[1].hidden and blocks[1].code == "touch made.txt"
    assert blocks[2].code == "lirefs --version \\\n    --help"
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["16", "19", "23"]
    assert SKIP_KINDS.keys() >= {"network", "ndif", "gpu", "long"}
