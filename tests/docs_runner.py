"""Run the blocks of one documentation page in order, in the current folder (a fresh temp folder).

``python docs_runner.py BLOCKS.json``: the JSON holds a list of ``{"page", "line", "runner",
"code", "where"}``. Python blocks share one namespace, as the page reads (a later block uses the
``model`` an earlier one loaded); each is written to a file padded with blank lines so that a
traceback's line number is the line in the markdown page, and so that nnsight, which reads a
trace body from its source file, finds it. Shell blocks run with ``bash -e`` and see the files
earlier blocks wrote. The first failing block stops the page: the last line printed names it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from pathlib import Path


def _python(block: dict, namespace: dict, folder: Path) -> bool:
    stem = block["page"].replace("/", "_").replace(".", "_")
    path = folder / f"{stem}_L{block['line']}.py"
    path.write_text("\n" * (block["line"] - 1) + block["code"] + "\n", encoding="utf-8")
    try:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    except BaseException:  # report any failure of the block (SystemExit too), then stop the page
        traceback.print_exc()
        return False
    return True


def _bash(block: dict, folder: Path) -> bool:
    stem = block["page"].replace("/", "_").replace(".", "_")
    path = folder / f"{stem}_L{block['line']}.sh"
    path.write_text(block["code"] + "\n", encoding="utf-8")
    sys.stdout.flush()
    return subprocess.run(["bash", "-e", "-o", "pipefail", str(path)], check=False).returncode == 0


def main(blocks_file: str) -> int:
    blocks = json.loads(Path(blocks_file).read_text(encoding="utf-8"))
    folder = Path(blocks_file).parent
    namespace: dict = {"__name__": "__main__"}
    for block in blocks:
        print(f"=== {block['where']} [{block['runner']}]", flush=True)
        start = time.perf_counter()
        ok = (
            _python(block, namespace, folder)
            if block["runner"] == "python"
            else _bash(block, folder)
        )
        print(f"=== {time.perf_counter() - start:.1f} s", flush=True)
        if not ok:
            print(f"FAILED: {block['where']}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
