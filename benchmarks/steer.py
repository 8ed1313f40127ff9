"""Benchmark: steered generation (paper mode) vs unsteered vs a raw-hook implementation.

Same prompts, same batch, greedy decoding; each variant is timed ``--repeats`` times in one process
(after one warm-up run each, variants interleaved round by round) and reported by its median
and as ratios:

* ``hf``: Hugging Face ``generate`` on the wrapped module itself (no nnsight trace, no edit);
* ``unsteered``: ``lirefs.generate(..., alpha=0)`` (the nnsight generate trace, no edit);
* ``steered``: ``lirefs.generate(..., mode="project", alpha=...)`` (paper mode, every block);
* ``hooks``: the same edit with plain PyTorch forward hooks (``tests/reference_hooks.py``).

Usage::

    python benchmarks/steer.py --prompts 8 --max-new-tokens 16 --repeats 5

Writes ``benchmarks/results/steer.json`` and prints a markdown table. The design targets are
``steered / unsteered <= 1.10`` and ``steered / hooks <= 1.05``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from reference_hooks import reference_generate  # noqa: E402

import lirefs  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "A shop sells pens at 3 dollars each. Tom buys 4 pens. How much does he pay?",
    "Which element has the symbol Fe?",
    "12 workers build a wall in 6 days. How long would 8 workers take?",
    "Who wrote Hamlet?",
    "If a train travels 60 km in 45 minutes, what is its speed in km per hour?",
    "What is the largest planet in the solar system?",
    "A rectangle is 7 cm by 5 cm. What is its area?",
]


def _time_all(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Median wall-clock and process CPU time of each variant, interleaved round by round.

    Every variant runs once as a warm-up (its result is kept for the token comparison), then the
    variants take turns ``repeats`` times, so a burst of load from other processes hits them all
    alike. CPU time (``time.process_time``) is reported next to wall time because on a shared
    machine the wall clock also counts time spent waiting for a core.
    """
    outputs = {name: fn() for name, fn in fns.items()}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    timings = {
        name: {
            "wall_median_s": statistics.median(wall[name]),
            "cpu_median_s": statistics.median(cpu[name]),
            "wall_s": wall[name],
            "cpu_s": cpu[name],
        }
        for name in fns
    }
    return timings, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=-0.1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "steer.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = lirefs.load_model(args.model, device=args.device)
    info = lirefs.model_info(model)
    prompts = [f"Q: {q}\nA: " for q in (QUESTIONS * 8)[: args.prompts]]
    vector = torch.randn(
        info.d_model, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    n = len(prompts)
    common = {"max_new_tokens": args.max_new_tokens, "batch_size": n}
    hf, tok = model._module, model.tokenizer

    def hf_plain() -> list[list[int]]:
        return reference_generate(
            hf,
            tok,
            prompts,
            vector=None,
            alpha=0.0,
            mode="project",
            max_new_tokens=args.max_new_tokens,
        )

    def unsteered() -> list[list[int]]:
        return lirefs.generate(model, prompts, **common).token_ids

    def steered() -> list[list[int]]:
        return lirefs.generate(
            model, prompts, direction=vector, alpha=args.alpha, mode="project", **common
        ).token_ids

    def hooks() -> list[list[int]]:
        return reference_generate(
            hf,
            tok,
            prompts,
            vector=vector,
            alpha=args.alpha,
            mode="project",
            max_new_tokens=args.max_new_tokens,
        )

    variants = {"hf": hf_plain, "unsteered": unsteered, "steered": steered, "hooks": hooks}
    load_before = list(os.getloadavg())
    results, outputs = _time_all(variants, args.repeats)

    pairs = [("steered", "unsteered"), ("steered", "hooks"), ("unsteered", "hf"), ("hooks", "hf")]
    ratios = {
        f"{a}/{b} ({clock})": results[a][f"{clock}_median_s"] / results[b][f"{clock}_median_s"]
        for a, b in pairs
        for clock in ("wall", "cpu")
    }
    report = {
        "benchmark": "steer",
        "model": info.name,
        "n_layers": info.n_layers,
        "device": args.device,
        "threads": args.threads,
        "prompts": n,
        "max_new_tokens": args.max_new_tokens,
        "alpha": args.alpha,
        "repeats": args.repeats,
        "load_average_before_after": [load_before, list(os.getloadavg())],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "same_tokens": {
            "unsteered==hf": outputs["unsteered"] == outputs["hf"],
            "steered==hooks": outputs["steered"] == outputs["hooks"],
        },
        "results": results,
        "ratios": ratios,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"steered generation, {info.name} ({info.n_layers} blocks), {args.device}, "
        f"{args.threads} threads, {n} prompts x {args.max_new_tokens} new tokens, "
        f"alpha {args.alpha}, median of {args.repeats}\n"
    )
    print("| variant | wall s | cpu s | vs unsteered (wall / cpu) | vs hooks (wall / cpu) |")
    print("|---|---|---|---|---|")
    for name in ("hf", "unsteered", "steered", "hooks"):
        r = results[name]
        cells = [f"{r['wall_median_s']:.3f}", f"{r['cpu_median_s']:.3f}"]
        for base in ("unsteered", "hooks"):
            b = results[base]
            w = r["wall_median_s"] / b["wall_median_s"]
            c = r["cpu_median_s"] / b["cpu_median_s"]
            cells.append(f"{w:.2f}x / {c:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nsame tokens: {report['same_tokens']}; written to {out}")


if __name__ == "__main__":
    main()
