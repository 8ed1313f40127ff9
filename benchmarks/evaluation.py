"""Evaluation throughput: items per second for each alpha on the offline arithmetic benchmark.

A direction is built from a small slice of the built-in question sets (its layer chosen on their
held-out half), then ``lirefs.evaluate`` runs ``builtin-arithmetic`` once per alpha; the time of
each run gives items/s (few-shot prompts of about 800 tokens, greedy decoding).

The same runs are made twice, with and without the shared-prefix cache
(``reuse_prefix``), alternating ``--repeats`` times on the same items and budgets: the medians
give the speed-up, and every output is compared (a differing one is reported with the top-2 gap
of the plain path's log-probabilities where it departs, i.e. whether it is a near-tie).

Side by side, the same prompts go through ``lirefs.generate`` unsteered with and without the
benchmark's stop string (``"\\nQ:"``): the speed-up of ending a batch once every row has started a
question of its own, with the tokens before the stop checked identical.

    python -m benchmarks.evaluation [--limit 8] [--max-new-tokens 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
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
    parser.add_argument("--alphas", default="0,0.1")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved runs per path.")
    args = parser.parse_args(argv)

    import lirefs
    from lirefs.evaluation import get_benchmark
    from lirefs.pipeline import collect_split, find_direction

    model = lirefs.load_model("smollm2-135m", device=args.device, dtype="float32")
    bench = get_benchmark("builtin-arithmetic")
    new_tokens = args.max_new_tokens or bench.max_new_tokens
    sets = lirefs.data.load("builtin").subset(24, seed=0)
    liref, report = find_direction(collect_split(model, sets, progress=False), n_permutations=20)
    # the shared-prefix cache (lirefs.evaluation.prefix) against the full-prompt path: the same
    # items, alphas and budgets, run in alternation so machine load hits both alike
    times: dict[tuple[float, bool], list[float]] = {}
    results: dict[tuple[float, bool], Any] = {}
    alphas = [float(a) for a in args.alphas.split(",")]
    for _ in range(args.repeats):
        for alpha in alphas:
            for reuse in (False, True):
                t = time.perf_counter()
                results[(alpha, reuse)] = lirefs.evaluate(
                    model,
                    "builtin-arithmetic",
                    direction=liref,
                    alphas=(alpha,),
                    limit=args.limit,
                    max_new_tokens=new_tokens,
                    batch_size=args.batch_size,
                    progress=False,
                    reuse_prefix=reuse,
                )
                times.setdefault((alpha, reuse), []).append(time.perf_counter() - t)
    rows = []
    flips = []
    for alpha in alphas:
        plain_s = statistics.median(times[(alpha, False)])
        prefix_s = statistics.median(times[(alpha, True)])
        plain, fast = results[(alpha, False)], results[(alpha, True)]
        same = 0
        for a, b in zip(plain.records, fast.records, strict=True):
            if a["output"] == b["output"]:
                same += 1
            else:
                flips.append(_near_tie(model, liref, alpha, report.best_layer, a, b))
        rows.append(
            {
                "alpha": alpha,
                "items": args.limit,
                "plain s": plain_s,
                "prefix s": prefix_s,
                "plain items/s": args.limit / plain_s,
                "prefix items/s": args.limit / prefix_s,
                "speed-up": plain_s / prefix_s,
                "identical outputs": f"{same}/{len(plain.records)}",
                "accuracy": fast.accuracy[alpha],
            }
        )
    shared_tokens = results[(alphas[0], True)].metadata["settings"]["prefix_cache"]
    data = bench.load()
    prompts = data.prompts()[: args.limit]
    kw: dict[str, Any] = {"max_new_tokens": new_tokens, "batch_size": args.batch_size}
    runs: dict[str, list[float]] = {}
    outputs = {}
    for _ in range(args.repeats):  # alternated like the paths above, medians reported
        for name, stop in (("no stop", None), ("stop", [bench.stop])):
            t = time.perf_counter()
            outputs[name] = lirefs.generate(model, prompts, stop=stop, progress=False, **kw)
            runs.setdefault(name, []).append(time.perf_counter() - t)
    stop_times = {name: statistics.median(ts) for name, ts in runs.items()}
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
        "repeats": args.repeats,
        "prefix_cache": shared_tokens,
        "rows": rows,
        "flips": flips,
        "stop": {
            "seconds": stop_times,
            "alternated": True,
            "speedup": stop_times["no stop"] / stop_times["stop"],
            "new_tokens": {k: sum(map(len, v.token_ids)) for k, v in outputs.items()},
            "same_tokens_before_stop": same,
        },
    }
    path = write_result("evaluation", out)
    print(markdown_table(rows))
    print(f"stop string: {out['stop']['speedup']:.2f}x faster, {out['stop']}")
    print(f"wrote {path}")
    return out


def _near_tie(
    model: Any, liref: Any, alpha: float, layer: int, plain: dict[str, Any], fast: dict[str, Any]
) -> dict[str, Any]:
    """Where two outputs part: the plain path's top-2 log-probability gap at that token (a gap
    near 0 is a near-tie that rounding between batch shapes can flip)."""
    from lirefs.evaluation.outcomes import next_token_logprobs

    a, b = plain["output"], fast["output"]
    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    steering = None if alpha == 0.0 else {"direction": liref, "layer": layer, "alpha": alpha}
    logp = next_token_logprobs(model, [plain["prompt"] + a[:k]], steering=steering)[0]
    top = torch.topk(logp, 2).values
    return {"alpha": alpha, "id": plain["id"], "char": k, "top2_gap": float(top[0] - top[1])}


if __name__ == "__main__":
    main()
