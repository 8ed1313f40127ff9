"""Run the whole benchmark suite and regenerate docs/benchmarks.md.

    python -m benchmarks [--quick] [--device cpu]

Each part writes ``benchmarks/results/<name>.json``; the markdown page is rebuilt from all result
files present, so a part can also be rerun alone (``python -m benchmarks.collect``) followed by
``python -m benchmarks.report``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--quick", action="store_true", help="Fewer prompts and repeats, no 10k scaling run."
    )
    args = parser.parse_args()
    py = sys.executable
    collect = [py, "-m", "benchmarks.collect", "--device", args.device]
    steer = [py, str(HERE / "steer.py"), "--device", args.device]
    evaluation = [py, "-m", "benchmarks.evaluation", "--device", args.device]
    if args.quick:
        collect += ["--prompts", "32", "--repeats", "2", "--sizes", "100,1000"]
        steer += ["--repeats", "2"]
        evaluation += ["--limit", "4"]
    for cmd in (collect, steer, evaluation):
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=HERE.parent)
    subprocess.run([py, "-m", "benchmarks.report"], check=True, cwd=HERE.parent)


if __name__ == "__main__":
    main()
