"""Evaluation throughput: items per second for each alpha on the offline arithmetic benchmark.

A direction is built from a small slice of the built-in question sets (its layer chosen on their
held-out half), then ``lirefs.evaluate`` runs ``builtin-arithmetic`` once per alpha; the time of
each run gives items/s (few-shot prompts of about 800 tokens, greedy decoding).

Side by side, the same prompts go through ``lirefs.generate`` unsteered with and without the
benchmark's stop string (``"\\nQ:"``): the speed-up of ending a batch once every row has started a
question of its own, with the tokens before the stop checked identical.

    python -m benchmarks.evaluation [--limit 8] [--max-new-tokens 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from .common import environment, markdown_table, write_result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="Default: the benchmark's own (128)."
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--alphas", default="0,-0.1,0.1")
    args = parser.parse_args(argv)

    import lirefs
    from lirefs.analysis import collect_split, find_direction
    from lirefs.evaluation import get_benchmark

    model = lirefs.load_model("smollm2-135m", device=args.device, dtype="float32")
    bench = get_benchmark("builtin-arithmetic")
    new_tokens = args.max_new_tokens or bench.max_new_tokens
    sets = lirefs.data.load("builtin").subset(24, seed=0)
    liref, report = find_direction(collect_split(model, sets, progress=False), n_permutations=20)
    rows = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        t = time.perf_counter()
        result = lirefs.evaluate(
            model,
            "builtin-arithmetic",
            direction=liref,
            alphas=(alpha,),
            limit=args.limit,
            max_new_tokens=new_tokens,
            batch_size=args.batch_size,
            progress=False,
        )
        seconds = time.perf_counter() - t
        rows.append(
            {
                "alpha": alpha,
                "items": args.limit,
                "seconds": seconds,
                "items_per_s": args.limit / seconds,
                "accuracy": result.accuracy[alpha],
            }
        )
    data = bench.load()
    prompts = data.prompts()[: args.limit]
    kw: dict[str, Any] = {"max_new_tokens": new_tokens, "batch_size": args.batch_size}
    times: dict[str, float] = {}
    outputs = {}
    for name, stop in (("no stop", None), ("stop", [bench.stop])):
        t = time.perf_counter()
        outputs[name] = lirefs.generate(model, prompts, stop=stop, progress=False, **kw)
        times[name] = time.perf_counter() - t
    same = all(
        full[: len(cut)] == cut
        for full, cut in zip(outputs["no stop"].token_ids, outputs["stop"].token_ids, strict=True)
    )
    out = {
        "environment": environment(args.device, "float32"),
        "benchmark_name": "builtin-arithmetic",
        "layer": report.best_layer,
        "max_new_tokens": new_tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "stop": {
            "seconds": times,
            "speedup": times["no stop"] / times["stop"],
            "new_tokens": {k: sum(map(len, v.token_ids)) for k, v in outputs.items()},
            "same_tokens_before_stop": same,
        },
    }
    path = write_result("evaluation", out)
    print(markdown_table(rows))
    print(f"stop string: {out['stop']['speedup']:.2f}x faster, {out['stop']}")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
