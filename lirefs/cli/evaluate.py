"""``lirefs evaluate``: benchmark accuracy per steering strength, with intervals and paired tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ..console import console, out_console
from ..steer import MODES, get_mode
from ._common import (
    CONTEXT_SETTINGS,
    LIMIT,
    SEED,
    ModelArgs,
    calibration_entry,
    check_output,
    check_text,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    layer_option,
    load_calibration,
    model_options,
    parse_alpha_list,
)

#: ``--paper-alphas``: the paper's sweep (docs/method.md) plus the unsteered baseline and the
#: directional ablation alpha = -1.
PAPER_ALPHAS = (-1.0, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15)


def parse_alphas(
    values: tuple[str, ...], paper: bool, has_direction: bool, calibration: Any = None
) -> list[float]:
    """``--alpha`` values (repeatable, comma lists allowed) plus ``--paper-alphas``.

    Default: ``0, 0.1`` with a direction (baseline and the paper's default alpha), ``0`` without.
    Calibrated names (``calibrated``, ``-calibrated/2``) are resolved through ``calibration``.
    """
    alphas = parse_alpha_list(values, calibration)
    if paper:
        alphas += PAPER_ALPHAS
    if not alphas:
        alphas = [0.0, 0.1] if has_direction else [0.0]
    return sorted(dict.fromkeys(alphas))


def _signed(value: float | None) -> str:
    return "none" if value is None else f"{value:+.5g}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(ci: Any, signed: bool = False) -> str:
    if signed:
        return f"[{100 * ci[0]:+.1f},{100 * ci[1]:+.1f}]"
    return f"[{100 * ci[0]:.1f},{100 * ci[1]:.1f}]"


def print_result_table(result: Any) -> None:
    """A rich table: alpha, accuracy, 95% CI, no-answer rate, difference vs 0 with CI, p."""
    from rich import box
    from rich.table import Table

    settings = result.metadata.get("settings", {})
    mode = settings.get("mode")
    n_layers = (result.metadata.get("model") or {}).get("n_layers")
    layer = f", layer {result.layer} ({result.layer_source})" if result.layer is not None else ""
    table = Table(
        title=f"{result.benchmark}: {result.n_items} items, mode {mode}{layer}",
        caption="acc (strict: the benchmark's answer phrase), flex (\\boxed{} first, else the "
        "last number/letter), no ans (no strict answer), Δ in %; 95% CI: exact Clopper-Pearson; "
        "Δ: paired difference of strict acc against alpha 0 with its exact CI given the items that changed (McNemar's); "
        "p: exact McNemar test, p_holm: Holm-adjusted across alphas and controls; degen: % of "
        "collapsed outputs (repetition, punctuation or whitespace runs); (1+α)^L: how much "
        "paper mode scales the direction's component",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in (
        "alpha",
        "acc",
        "95% CI",
        "flex",
        "flex 95% CI",
        "no ans",
        "Δ vs 0",
        "Δ 95% CI",
        "p",
        "p_holm",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("degen", justify="right", no_wrap=True)
    steering_mode = get_mode(mode)
    depth = int(n_layers) if isinstance(n_layers, int) else 0
    show_scale = isinstance(n_layers, int) and steering_mode.effective_scale(0.0, depth) is not None
    if show_scale:
        header = steering_mode.scale_formula.replace("{n}", "L").replace("alpha", "α")
        table.add_column(header.split(" (")[0], justify="right", no_wrap=True)
    within = (settings.get("calibration") or {}).get("within_budget")
    if within is not None:
        table.add_column("budget", justify="right", no_wrap=True)
    for alpha in result.alphas:
        paired = result.paired.get(alpha)
        row = [
            f"{alpha:+g}",
            _pct(result.accuracy[alpha]),
            _ci(result.ci[alpha]),
            _pct(result.flexible_accuracy[alpha]),
            _ci(result.flexible_ci[alpha]),
            _pct(result.no_answer_rate[alpha]),
            f"{100 * paired.diff:+.1f}" if paired else "",
            _ci(paired.ci, signed=True) if paired else "",
            f"{paired.p_value:.3g}" if paired else "",
            _p(paired.p_holm) if paired else "",
        ]
        row.append(_pct(result.degenerate[alpha]) if result.degenerate else "")
        if show_scale:
            scale = 1.0 if alpha == 0.0 else steering_mode.effective_scale(alpha, depth)
            row.append("ablated" if scale == 0.0 else f"{scale:.3g}")
        if within is not None:
            mark = within.get(f"{alpha!r}")
            row.append("ok" if mark is True else "!" if mark is False else "?")
        table.add_row(*row, style="bold" if alpha == 0.0 else None)
    for b in result.prompt_baselines.values():
        # an unsteered row whose prompts carry the text: tested against alpha 0 like a steered one
        r, paired = b.row, b.paired
        row = [
            b.label,
            _pct(r["accuracy"]),
            _ci(tuple(r["ci"])),
            _pct(r["flexible_accuracy"]),
            _ci(tuple(r["flexible_ci"])),
            _pct(r["no_answer_rate"]),
            f"{100 * paired.diff:+.1f}" if paired else "",
            _ci(paired.ci, signed=True) if paired else "",
            f"{paired.p_value:.3g}" if paired else "",
            _p(paired.p_holm) if paired else "",
            _pct(r["degenerate"]) if r.get("degenerate") is not None else "",
        ]
        if show_scale:
            row.append("1")
        table.add_row(*row, style="italic")
    out_console.print(table)
    _print_below_table(result, settings, within)


def _print_below_table(result: Any, settings: dict[str, Any], within: Any) -> None:
    """What follows the main table: the budget legend, the group, outcome and control tables,
    the Holm survivors and the run's notes (skipped rows, format, fewer exemplars)."""
    if within is not None:
        cal = settings["calibration"]
        out_console.print(
            f"budget: mean next-token KL <= {cal['budget']:g} ({escape(cal['path'])}: alpha_min "
            f"{_signed(cal['alpha_min'])}, alpha_max {_signed(cal['alpha_max'])}); ok within, "
            "! over (an alpha of that side at or below its |alpha| exceeded the budget), ? not measured"
        )
    if len({g for groups in result.by_group.values() for g in groups}) > 1:
        print_group_table(result)
    if result.outcome == "answer_logprob" and result.answer_logprob_n:
        print_answer_table(result)
    elif result.gold_logprob:
        print_gold_table(result)
    if result.controls:
        print_controls_table(result)
    if result.paired or result.vs_controls:
        survivors = result.holm_survivors()
        out_console.print(
            "survive Holm correction at 0.05: " + ("; ".join(survivors) if survivors else "none")
        )
    skipped = (result.metadata.get("data") or {}).get("skipped_rows") or []
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} malformed rows[/] (listed in result.json)")
    if settings.get("format_warning"):
        console.print(f"[yellow]warning:[/] {settings['format_warning']}")
    if settings.get("n_shots_reduced"):
        console.print(
            f"[yellow]{settings['n_shots_reduced']} prompts use fewer exemplars[/] to fit the "
            f"model's context of {settings.get('context_length')} tokens"
        )


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def print_group_table(result: Any) -> None:
    """Per alpha and group: strict accuracy, exact CI, n, and the paired test against alpha 0 on
    the group's items (McNemar p, Holm-adjusted across groups and alphas)."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="per group (strict accuracy)",
        caption="acc, Δ in %; 95% CI: exact Clopper-Pearson; Δ vs 0: paired on the group's items, "
        "exact McNemar p; p_holm: Holm-adjusted across groups and alphas",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in ("alpha", "group", "n", "acc", "95% CI", "Δ vs 0", "p", "p_holm"):
        table.add_column(name, justify="right" if name != "group" else "left", no_wrap=True)
    for alpha in result.alphas:
        for group, g in result.by_group.get(alpha, {}).items():
            paired = g.paired
            table.add_row(
                f"{alpha:+g}",
                group,
                str(g.n),
                _pct(g.accuracy),
                _ci(g.ci),
                f"{100 * paired.diff:+.1f}" if paired else "",
                _p(paired.p_value) if paired else "",
                _p(paired.p_holm) if paired else "",
                style="bold" if alpha == 0.0 else None,
            )
    out_console.print(table)


def print_answer_table(result: Any) -> None:
    """Per alpha: mean answer log-probability after the model's own working, its CI, the items
    without a value, and the paired difference vs 0 (benchmarks whose exemplars show working)."""
    from rich import box
    from rich.table import Table

    marker = (result.metadata.get("settings") or {}).get("answer_marker")
    table = Table(
        title="answer log-probability (nats, under the same steering)",
        caption=f"log p: mean over items of log p(answer | prompt + own output up to {marker!r}), "
        "95% CI, over the items whose output reached it (n; missing: the others); Δ: paired "
        "difference against alpha 0 over the items with a value at both, sign-flip p",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in ("alpha", "log p", "95% CI", "n", "missing", "Δ vs 0", "Δ 95% CI", "p", "p_holm"):
        table.add_column(name, justify="right", no_wrap=True)
    for alpha in result.alphas:
        lp = result.answer_logprob_paired.get(alpha)
        mean = result.answer_logprob.get(alpha)
        ci = result.answer_logprob_ci.get(alpha)
        table.add_row(
            f"{alpha:+g}",
            f"{mean:.2f}" if mean is not None else "",
            f"[{ci[0]:.2f},{ci[1]:.2f}]" if ci else "",
            str(result.answer_logprob_n.get(alpha, 0)),
            str(result.answer_logprob_missing.get(alpha, 0)),
            f"{lp.diff:+.2f} (n={lp.n})" if lp else "",
            f"[{lp.ci[0]:+.2f},{lp.ci[1]:+.2f}]" if lp else "",
            f"{lp.p_value:.3g}" if lp else "",
            _p(lp.p_holm) if lp else "",
            style="bold" if alpha == 0.0 else None,
        )
    out_console.print(table)


def print_gold_table(result: Any) -> None:
    """Per alpha: mean gold-answer log-probability, its CI, and the paired difference vs 0."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="gold-answer log-probability (nats, under the same steering)",
        caption="log p: mean over items of log p(gold_text | prompt), 95% bootstrap CI; Δ: paired "
        "difference against alpha 0, paired bootstrap CI, two-sided sign-flip p",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in ("alpha", "log p", "95% CI", "Δ vs 0", "Δ 95% CI", "p", "p_holm"):
        table.add_column(name, justify="right", no_wrap=True)
    for alpha in result.alphas:
        lp = result.gold_logprob_paired.get(alpha)
        low, high = result.gold_logprob_ci[alpha]
        table.add_row(
            f"{alpha:+g}",
            f"{result.gold_logprob[alpha]:.2f}",
            f"[{low:.2f},{high:.2f}]",
            f"{lp.diff:+.2f}" if lp else "",
            f"[{lp.ci[0]:+.2f},{lp.ci[1]:+.2f}]" if lp else "",
            f"{lp.p_value:.3g}" if lp else "",
            _p(lp.p_holm) if lp else "",
            style="bold" if alpha == 0.0 else None,
        )
    out_console.print(table)


def print_controls_table(result: Any) -> None:
    """Per steered alpha: the real direction beside each control, and the paired tests of the
    real direction minus that control (accuracy: McNemar; gold log-prob: paired bootstrap CI and
    sign-flip p)."""
    from rich import box
    from rich.table import Table

    gold = bool(result.gold_logprob)
    table = Table(
        title="real direction vs controls (same alphas, mode, layer and items; alpha 0 shared)",
        caption="acc, degen in %; Δ = real minus control, paired by item; random-i: seeded "
        "random unit directions; shuffled: mean difference with permuted class labels",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    names = ["alpha", "direction", "acc", "degen"]
    names += ["log p"] if gold else []
    names += ["Δ acc", "p(Δ acc)", "p_holm"]
    names += ["Δ log p", "Δ log p CI", "p(Δ log p)", "p_holm(Δ log p)"] if gold else []
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for alpha in result.alphas:
        if alpha == 0.0:
            continue
        row = [f"{alpha:+g}", "real", _pct(result.accuracy[alpha]), _pct(result.degenerate[alpha])]
        row += [f"{result.gold_logprob[alpha]:.2f}"] if gold else []
        table.add_row(*row, *[""] * (len(names) - len(row)), style="bold")
        for name, control in result.controls.items():
            tests = result.vs_controls.get(alpha, {}).get(name, {})
            acc, lp = tests.get("accuracy"), tests.get("gold_logprob")
            row = ["", name, _pct(control.accuracy[alpha]), _pct(control.degenerate[alpha])]
            row += [f"{control.gold_logprob[alpha]:.2f}"] if gold else []
            row += (
                [f"{100 * acc.diff:+.1f}", f"{acc.p_value:.3g}", _p(acc.p_holm)]
                if acc
                else ["", "", ""]
            )
            if gold:
                row += (
                    [
                        f"{lp.diff:+.2f}",
                        f"[{lp.ci[0]:+.2f},{lp.ci[1]:+.2f}]",
                        f"{lp.p_value:.3g}",
                        _p(lp.p_holm),
                    ]
                    if lp
                    else ["", "", "", ""]
                )
            table.add_row(*row)
    out_console.print(table)


def save_outputs(result: Any, out: Path | None, plot: bool) -> list[str]:
    """Write the run's files and return their paths: with ``out`` the folder as one unit
    (``result.json``, ``lm_eval/``, the plots, and ``records.jsonl`` as the run appended it, which
    may hold finished records of other alphas or items); ``plot`` without ``out``:
    ``dose_response.png`` in the current folder."""
    from ..evaluation.result import RESULT_KIND
    from ..outputs import output_folder

    if out is None:
        return [str(result.plot_dose_response(Path("dose_response.png")))] if plot else []
    with output_folder(out, RESULT_KIND, keep=("records.jsonl",)) as staging:
        result.save(staging.path, records=False)
        files = [str(out / name) for name in ("result.json", "records.jsonl", "lm_eval")]
        try:
            files.append(str(staging.final(result.plot(staging.path / "accuracy_vs_alpha.png"))))
        except ImportError:
            console.print(
                "matplotlib is not installed: skipped accuracy_vs_alpha.png "
                "(pip install 'lirefs[plots]')"
            )
        if plot:
            target = staging.path / "dose_response.png"
            files.append(str(staging.final(result.plot_dose_response(target))))
    return files


def _print_benchmarks() -> None:
    from rich.table import Table

    from ..evaluation import benchmarks, get_benchmark

    table = Table(title="benchmarks", header_style="bold")
    for name in ("name", "kind", "source", "items", "shots (split)", "description"):
        table.add_column(name)
    for name in benchmarks():
        b = get_benchmark(name)
        shots = f"{b.n_shots} ({b.shot_split})" if b.n_shots else "0"
        table.add_row(name, b.kind, b.source, b.eval_split, shots, b.description)
    out_console.print(table)


@click.command("evaluate", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--benchmark",
    "-B",
    default=None,
    help="Benchmark name (see --list-benchmarks), e.g. gsm8k, mgsm-zh, builtin-arithmetic.",
)
@click.option(
    "--list-benchmarks", is_flag=True, help="List the benchmarks with their sources and exit."
)
@click.option(
    "--direction",
    "-d",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Direction file (.safetensors) from `lirefs direction`.",
)
@layer_option(
    "Residual index whose direction is used (0..L; default: the layer the direction file "
    "records as chosen on held-out data)."
)
@click.option(
    "--alpha",
    "-a",
    "alpha_values",
    multiple=True,
    help="Steering strength; repeat or give a comma list (default 0,0.1 with --direction). "
    "With --calibration also calibrated, -calibrated or either divided by a number "
    "(--alpha 0,calibrated,-calibrated/2).",
)
@click.option(
    "--calibration",
    "calibration_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file from `lirefs calibrate` of this model, direction, layer and mode: resolves "
    "--alpha calibrated and marks each alpha within the KL budget (ok: 0, 0 < alpha <= "
    "alpha_max or alpha_min <= alpha < 0), over it (!: |alpha| at or beyond the smallest "
    "|alpha| of its side measured over the budget) or not measured (?).",
)
@click.option(
    "--paper-alphas",
    is_flag=True,
    help="Add the paper's sweep: 0, ±0.05, ±0.10, ±0.15 and the ablation -1.",
)
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default="project",
    show_default=True,
    help="How the direction is applied (see `lirefs steer --help`).",
)
@click.option(
    "--limit",
    type=LIMIT,
    default=None,
    help="Score a seeded random sample of N items, stratified by group (see --seed).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Score only the items of this group (a rung of builtin-ladder, an MMLU-Pro category); "
    "repeatable or comma-separated. --limit then samples those groups.",
)
@click.option(
    "--chat-template",
    is_flag=True,
    help="Prompt with the model's chat template: each exemplar a user and an assistant turn.",
)
@click.option(
    "--system",
    "system_prompt",
    default=None,
    help="System message before the exemplars (with --chat-template).",
)
@click.option(
    "--thinking/--no-thinking",
    default=None,
    help="The model thinks in <think>...</think> before answering (default: detected from the "
    "chat template); the answer is read after </think>.",
)
@click.option(
    "--max-new-tokens",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    help="Generation length (default: the benchmark's; 200 for the paper's benchmarks).",
)
@click.option(
    "--data-path",
    type=click.Path(path_type=Path),
    default=None,
    help="Local file or folder in the benchmark's columns instead of the Hugging Face Hub.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for result.json, records.jsonl (resumable) and accuracy_vs_alpha.png.",
)
@click.option("--skip-bad-rows", is_flag=True, help="Leave malformed data rows out (listed).")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=SEED,  # checked before the model loads, not after the run
    help="Seed of the --limit sample and the bootstrap.",
)
@click.option(
    "--n-boot",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bootstrap resamples.",
)
@click.option(
    "--controls",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Rerun every steered alpha along N seeded random unit directions (see --seed).",
)
@click.option(
    "--control-activations",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Activation file from `lirefs collect`: adds a shuffled-label control built from its "
    "train half at the direction's layer.",
)
@click.option(
    "--gold-logprob/--no-gold-logprob",
    default=True,
    show_default=True,
    help="Score the log-probability of each item's gold answer under the same steering.",
)
@click.option(
    "--plot",
    "plot",
    is_flag=True,
    help="Write dose_response.png (accuracy, gold log-prob, degeneration vs alpha, controls "
    "shaded) into --out, or the current folder.",
)
@click.option(
    "--prompt-baseline",
    "prompt_baselines",
    multiple=True,
    metavar="TEXT",
    help='Add an unsteered row whose prompts end each question with TEXT (before "\\nA:"; '
    "exemplars unchanged), tested against alpha 0 like a steered row; repeatable. E.g. "
    '--prompt-baseline "Let\'s think step by step."',
)
@click.option(
    "--no-prefix-cache",
    is_flag=True,
    help="Run every full prompt per batch instead of computing the shared few-shot prefix once "
    "per alpha (the same tokens, slower; remote runs always do this).",
)
@model_options
@json_option
@handle_errors
@holds_output_lock
def command(
    benchmark: str | None,
    list_benchmarks: bool,
    direction: Path | None,
    layer: int | None,
    alpha_values: tuple[str, ...],
    calibration_path: Path | None,
    paper_alphas: bool,
    mode: str,
    limit: int | None,
    groups: tuple[str, ...],
    chat_template: bool,
    system_prompt: str | None,
    thinking: bool | None,
    max_new_tokens: int | None,
    data_path: Path | None,
    out: Path | None,
    skip_bad_rows: bool,
    seed: int,
    n_boot: int,
    controls: int,
    control_activations: Path | None,
    gold_logprob: bool,
    plot: bool,
    no_prefix_cache: bool,
    prompt_baselines: tuple[str, ...],
    model_args: ModelArgs,
    as_json: bool,
) -> None:
    """Accuracy on a benchmark for each steering strength alpha, strict and flexible readings,
    with exact 95% intervals, the no-answer rate, and the paired difference against alpha = 0
    (paired bootstrap CI, McNemar p).

    Greedy decoding; an output with no extractable answer counts as wrong. With --out the run
    is resumable: rerun the same command and it continues from records.jsonl.

    \b
    Examples:
      lirefs evaluate --benchmark builtin-arithmetic --direction liref.safetensors \\
          --alpha 0,0.1,-0.1 --limit 50 --out eval/
      lirefs evaluate -B gsm8k -m meta-llama/Meta-Llama-3-8B -d liref.safetensors \\
          --layer 21 --paper-alphas --out gsm8k-llama3/
      lirefs evaluate -B mgsm-zh --data-path mgsm/mgsm_zh.tsv -d liref.safetensors
      lirefs evaluate -B gsm8k -m Qwen/Qwen2.5-7B-Instruct --chat-template --limit 200
      lirefs evaluate -B builtin-facts -d liref.safetensors --paper-alphas --controls 2 \\
          --control-activations acts.safetensors --limit 40 --plot --out facts/
      lirefs evaluate --list-benchmarks
    """
    from ..evaluation import evaluate, get_benchmark
    from ..evaluation.result import RESULT_KIND
    from ..outputs import check_output_folder

    if list_benchmarks:
        _print_benchmarks()
        return
    if benchmark is None:
        raise click.UsageError("--benchmark is required; --list-benchmarks lists them")
    get_benchmark(benchmark)  # fail on a typo before loading the model
    if out is not None:
        check_output(out, folder=True)
        check_output_folder(out, RESULT_KIND)
    cal = (
        load_calibration(calibration_path, direction, layer, mode)
        if calibration_path is not None
        else None
    )
    alphas = parse_alphas(alpha_values, paper_alphas, direction is not None, cal)
    if system_prompt is not None:  # all options are checked before the model loads
        check_text(system_prompt, "--system")
    nn_model = model_args.load(direction)
    if cal is not None:
        cal.check(nn_model)
    pair = None
    if control_activations is not None:
        from ..analysis import ActivationSplit

        split = ActivationSplit.load(control_activations, model=nn_model)
        pair = (split.train_reasoning, split.train_memory)
    result = evaluate(
        nn_model,
        benchmark,
        direction=direction,
        layer=layer,
        alphas=alphas,
        mode=mode,
        limit=limit,
        remote=model_args.remote,
        batch_size=model_args.batch_size,
        max_new_tokens=max_new_tokens,
        data_path=data_path,
        records_path=out / "records.jsonl" if out is not None else None,
        seed=seed,
        n_boot=n_boot,
        skip_bad_rows=skip_bad_rows,
        chat_template=chat_template,
        system_prompt=system_prompt,
        thinking=thinking,
        controls=controls,
        control_activations=pair,
        gold_logprob=gold_logprob,
        reuse_prefix=not no_prefix_cache,
        prompt_baselines=prompt_baselines,
        groups=tuple(g.strip() for given in groups for g in given.split(",")),
    )
    if cal is not None and calibration_path is not None:
        result.metadata.setdefault("settings", {})["calibration"] = calibration_entry(
            cal, calibration_path, alpha_values, list(result.alphas)
        )
    files = save_outputs(result, out, plot)
    if as_json:
        echo_json({**result.to_dict(), "files": files})
        return
    print_result_table(result)
    if files:
        console.print(f"wrote {', '.join(files)}")
