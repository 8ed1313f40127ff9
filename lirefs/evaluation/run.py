"""``evaluate``: benchmark accuracy under steering, one pass per alpha (docs/method.md, "Evaluation").

``evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))`` builds every item's k-shot prompt,
generates greedily with ``lirefs.generate`` once per alpha and batch, extracts each answer with the
benchmark's strict rule (no answer = wrong, never a guess) and reports per alpha:

* ``accuracy[alpha]`` and ``ci[alpha]``: the exact 95% Clopper-Pearson interval;
* ``no_answer_rate[alpha]``: the share of outputs with no extractable answer;
* ``paired[alpha]`` (when 0 is among the alphas): the accuracy difference against alpha = 0 with a
  exact interval conditional on the items that changed and McNemar's exact p-value;
* ``gold_logprob[alpha]``: the mean over items of ``log p(gold_text | prompt)`` under the same
  steering as the generation (:mod:`.outcomes`), with its interval and the paired difference
  against alpha 0; ``degenerate[alpha]``: the share of collapsed outputs;
* ``controls``: with ``controls=n`` every steered alpha is rerun along ``n`` seeded random unit
  directions (and, with ``control_activations``, a shuffled-label direction), each an
  ``EvalResult`` that reuses the alpha-0 records (alpha 0 is the identity for every direction),
  and ``vs_controls[alpha][name]`` holds the paired real-minus-control tests (:mod:`.compare`).

With ``records_path`` each finished batch is appended to a JSONL file (:mod:`.records`); a rerun
with the same model, data and settings reuses those records and generates only what is missing.

This module is the loop only (alpha x direction or control x batch). The settings are an
:class:`~.config.EvalConfig`; what the run resolves first (direction, items, prompts, prefix cache,
metadata) is :mod:`.plan`; one output is read and judged by :mod:`.scoring`; the records become an
``EvalResult`` (intervals, paired tests, groups, Holm) in :mod:`.summary`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, cast

from ..console import progress_bar, stage
from ..errors import DataError
from ..reading import PLAIN_FORMAT
from ..steer import GENERATE_BATCH_SIZE, SteeringPlan, warn_unmatched_stops
from ..steer import plan as plan_steering
from ..store import dump_jsonl_line, lock
from .compare import compare_to_control
from .config import EvalConfig
from .engines import EvalEngine
from .plan import LAYER_FROM_DIRECTION, LAYER_FROM_USER, RunPlan, make_plan, stratified_order
from .records import Record, resume
from .result import EvalResult
from .scoring import score_output, working_prefix
from .summary import adjust_holm, summarise, summarise_baseline
from .tasks import Benchmark, get_benchmark
from .tasks.base import continuation

__all__ = [
    "LAYER_FROM_DIRECTION",
    "LAYER_FROM_USER",
    "PLAIN_FORMAT",
    "EvalConfig",
    "RunPlan",
    "evaluate",
    "stratified_order",
]

# ---------------------------------------------------------------------------------------------
# evaluate


def evaluate(
    model: Any,
    benchmark: str | Benchmark,
    *,
    direction: Any = None,
    layer: int | None = None,
    alphas: float | Iterable[float] = (0.0,),
    mode: str = "project",
    limit: int | None = None,
    remote: bool | str | None = None,
    batch_size: int | None = GENERATE_BATCH_SIZE,
    max_new_tokens: int | None = None,
    data_path: str | Path | None = None,
    records_path: str | Path | None = None,
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool | None = None,
    skip_bad_rows: bool = False,
    chat_template: bool = False,
    system_prompt: str | None = None,
    thinking: bool | None = None,
    controls: int = 0,
    control_activations: tuple[Any, Any] | None = None,
    gold_logprob: bool = True,
    reuse_prefix: bool = True,
    prompt_baselines: Iterable[str] = (),
    groups: Iterable[str] = (),
    config: EvalConfig | None = None,
    engine: EvalEngine | None = None,
) -> EvalResult:
    """Accuracy of ``model`` on ``benchmark`` for each steering strength in ``alphas``.

    The keywords build an :class:`~lirefs.EvalConfig` (checked once, before anything runs);
    ``config=`` passes a ready one instead (the other keywords must then be left out):
    ``lirefs.evaluate(model, "gsm8k", config=lirefs.EvalConfig(alphas=(0.0, 0.1), ...))``.

    Args:
        model: an nnsight model from ``lirefs.load_model``.
        benchmark: a name from ``lirefs.benchmarks()`` or a ``Benchmark``.
        direction: a ``lirefs.Direction`` or the path of a saved one; needed for any alpha != 0.
        layer: source layer of the direction. Default: the layer the direction records as chosen
            on its held-out split (``metadata["settings"]["best_layer"]``); an error if it has none.
        alphas: steering strengths; 0 is the unsteered baseline (generated without any edit).
        mode: as in ``lirefs.generate``: ``"project"`` (paper: ``x + alpha (x·r̂) r̂`` at every
            layer), ``"project-calibrated"``, ``"add"`` or ``"ablate"`` (alphas then must be 0
            and/or -1: -1 = ablated, since ``generate`` ignores alpha in that mode).
        limit: score a seeded random sample of ``limit`` items, stratified by group (MMLU-Pro
            category, C-Eval subject, template); the same ``seed`` gives the same items and a
            larger limit extends a smaller one's sample. ``None``: every item, dataset order.
        remote: ``False``, ``True`` (NDIF) or ``"local"``; ``None`` (default): what the model was
            loaded with (``load_model(remote=...)``).
        batch_size: prompts per ``generate`` call.
        max_new_tokens: generation length (default: the benchmark's, 200 for the paper's sets).
        data_path: local file or folder with the benchmark's columns instead of the Hub.
        records_path: JSONL to append records to after each batch; an existing file made with
            the same model, data and settings is resumed.
        seed: seed of the ``limit`` sample and of the bootstrap resampling.
        n_boot: bootstrap resamples.
        progress: progress bar per alpha (default: when stderr is a terminal).
        skip_bad_rows: leave malformed data rows out (listed in the metadata) instead of failing.
        chat_template: write each k-shot prompt as the model's chat turns (each exemplar a user
            and an assistant turn, lm-eval's multi-turn few-shot convention) through the
            tokenizer's chat template, instead of the paper's plain ``Q: ...\\nA: `` text.
        system_prompt: a system turn before the exemplars (needs ``chat_template``).
        thinking: the model writes a think block before its answer: the answer is read after
            ``</think>``, an unclosed think block is no answer, records keep the thinking apart,
            and the default length is the benchmark's thinking budget. ``None``: detected from
            the chat template (a template with a think block).
        controls: rerun every steered alpha along this many seeded random unit directions
            (``seed``; control ``i`` is the same vector for the same seed and width), with the
            same mode, layer and items; alpha 0 is reused. Results in ``result.controls``.
        control_activations: ``(reasoning_acts, memory_acts)`` ``[n, L + 1, d_model]`` (e.g. the
            direction's train half): adds a ``"shuffled"`` control, the difference of means at
            the same layer after permuting the class labels.
        gold_logprob: score ``log p(gold_text | prompt)`` per item under each steering (one
            teacher-forced forward per batch); ``False`` skips it.
        reuse_prefix: compute the few-shot prefix the prompts share (its KV cache, under each
            alpha's steering) once per alpha and run only each item's own tokens per batch
            (:mod:`.prefix`; local models only, a remote run always takes the plain path).
            ``False`` runs every full prompt per batch, as before.
        prompt_baselines: texts to prompt with instead of steering (e.g. ``("Let's think step
            by step.",)``): each adds an unsteered run whose prompts end each item's question
            with `` <text>`` (before ``"\nA:"``; the exemplars unchanged), summarised and
            tested against alpha 0 like a steered row: ``result.prompt_baselines[text]``
            (:mod:`.baselines`).
        groups: score only the items of these groups (e.g. ``("steps-2", "steps-3")``, rungs of
            ``builtin-ladder``; an unknown name raises ``DataError`` listing the benchmark's
            groups). With ``limit`` the sample is the first ``limit`` items of the same seeded
            order restricted to these groups, so a group's items are those an all-group run of
            the same ``seed`` takes first.
        config: every setting above as one ``EvalConfig``; exclusive with the keywords.
        engine: for tests and alternative backends: an ``EvalEngine`` (:mod:`.engines`: ``run``
            for greedy generation and ``gold_logprobs`` for the gold outcome, each under one
            ``SteeringPlan``) given the full prompt texts; it replaces the run's own choice
            (``PrefixEngine`` or ``FullPromptEngine``), so no prefix cache is used. Not a
            setting: records made with another engine resume as if made by this one.

    Returns:
        An ``EvalResult``: per alpha (and per group, when the items have groups) accuracy with
        exact intervals, paired tests against alpha 0 with raw and Holm-adjusted p-values, and
        the records.

    Raises:
        DataError: unknown benchmark, bad data, bad ``alphas``/``limit``/``batch_size``, or
            ``config`` given together with other keywords.
        DirectionError: an alpha != 0 without a direction, or a direction for another model.
        LayerError: no layer given and none recorded in the direction, or out of range.
        MetadataMismatchError: ``records_path`` belongs to another model, data set or settings.

    Warns:
        StopStringWarning: the benchmark's stop string occurred in none of the run's outputs
            while some ran to ``max_new_tokens`` (the records keep the whole texts).
        UserWarning: prompts longer than the context use fewer exemplars.
    """
    given = {
        "direction": direction,
        "layer": layer,
        "alphas": alphas,
        "mode": mode,
        "limit": limit,
        "remote": remote,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "data_path": data_path,
        "records_path": records_path,
        "seed": seed,
        "n_boot": n_boot,
        "progress": progress,
        "skip_bad_rows": skip_bad_rows,
        "chat_template": chat_template,
        "system_prompt": system_prompt,
        "thinking": thinking,
        "controls": controls,
        "control_activations": control_activations,
        "gold_logprob": gold_logprob,
        "reuse_prefix": reuse_prefix,
        "prompt_baselines": prompt_baselines,
        "groups": groups,
    }
    cfg = _config(config, given)
    bench = get_benchmark(benchmark)
    plan = make_plan(model, bench, cfg, engine)
    done = _generate(model, plan, cfg)
    return _assemble(plan, cfg, done)


def _config(config: EvalConfig | None, given: dict[str, Any]) -> EvalConfig:
    """``config``, or the ``EvalConfig`` of the keywords ``given``; never both."""
    if config is None:
        return EvalConfig(**given)
    if not isinstance(config, EvalConfig):
        raise DataError(f"config must be a lirefs.EvalConfig, got {type(config).__name__}")
    defaults = {f.name: f.default for f in fields(EvalConfig)}
    changed = sorted(k for k, v in given.items() if v is not defaults[k] and v != defaults[k])
    if changed:
        raise DataError(
            f"config= was given together with {', '.join(changed)}; put every setting in the "
            "EvalConfig (dataclasses.replace(config, ...)), or pass keywords only"
        )
    return config


Done = dict[tuple[str | None, float, int], dict[str, Any]]


def _generate(model: Any, plan: RunPlan, cfg: EvalConfig) -> Done:
    """Every record of the run (key: control name or None, alpha, item index): resumed from
    ``cfg.records_path`` where it already holds them, else generated batch by batch (and
    appended there)."""
    done: Done = {}
    hashes = {c.name: c.recipe["unit_hash"] for c in plan.control_list}
    fh = None
    # Another run appending to the same records at the same time would do the same work twice.
    held = contextlib.ExitStack()
    try:
        if cfg.records_path is not None:
            path = Path(cfg.records_path)
            held.enter_context(
                lock(
                    path,
                    what=f"the evaluation records {cfg.records_path}",
                    fix="wait for that run to finish (a rerun then resumes from its records), "
                    "or write somewhere else",
                    remove=True,
                )
            )
            old, fh = resume(path, plan.metadata, plan.bench, plan.data.items, hashes)
            done = {key: record.to_dict() for key, record in old.items()}
        if callable(getattr(plan.engine, "close", None)):
            held.callback(plan.engine.close)  # drops a prefix cache's last steered copy
        n_runs = sum(len(run_alphas) for _, _, run_alphas in plan.runs)
        size = int(cfg.batch_size or GENERATE_BATCH_SIZE)
        n_batches = n_runs * len(plan.batches(size))
        stage(
            f"evaluating {plan.bench.name}: {len(plan.items)} items x {n_runs} "
            f"run{'s' * (n_runs != 1)} (one per alpha and direction), "
            f"{n_batches} batches of up to {size}",
            cfg.progress,
        )
        for name, vector, run_alphas in plan.runs:
            for alpha in run_alphas:
                _run_alpha(model, plan, cfg, (name, vector, alpha), done, fh)
    finally:
        if fh is not None:
            fh.close()
        held.close()
    return done


def _run_alpha(
    model: Any,
    plan: RunPlan,
    cfg: EvalConfig,
    run: tuple[str | None, Any, float],
    done: Done,
    fh: IO[str] | None,
) -> None:
    """Generate the batches of one direction at one alpha that ``done`` lacks (in place)."""
    name, vector, alpha = run
    items, batch_size = plan.items, int(cfg.batch_size or GENERATE_BATCH_SIZE)
    what = f"{plan.bench.name} alpha={alpha:+g}" + (f" ({name})" if name else "")
    steering = _steering_plan(model, plan, cfg, vector, alpha)
    hashes = {c.name: c.recipe["unit_hash"] for c in plan.control_list}
    answer = plan.bench.answer_marker is not None
    batches = plan.batches(batch_size)
    label = f"evaluating {what}"
    start = f"{label}: {len(items)} items, {len(batches)} batches"
    with progress_bar(label, len(items), cfg.progress, start=start) as bar:
        for lo, hi in batches:
            if all(
                _finished(done.get((name, alpha, plan.order[i])), lo, hi, cfg.gold_logprob, answer)
                for i in range(lo, hi)
            ):
                bar.advance(hi - lo)
                continue
            for record in _run_batch(plan, cfg, (name, steering, alpha), (lo, hi)):
                if name in plan.baselines:
                    record["baseline"] = plan.baselines[name][0]
                elif name is not None:
                    record["control"], record["control_hash"] = name, hashes[name]
                done[(name, alpha, record["index"])] = record
                if fh is not None:
                    dump_jsonl_line(fh, record)
            bar.advance(hi - lo)


def _steering_plan(
    model: Any, plan: RunPlan, cfg: EvalConfig, vector: Any, alpha: float
) -> SteeringPlan:
    """The one ``SteeringPlan`` of a (direction, alpha) run: none at alpha 0 (plain greedy, no
    edit); ``"ablate"`` takes no alpha (any alpha != 0 of an ablation run is the ablated row)."""
    if alpha == 0.0:
        return SteeringPlan.none(model)
    return plan_steering(
        model, vector, plan.facts.layer, None if cfg.mode == "ablate" else alpha, cfg.mode
    )


def _assemble(plan: RunPlan, cfg: EvalConfig, done: Done) -> EvalResult:
    """The ``EvalResult`` of the real direction, its controls and the comparisons, Holm-adjusted."""
    alphas, order = list(cfg.alphas), plan.order
    facts = plan.facts
    records = [done[(None, alpha, i)] for alpha in alphas for i in order]
    if not facts.thinking and not cfg.chat_template:
        # chat turns end at EOS: "\nQ:" is a plain-prompt marker
        ran = [r for r in done.values() if r.get("n_tokens") is not None]
        warn_unmatched_stops(
            [r["output"] for r in ran],
            [r["n_tokens"] for r in ran],
            [plan.bench.stop],
            facts.max_new_tokens,
            what=f"{plan.bench.name} outputs",
            stacklevel=3,
            given=False,
        )
    result = summarise(records, plan.metadata, len(order))
    base = [done[(None, 0.0, i)] for i in order] if 0.0 in alphas else []
    for label, (text, _, _) in plan.baselines.items():
        own = [done[(label, 0.0, i)] for i in order]
        result.prompt_baselines[text] = summarise_baseline(
            text, own, base, plan.metadata, len(order)
        )
    for control in plan.control_list:
        # alpha 0 is the identity for every direction: the control shares the real run's records
        recs = [
            done[(None, 0.0, i)] if alpha == 0.0 else done[(control.name, alpha, i)]
            for alpha in alphas
            for i in order
        ]
        sub_meta = {**plan.metadata, "control": {"name": control.name, **control.recipe}}
        result.controls[control.name] = summarise(recs, sub_meta, len(order))
    if plan.control_list:
        for alpha in cfg.steered_alphas:
            result.vs_controls[alpha] = {}
        for control in plan.control_list:
            comparison = compare_to_control(
                alphas,
                records,
                result.controls[control.name].records,
                n_boot=cfg.n_boot,
                seed=cfg.seed,
                gold=cfg.gold_logprob,
            )
            for alpha, row in comparison.items():
                result.vs_controls[alpha][control.name] = row
    return adjust_holm(result)


def _finished(record: dict[str, Any] | None, lo: int, hi: int, gold: bool, answer: bool) -> bool:
    """Whether a resumed record can stand for this run's batch ``[lo, hi)`` (``answer``: the
    run also scores the answer outcome, which a record made before it lacks)."""
    if record is None or record.get("batch") != [lo, hi]:
        return False
    if gold and answer and record.get("answer_text") is None:
        return False
    return not gold or record.get("gold_logprob") is not None


def _run_batch(
    plan: RunPlan,
    cfg: EvalConfig,
    run: tuple[str | None, SteeringPlan, float],
    span: tuple[int, int],
) -> list[dict[str, Any]]:
    """Generate and score positions ``lo..hi-1`` (``span``) of the run at one alpha under its
    plan (``run``: ``(run name, steering plan, alpha)``; a prompt baseline's run has its own
    prompts).

    Both passes go through the run's engine (``plan.engine``, :mod:`.engines`): the generation
    and, under the same plan, the teacher-forced gold text's log-probability.
    """
    lo, hi = span
    name, steering, alpha = run
    engine = plan.engine
    rows = plan.inputs(lo, hi, name)
    prompts, shots = plan.prompts_of(name), plan.shots_of(name)
    # a think block may hold "\nQ:" of its own: thinking runs end at EOS or budget
    stop = None if plan.facts.thinking else [plan.bench.stop]
    out = engine.run(rows, steering, max_new_tokens=plan.facts.max_new_tokens, stop=stop)
    if len(out.texts) != hi - lo:
        raise DataError(f"the engine returned {len(out.texts)} outputs for {hi - lo} prompts")
    texts, token_counts = list(out.texts), [len(ids) for ids in out.token_ids]
    golds = [continuation(prompts[p], plan.bench.gold_text(plan.items[p])) for p in range(lo, hi)]
    gold_lp: list[float | None] = [None] * (hi - lo)
    answers: list[str | None] = [None] * (hi - lo)
    answer_lp: list[float | None] = [None] * (hi - lo)
    if cfg.gold_logprob:
        gold_lp = list(engine.gold_logprobs(rows, steering, golds))
        if plan.bench.answer_marker is not None:
            answers, answer_lp = _answer_logprobs(plan, steering, prompts, (lo, hi), texts)
    records = []
    for offset, text in enumerate(texts):
        position = lo + offset
        item = plan.items[position]
        fields_, scored = score_output(plan.bench, item, text, plan.facts.thinking)
        record = Record(
            alpha=alpha,
            index=plan.order[position],
            id=item.id,
            prompt=prompts[position],
            gold=item.answer,
            batch=[lo, hi],
            n_tokens=token_counts[offset],
            n_shots=shots[position],
            gold_text=golds[offset],
            gold_logprob=gold_lp[offset],
            answer_text=answers[offset],
            answer_logprob=answer_lp[offset],
            accepted=list(item.accepted) if item.aliases else None,
            group=item.group,
            **fields_,
            **scored,
        )
        records.append(record.to_dict())
    return records


def _answer_logprobs(
    plan: RunPlan,
    steering: SteeringPlan,
    prompts: list[str],
    span: tuple[int, int],
    texts: list[str],
) -> tuple[list[str | None], list[float | None]]:
    """``(answer texts, answer log-probabilities)`` of positions ``span`` whose outputs are
    ``texts``: ``log p(" 7." | prompt + own output up to and including the answer marker)``
    under ``steering``, one teacher-forced pass over the rows that reach the marker (``None``
    for the others)."""
    lo, hi = span
    bench = plan.bench
    marker = bench.answer_marker
    answers = [bench.answer_text(plan.items[p]) for p in range(lo, hi)]
    stop = None if plan.facts.thinking else bench.stop
    contexts: list[str] = []
    rows: list[int] = []
    for offset, text in enumerate(texts):
        prefix = working_prefix(text, marker, stop, plan.facts.thinking) if marker else None
        if prefix is not None:
            contexts.append(prompts[lo + offset] + prefix)
            rows.append(offset)
    out: list[float | None] = [None] * (hi - lo)
    if rows:
        golds = [cast(str, answers[r]) for r in rows]
        scores = plan.engine.gold_logprobs(plan.encode(contexts), steering, golds)
        for r, value in zip(rows, scores, strict=True):
            out[r] = float(value)
    return list(answers), out
