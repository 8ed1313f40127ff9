"""Collection cost: lirefs vs a plain HF forward, vs nnsight saving full sequences; memory vs prompts.

Throughput (SmolLM2-135M, CPU by default): the same prompts, the same length-sorted left-padded
batches, timed in alternation:

* ``hf_forward``: ``model(**batch, output_hidden_states=True)`` then ``hidden_states[l][:, -1]`` for
  every layer (the floor a user would write by hand: full forward, LM head included);
* ``hf_headless``: the base model without LM head, ``output_hidden_states=True`` (the real floor);
* ``nnsight_full``: one nnsight trace per batch saving every layer's full ``[b, t, d]`` output;
* ``lirefs``: ``lirefs.collect_activations`` (last token only, forward stopped after the final norm).

Scaling (a random Llama of d_model 256, 4 blocks, in fresh subprocesses): wall time and peak RSS for
100, 1,000 and 10,000 prompts, to show time linear and memory flat in the number of prompts.

    python -m benchmarks.collect [--prompts 64] [--batch-size 8] [--device cpu] [--no-scaling]
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
    from lirefs.collect import prompt_batches

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

    times = interleaved_times(
        {
            "hf_forward": hf_forward,
            "hf_headless": hf_headless,
            "nnsight_full": nnsight_full,
            "lirefs": lirefs_collect,
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
        "breakdown_s": {
            "tokenize_and_pad": tokenize_s,
            "headless_forward": times["hf_headless"],
            "lirefs_total": times["lirefs"],
            "remaining_overhead": times["lirefs"] - times["hf_headless"] - tokenize_s,
        },
    }


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _scaling_child(n: int, batch_size: int) -> None:
    """Run in a subprocess: collect n prompts on a random d=256 Llama, print time and memory.

    Every size uses prompts of the same length distribution (built-in prompts with a numbered
    suffix). A warm-up batch runs first; a thread samples the resident set every 50 ms, so the
    reported peak is the growth during collection itself, not the model load.
    """
    import threading

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
    model = lirefs.wrap(
        LlamaForCausalLM(config).eval(),
        AutoTokenizer.from_pretrained(smollm2_folder()),
        name="random-llama-d256",
    )
    base = _prompts(800)
    prompts = [f"{base[i % len(base)]}(#{i})" for i in range(n)]
    lirefs.collect_activations(model, prompts[:batch_size], batch_size=batch_size, progress=False)
    before = _rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    acts = lirefs.collect_activations(model, prompts, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "n_prompts": n,
                "seconds": seconds,
                "rss_before_mb": before,
                "peak_rss_mb": max(peak[0], _rss_mb()),
                "output_mb": acts.numel() * 4 / 2**20,
            }
        )
    )


def scaling(sizes: list[int], batch_size: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.collect",
                "--scaling-child",
                str(n),
                "--batch-size",
                str(batch_size),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LIREFS_PROGRESS": "0"},
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["ms_per_prompt"] = 1000 * row["seconds"] / n
        row["growth_mb"] = row["peak_rss_mb"] - row["rss_before_mb"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="Keep the throughput part of the last result file.",
    )
    parser.add_argument("--scaling-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_child is not None:
        _scaling_child(args.scaling_child, args.batch_size)
        return {}
    result: dict[str, Any] = {"environment": environment(args.device, "float32")}
    name = "collect" if args.device == "cpu" else f"collect-{args.device.replace(':', '')}"
    if args.no_throughput:
        result["throughput"] = json.loads((RESULTS / f"{name}.json").read_text())["throughput"]
    else:
        result["throughput"] = throughput(args.prompts, args.batch_size, args.device, args.repeats)
    if not args.no_scaling:
        result["scaling"] = scaling([int(s) for s in args.sizes.split(",")], args.batch_size)
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
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
