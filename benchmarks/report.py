"""Rebuild docs/benchmarks.md from the JSON files in benchmarks/results/.

python -m benchmarks.report
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import RESULTS, markdown_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

Figures are ratios measured side by side in one run (variants interleaved, medians of repeats), by
the scripts in `benchmarks/` (`python -m benchmarks` reruns all of them and rewrites this page).
They are not timed tests. Each section names the machine, device, dtype and batch size it ran on.
"""


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _env_line(env: dict[str, Any]) -> str:
    keys = (
        "device",
        "dtype",
        "cpu",
        "cpu_count",
        "torch_threads",
        "gpu",
        "torch",
        "transformers",
        "nnsight",
    )
    return ", ".join(f"{k} {env[k]}" for k in keys if k in env)


def collect_section(res: dict[str, Any]) -> str:
    tp = res["throughput"]
    rows = [
        {
            "method": name,
            "seconds": secs,
            "prompts/s": tp["prompts_per_second"][name],
            "lirefs speed-up": secs / tp["seconds"]["lirefs"],
        }
        for name, secs in tp["seconds"].items()
    ]
    out = [
        "## Activation collection",
        "",
        f"Measured {res['measured']} on {_env_line(res['environment'])}; {tp['model']}, "
        f"{tp['n_prompts']} built-in prompts, batch size {tp['batch_size']}, "
        f"{tp['real_tokens']} real / {tp['padded_tokens']} padded tokens.",
        "",
        markdown_table(rows),
        "",
        f"- lirefs vs a plain HF forward with `output_hidden_states` (target >= 1.1x): "
        f"**{tp['ratio_vs_hf_forward']:.2f}x**",
        f"- lirefs vs nnsight saving full sequences: **{tp['ratio_vs_nnsight_full']:.2f}x**",
        f"- lirefs vs the headless forward (no LM head, `output_hidden_states`): "
        f"**{tp['ratio_vs_hf_headless']:.2f}x**",
    ]
    if "ratio_vs_hf_blocks" in tp:
        out.append(
            "- lirefs vs the blocks alone (no LM head, final state only: the compute floor): "
            f"**{tp['ratio_vs_hf_blocks']:.2f}x**"
        )
    if "ratio_token_budget_vs_fixed" in tp:
        out.append(
            f"- the default token-budget batching ({tp['token_budget_batches']} batches) vs batches "
            f"of {tp['batch_size']}: **{tp['ratio_token_budget_vs_fixed']:.2f}x**"
        )
    if "breakdown_s" in tp:
        b = tp["breakdown_s"]
        total = b["lirefs_total"]
        floor = b.get("blocks_forward", b["headless_forward"])  # older files: headless only
        overhead = max(b["remaining_overhead"], 0.0)
        out += [
            "",
            "Where the time goes (seconds for the whole set):",
            "",
            markdown_table(
                [
                    {
                        "part": "tokenize + pad + sort",
                        "seconds": b["tokenize_and_pad"],
                        "share": b["tokenize_and_pad"] / total,
                    },
                    {
                        "part": "forward through the blocks (final state only)",
                        "seconds": floor,
                        "share": floor / total,
                    },
                    {
                        "part": "nnsight tracing, copies to CPU, checks",
                        "seconds": overhead,
                        "share": overhead / total,
                    },
                ]
            ),
        ]
        if b["remaining_overhead"] < 0:
            out += [
                "",
                f"lirefs measured {-b['remaining_overhead']:.3g} s below the blocks-only floor in "
                "this run, so its own overhead is within the noise of the measurement (shown as 0).",
            ]
    if "scaling" in res:
        out += [
            "",
            "Scaling with the number of prompts (random Llama, d_model 256, 4 blocks, batch size "
            f"{tp['batch_size']}, a fresh process per size, after a warm-up batch). The resident set "
            "is sampled every 20 ms during collection; each sample minus the rows of the returned "
            "`[n, L + 1, d]` tensor filled so far is the memory *beyond the output*, which must "
            "level off rather than grow with the number of prompts:",
            "",
            markdown_table(
                [
                    {
                        "prompts": r["n_prompts"],
                        "traces": r["traces"],
                        "seconds": r["seconds"],
                        "ms/prompt": r["ms_per_prompt"],
                        "output MB": r["output_mb"],
                        "peak growth MB": r["peak_growth_mb"],
                        "beyond output, median MB": r["beyond_output_median_mb"],
                        "beyond output, max MB": r["beyond_output_max_mb"],
                    }
                    for r in res["scaling"]
                ]
            ),
        ]
    if "leak" in res:
        lk = res["leak"]
        rows = lk["rows"]
        shown = [rows[0], *rows[len(rows) // 4 : -1 : max(1, len(rows) // 4)], rows[-1]]
        out += [
            "",
            f"Repeated traces in one process: {lk['rounds']} rounds, each collecting "
            f"{lk['prompts_per_round']} prompts and running a steered generation, "
            f"{lk['traces']} traces in all ({lk['seconds']:.0f} s). After each round: live Python "
            "objects, the resident set, and the resident set after `malloc_trim(0)` (live "
            "memory without the allocator's spare pages):",
            "",
            markdown_table(
                [
                    {
                        "round": r["round"],
                        "Python objects": r["objects"],
                        "RSS MB": r["rss_mb"],
                        "live MB": r["live_mb"],
                    }
                    for r in shown
                ]
            ),
            "",
            f"- Python objects, last round minus first: **{lk['objects_change']:+d}**",
            f"- live memory, last round minus first: **{lk['live_change_mb']:+.1f} MB** "
            f"(largest rise over the first round: {lk['live_max_minus_first_mb']:+.1f} MB)",
        ]
    return "\n".join(out)


def steer_section(res: dict[str, Any]) -> str:
    rows = [
        {"variant": name, "wall median s": r["wall_median_s"], "cpu median s": r["cpu_median_s"]}
        for name, r in res["results"].items()
    ]
    ratios = [{"ratio": k, "value": v} for k, v in res["ratios"].items()]
    same = ", ".join(f"{k}: {v}" for k, v in res.get("same_tokens", {}).items())
    load = res.get("load_average_before_after")
    busy = (
        f" 1-minute load average {load[0][0]:.1f} before and {load[1][0]:.1f} after the run "
        f"(on {res.get('threads', '?')} thread(s); a load above the core count inflates every "
        "variant and blurs the ratios)."
        if load
        else ""
    )
    return "\n".join(
        [
            "## Steered generation",
            "",
            f"Measured on {res['device']}, torch {res['torch']}, "
            f"{res['threads']} thread(s); {res['model']} ({res['n_layers']} blocks), {res['prompts']} "
            f"prompts in one batch, {res['max_new_tokens']} new tokens, paper mode alpha {res['alpha']}, "
            f"{res['repeats']} repeats. Identical tokens: {same}.{busy}",
            "",
            markdown_table(rows),
            "",
            markdown_table(ratios),
            "",
            "Targets: steered/unsteered <= 1.05 (issue) / 1.10 (design), steered/hooks <= 1.05.",
        ]
    )


def _shared_tokens(cache: Any) -> str:
    """The prefix cache's setting as recorded (``{"shared_tokens": n}`` or a bare number)."""
    n = cache.get("shared_tokens") if isinstance(cache, dict) else cache
    return f"{n} tokens" if n is not None else "none"


def evaluation_section(res: dict[str, Any]) -> str:
    out = [
        "## Evaluation throughput",
        "",
        f"Measured {res['measured']} on {_env_line(res['environment'])}; {res['benchmark_name']}, "
        f"8-shot prompts, batch size {res['batch_size']}, {res['max_new_tokens']} new tokens, "
        f"direction layer {res['layer']}.",
        "",
        markdown_table(res["rows"]),
    ]
    if "prefix_cache" in res:
        flips = res.get("flips") or []
        out += [
            "",
            f"`plain` runs every full prompt per batch (`reuse_prefix=False`), `prefix` computes "
            f"the shared few-shot prefix ({_shared_tokens(res['prefix_cache'])}) once per alpha; "
            "the two "
            f"alternate, {res.get('repeats', 1)} runs each, medians shown.",
            "",
            "- evaluation items/s, prefix cache over the full-prompt path (target >= 1.4x): "
            + ", ".join(f"**{r['speed-up']:.2f}x** at alpha {r['alpha']:g}" for r in res["rows"]),
            "- outputs that differ: "
            + (
                ", ".join(
                    f"{f['id']} (alpha {f['alpha']:g}, top-2 gap {f['top2_gap']:.3g})"
                    for f in flips
                )
                if flips
                else "none"
            ),
        ]
    if "stop" in res:
        st = res["stop"]
        out += [
            "",
            "Stopping at the benchmark's `\\nQ:` marker, side by side on the same prompts "
            "(unsteered `lirefs.generate`"
            + (
                f", alternated, medians of {res.get('repeats', 1)}):"
                if st.get("alternated")
                else ", one run each):"
            ),
            "",
            markdown_table(
                [
                    {"variant": k, "seconds": v, "new tokens": st["new_tokens"][k]}
                    for k, v in st["seconds"].items()
                ]
            ),
            "",
            f"- speed-up from the stop string: **{st['speedup']:.2f}x**; tokens before the stop "
            f"identical: {st['same_tokens_before_stop']}",
        ]
    return "\n".join(out)


def render() -> str:
    parts = [HEADER]
    for name, section in (
        ("collect", collect_section),
        ("steer", steer_section),
        ("evaluation", evaluation_section),
    ):
        res = _load(name)
        if res is not None:
            parts.append(section(res))
    gpu = sorted(RESULTS.glob("*-cuda*.json"))
    if not gpu:
        parts.append(
            "## GPU\n\nNo GPU figures yet: the suite records them (`--device cuda`) whenever "
            "it runs on a machine with one."
        )
    notes = Path(__file__).resolve().parent / "NOTES.md"
    if notes.is_file():
        parts.append(notes.read_text().strip())
    return "\n\n".join(parts) + "\n"


def main() -> None:
    DOC.write_text(render())
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
