"""Collection cost: lirefs vs a plain HF forward, vs nnsight saving full sequences; memory vs prompts.

Throughput (SmolLM2-135M, CPU by default): the same prompts, the same length-sorted left-padded
batches, timed in alternation:

* ``hf_forward``: ``model(**batch, output_hidden_states=True)`` then ``hidden_states[l][:, -1]`` for
  every layer (the floor a user would write by hand: full forward, LM head included);
* ``hf_headless``: the base model without LM head, ``output_hidden_states=True``;
* ``hf_blocks``: the base model without LM head and without ``output_hidden_states`` (the final
  state only): the compute floor, since recording every layer's output has a cost of its own in
  transformers 5;
* ``nnsight_full``: one nnsight trace per batch saving every layer's full ``[b, t, d]`` output;
* ``lirefs``: ``lirefs.collect_activations`` (last token only, forward stopped after the final norm)
  with the same batch size as the baselines;
* ``lirefs_token_budget``: the same with the default ``batch_size=None`` (batches filled up to
  1,024 padded tokens).

Scaling (a random Llama of d_model 256, 4 blocks, in fresh subprocesses): wall time and resident
memory for 100 to 30,000 prompts, to show time linear and memory beyond the returned tensor flat in
the number of prompts.

Leak check (same model, one fresh subprocess): 20 rounds of collecting 1,000 prompts plus a steered
generation, thousands of traces; live Python objects and memory after each round must not climb.

    python -m benchmarks.collect [--prompts 64] [--batch-size 8] [--device cpu] [--no-scaling]
                                 [--no-leak] [--sizes 100,1000,10000,30000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch

from .common import RESULTS, environment, interleaved_times, markdown_table, write_result


def _prompts(n: int) -> list[str]:
    import lirefs

    sets = lirefs.data.load("builtin")
    r, m = sets.reasoning_prompts(), sets.memory_prompts()
    out = [p for pair in zip(r, m, strict=False) for p in pair]
    return out[:n]


def throughput(n_prompts: int, batch_size: int, device: str, repeats: int) -> dict[str, Any]:
    import lirefs
    import tracers
    from lirefs.batching import prompt_batches

    model = lirefs.load_model("smollm2-135m", device=device, dtype="float32")
    hf = model._module
    prompts = _prompts(n_prompts)
    batches = [
        {k: v.to(device) for k, v in b.inputs.items()}
        for b in prompt_batches(model, prompts, batch_size)
    ]
    L = lirefs.model_info(model).n_layers

    def hf_forward() -> None:
        with torch.inference_mode():
            for batch in batches:
                hs = hf(**batch, output_hidden_states=True).hidden_states
                torch.stack([h[:, -1] for h in hs], 1).cpu()

    def hf_headless() -> None:
        with torch.inference_mode():
            for batch in batches:
                hs = hf.model(**batch, output_hidden_states=True).hidden_states
                torch.stack([h[:, -1] for h in hs], 1).cpu()

    def hf_blocks() -> None:
        with torch.inference_mode():
            for batch in batches:
                hf.model(**batch).last_hidden_state[:, -1].cpu()

    def nnsight_full() -> None:
        with torch.inference_mode():
            for batch in batches:
                saved: list[
                    torch.Tensor
                ] = []  # bound before the trace so the saved values land here
                with model.trace(batch):
                    saved = [tracers.residual(model, layer).save() for layer in range(L + 1)]
                [s.cpu() for s in saved]

    def lirefs_collect() -> None:
        lirefs.collect_activations(model, prompts, batch_size=batch_size, progress=False)

    def lirefs_budget() -> None:
        lirefs.collect_activations(model, prompts, batch_size=None, progress=False)

    times = interleaved_times(
        {
            "hf_forward": hf_forward,
            "hf_headless": hf_headless,
            "hf_blocks": hf_blocks,
            "nnsight_full": nnsight_full,
            "lirefs": lirefs_collect,
            "lirefs_token_budget": lirefs_budget,
        },
        repeats=repeats,
    )
    t = time.perf_counter()
    for _ in range(repeats):
        list(prompt_batches(model, prompts, batch_size))
    tokenize_s = (time.perf_counter() - t) / repeats
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["attention_mask"].numel() for b in batches)
    return {
        "model": "smollm2-135m",
        "n_prompts": n_prompts,
        "batch_size": batch_size,
        "real_tokens": tokens,
        "padded_tokens": padded,
        "seconds": times,
        "prompts_per_second": {k: n_prompts / v for k, v in times.items()},
        "ratio_vs_hf_forward": times["hf_forward"] / times["lirefs"],
        "ratio_vs_nnsight_full": times["nnsight_full"] / times["lirefs"],
        "ratio_vs_hf_headless": times["hf_headless"] / times["lirefs"],
        "ratio_vs_hf_blocks": times["hf_blocks"] / times["lirefs"],
        "token_budget_batches": len(list(prompt_batches(model, prompts, None))),
        "ratio_token_budget_vs_fixed": times["lirefs"] / times["lirefs_token_budget"],
        "breakdown_s": {
            "tokenize_and_pad": tokenize_s,
            "headless_forward": times["hf_headless"],
            "blocks_forward": times["hf_blocks"],
            "lirefs_total": times["lirefs"],
            "remaining_overhead": times["lirefs"] - times["hf_blocks"] - tokenize_s,
        },
    }


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _random_llama() -> Any:
    """A random Llama (d_model 256, 4 blocks) with SmolLM2's tokenizer: fast, real shapes."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import lirefs
    from lirefs.models import smollm2_folder

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=49152,
    )
    return lirefs.wrap(
        LlamaForCausalLM(config).eval(),
        AutoTokenizer.from_pretrained(smollm2_folder()),
        name="random-llama-d256",
    )


def _numbered_prompts(n: int) -> list[str]:
    """n distinct prompts with the built-in sets' length distribution (numbered suffixes)."""
    base = _prompts(800)
    return [f"{base[i % len(base)]}(#{i})" for i in range(n)]


def _scaling_child(n: int, batch_size: int) -> None:
    """Run in a subprocess: collect n prompts on a random d=256 Llama, print time and memory.

    A warm-up batch runs first. A thread samples the resident set every 20 ms together with the
    number of prompts finished so far (counted by wrapping the per-batch call), so each sample
    splits into the rows of the returned ``[n, L + 1, d]`` tensor filled so far and everything
    else ("beyond the output"): the part that must stay flat as n grows.
    """
    import statistics
    import threading

    import lirefs
    import lirefs.collect as collect

    model = _random_llama()
    prompts = _numbered_prompts(n)
    lirefs.collect_activations(model, prompts[:batch_size], batch_size=batch_size, progress=False)
    info = lirefs.model_info(model)
    row_mb = (info.n_layers + 1) * info.d_model * 4 / 2**20
    done = [0]

    def counted(*args: Any, **kw: Any) -> Any:
        out = collect.read_batch(*args, **kw)
        done[0] += int(out.shape[0])
        return out

    before = _rss_mb()
    samples: list[tuple[int, float]] = []
    finished = threading.Event()

    def sample() -> None:
        while not finished.is_set():
            samples.append((done[0], _rss_mb() - before))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    acts = lirefs.collect_activations(
        model, prompts, batch_size=batch_size, progress=False, run_batch=counted
    )
    seconds = time.perf_counter() - t
    finished.set()
    sampler.join()
    samples.append((n, _rss_mb() - before))
    beyond = [growth - k * row_mb for k, growth in samples]
    print(
        json.dumps(
            {
                "n_prompts": n,
                "traces": -(-n // batch_size),
                "seconds": seconds,
                "peak_growth_mb": max(g for _, g in samples),
                "output_mb": acts.numel() * 4 / 2**20,
                "beyond_output_median_mb": statistics.median(beyond),
                "beyond_output_max_mb": max(beyond),
                "beyond_output_end_mb": beyond[-1],
                "samples": len(samples),
            }
        )
    )


def _leak_child(rounds: int, n: int, batch_size: int) -> None:
    """Run in a subprocess: the same collection and steered generation, round after round.

    After each round (results dropped, ``gc.collect()``), records the number of live Python
    objects, the resident set, and the resident set after glibc's ``malloc_trim(0)`` hands free
    heap pages back (what is really still allocated, without the allocator's spare pages).
    nnsight objects kept alive by a trace would show up as a rising object count.
    """
    import ctypes
    import gc

    import lirefs

    model = _random_llama()
    prompts = _numbered_prompts(n)
    r = torch.randn(256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    libc = ctypes.CDLL("libc.so.6")
    gen_prompts = prompts[: 2 * batch_size]

    def one_round() -> None:
        lirefs.collect_activations(model, prompts, batch_size=batch_size, progress=False)
        lirefs.generate(
            model, gen_prompts, direction=r, layer=2, alpha=0.1, max_new_tokens=8, progress=False
        )

    one_round()  # warm-up: nnsight's and torch's first-use caches
    rows = []
    t = time.perf_counter()
    for i in range(rounds):
        one_round()
        gc.collect()
        raw = _rss_mb()
        libc.malloc_trim(0)
        rows.append(
            {"round": i + 1, "objects": len(gc.get_objects()), "rss_mb": raw, "live_mb": _rss_mb()}
        )
    traces = rounds * (-(-n // batch_size) + 2)
    print(
        json.dumps(
            {
                "rounds": rounds,
                "prompts_per_round": n,
                "traces": traces,
                "seconds": time.perf_counter() - t,
                "rows": rows,
            }
        )
    )


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.collect", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LIREFS_PROGRESS": "0"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scaling(sizes: list[int], batch_size: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        row = _child(["--scaling-child", str(n), "--batch-size", str(batch_size)])
        row["ms_per_prompt"] = 1000 * row["seconds"] / n
        rows.append(row)
    return rows


def leak(rounds: int, n: int, batch_size: int) -> dict[str, Any]:
    res = _child(
        ["--leak-child", str(rounds), "--leak-prompts", str(n), "--batch-size", str(batch_size)]
    )
    first, last = res["rows"][0], res["rows"][-1]
    res["objects_change"] = last["objects"] - first["objects"]
    res["live_change_mb"] = last["live_mb"] - first["live_mb"]
    res["live_max_minus_first_mb"] = max(r["live_mb"] for r in res["rows"]) - first["live_mb"]
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,10000,30000")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="Keep the throughput part of the last result file (--no-scaling and --no-leak "
        "keep theirs too).",
    )
    parser.add_argument("--leak-rounds", type=int, default=20)
    parser.add_argument("--leak-prompts", type=int, default=1000)
    parser.add_argument("--no-leak", action="store_true")
    parser.add_argument("--scaling-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--leak-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_child is not None:
        _scaling_child(args.scaling_child, args.batch_size)
        return {}
    if args.leak_child is not None:
        _leak_child(args.leak_child, args.leak_prompts, args.batch_size)
        return {}
    result: dict[str, Any] = {"environment": environment(args.device, "float32")}
    name = "collect" if args.device == "cpu" else f"collect-{args.device.replace(':', '')}"
    previous = RESULTS / f"{name}.json"
    old = json.loads(previous.read_text()) if previous.is_file() else {}
    # a part that is skipped keeps its figures from the last result file
    for part, skipped in (
        ("throughput", args.no_throughput),
        ("scaling", args.no_scaling),
        ("leak", args.no_leak),
    ):
        if skipped and part in old:
            result[part] = old[part]
    if args.no_throughput:
        if "throughput" not in result:
            parser.error(f"--no-throughput needs an earlier {previous}")
    else:
        result["throughput"] = throughput(args.prompts, args.batch_size, args.device, args.repeats)
    if not args.no_scaling:
        result["scaling"] = scaling([int(s) for s in args.sizes.split(",")], args.batch_size)
    if not args.no_leak:
        result["leak"] = leak(args.leak_rounds, args.leak_prompts, args.batch_size)
    path = write_result(name, result)
    tp = result["throughput"]
    print(
        markdown_table(
            [
                {"method": k, "seconds": v, "prompts/s": tp["prompts_per_second"][k]}
                for k, v in tp["seconds"].items()
            ]
        )
    )
    print(
        f"lirefs vs HF forward: {tp['ratio_vs_hf_forward']:.2f}x; vs nnsight full: {tp['ratio_vs_nnsight_full']:.2f}x"
    )
    if "scaling" in result:
        print(markdown_table(result["scaling"]))
    if "leak" in result:
        print(markdown_table(result["leak"]["rows"]))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
