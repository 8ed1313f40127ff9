"""One self-contained HTML page for a layer report: tables, baselines, plots and metadata.

A report folder of PNGs and JSON is hard to share; ``write_html_report`` puts the whole result into
one ``report.html`` that any browser opens without a server or network: the per-layer table, the
baselines, every plot embedded as a base64 PNG, the metadata (model fingerprint, data hashes,
settings, lirefs version), and, when given, the cross-source transfer matrix and evaluation results
(the folders ``lirefs evaluate --out`` writes). The page has no script and no external resource.
Every text is escaped with the standard library's ``html.escape``. The page is built in memory and
written atomically: bad input never leaves a partial file.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..direction import Direction
from ..errors import DataError, LirefsError, MetadataMismatchError
from ..store import atomic_write_text
from .report import LayerReport, format_float
from .transfer import TransferReport

__all__ = [
    "EvaluationSummary",
    "check_evaluation",
    "load_evaluation",
    "render_html_report",
    "write_html_report",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1180px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
p.summary { background: #f5f7fa; border-left: 4px solid #0072b2; padding: .7rem 1rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #d0d4da; padding: .25rem .55rem; text-align: right; }
th { background: #eef1f5; }
td.key, th.key { text-align: left; }
tr.best td { background: #e3f4e8; font-weight: 600; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; border: 1px solid #e2e2e2; }
figcaption { font-size: .85rem; color: #555; }
code { font-size: .85rem; }
.note { color: #555; font-size: .9rem; }
"""


@dataclass(frozen=True)
class EvaluationSummary:
    """An evaluation result read back from the folder ``lirefs evaluate --out`` wrote.

    Attributes:
        folder: where it was read from.
        result: the result's JSON form (``EvalResult.to_dict()``: benchmark, alphas, results
            rows, by_group, holm_survivors, metadata...).
        plots: PNG files of that folder, embedded beside its table.
        evaluation: the ``EvalResult`` itself (``EvalResult.load``).
    """

    folder: Path
    result: dict[str, Any]
    plots: tuple[Path, ...]
    evaluation: Any = None

    @property
    def direction(self) -> dict[str, Any] | None:
        """The direction summary recorded by the evaluation, or ``None`` for an unsteered run."""
        settings = self.result.get("metadata", {}).get("settings") or {}
        value = settings.get("direction")
        return dict(value) if isinstance(value, Mapping) else None


def load_evaluation(folder: str | Path) -> EvaluationSummary:
    """Read a folder written by ``lirefs evaluate --out`` through ``EvalResult.load`` (its
    ``result.json`` and ``records.jsonl``), with the folder's PNGs.

    Raises:
        DataError: the folder or its ``result.json`` is missing or not an evaluation result.
        MetadataMismatchError: the result was made under another layer convention.
    """
    from ..evaluation.result import EvalResult

    folder = Path(folder)
    evaluation = EvalResult.load(folder)
    return EvaluationSummary(
        folder, evaluation.to_dict(), tuple(sorted(folder.glob("*.png"))), evaluation
    )


def check_evaluation(summary: EvaluationSummary, direction: Direction) -> None:
    """Refuse an evaluation that steered with another direction than ``direction``.

    The evaluation records the SHA-256 of the unit vector it steered with (``unit_hash``, at its
    layer), the model fingerprint and the direction's data hash; all must match ``direction``.
    An unsteered evaluation (no direction) must at least come from the same model.

    Raises:
        MetadataMismatchError: with which field differs.
    """
    where = str(summary.folder)
    model = summary.result["metadata"].get("model") or {}
    ours = direction.metadata.get("model") or {}
    fingerprints = (model.get("fingerprint"), ours.get("fingerprint"))
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        raise MetadataMismatchError(
            f"evaluation {where} ran on model {model.get('name')!r} (fingerprint "
            f"{fingerprints[0]}), but the direction is of {ours.get('name')!r} "
            f"(fingerprint {fingerprints[1]}); give evaluations of this direction's model"
        )
    recorded = summary.direction
    if recorded is None:
        return
    layer = (summary.result["metadata"].get("settings") or {}).get("layer")
    unit_hash = recorded.get("unit_hash")
    if unit_hash is None or layer is None:
        raise MetadataMismatchError(
            f"evaluation {where} records no unit_hash/layer of its direction, so it cannot be "
            "matched to this direction; rerun `lirefs evaluate` with this lirefs version"
        )
    try:
        ours_hash = hashlib.sha256(direction.unit(int(layer)).numpy().tobytes()).hexdigest()[:16]
    except LirefsError:  # a layer this direction lacks or is zero at: another direction
        ours_hash = None
    if ours_hash != unit_hash:
        raise MetadataMismatchError(
            f"evaluation {where} steered with another direction (unit vector hash {unit_hash} at "
            f"layer {layer}, this direction's is {ours_hash}; its data hash "
            f"{recorded.get('data_hash')}, this one's {(direction.metadata.get('data') or {}).get('hash')}); "
            "give evaluations run with this direction"
        )


def render_html_report(
    report: LayerReport,
    direction: Direction,
    *,
    plots: Sequence[str | Path] = (),
    transfer: TransferReport | None = None,
    transfer_plots: Sequence[str | Path] = (),
    evaluations: Sequence[EvaluationSummary] = (),
    title: str = "lirefs layer report",
) -> str:
    """The whole report page as one HTML string (see ``write_html_report``)."""
    if not isinstance(report, LayerReport):
        raise DataError(f"report must be a lirefs LayerReport, got {type(report).__name__}")
    if report.n_layers != direction.n_layers:
        raise DataError(
            f"the report covers layers 0..{report.n_layers} but the direction 0..{direction.n_layers}; "
            "give the direction the report was made with"
        )
    for summary in evaluations:
        check_evaluation(summary, direction)
    images = [_image(p) for p in plots]  # read every file before anything is written
    t_images = [_image(p) for p in transfer_plots]
    e_images = [[_image(p) for p in s.plots] for s in evaluations]

    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="note">{e(_model_line(report, direction))}</p>',
        f'<p class="summary">{e(report.summary())}</p>',
        "<h2>Held-out separation per layer</h2>",
        '<p class="note">Residual index l == HF output_hidden_states[l] (0 = embeddings, L = '
        "final norm output). The chosen layer is highlighted; NaN (-) where the direction is all "
        "zeros.</p>",
        _layer_table(report),
        "<h2>Baselines</h2>",
        _baseline_table(report),
    ]
    if images:
        parts.append("<h2>Figures</h2>")
        parts += images
    if transfer is not None:
        parts += [
            "<h2>Cross-source transfer</h2>",
            '<p class="note">Rows: the source a direction was built on, scored at its chosen '
            "layer; columns: the held-out states of each test source. The diagonal's layer was "
            "chosen on that very half; off-diagonal cells carry no selection.</p>",
            _table(transfer.table_rows(), key_columns=("direction",)),
            _table(transfer.baseline_rows(), key_columns=("test",)),
            f'<p class="summary">{e(transfer.summary()).replace(chr(10), "<br>")}</p>',
            *t_images,
        ]
    if evaluations:
        parts.append("<h2>Evaluation</h2>")
        for summary, imgs in zip(evaluations, e_images, strict=True):
            parts += _evaluation_section(summary, imgs)
    parts += [
        "<h2>Metadata</h2>",
        _metadata_table(report, direction, transfer),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html_report(
    path: str | Path,
    report: LayerReport,
    direction: Direction,
    *,
    plots: Sequence[str | Path] = (),
    transfer: TransferReport | None = None,
    transfer_plots: Sequence[str | Path] = (),
    evaluations: Sequence[EvaluationSummary] = (),
    title: str = "lirefs layer report",
) -> Path:
    """Write one self-contained HTML page of the report, atomically.

    Args:
        path: the ``.html`` file to write (its folder is created); not an existing folder.
        report: from ``lirefs.layer_report`` (or ``LayerReport.load``).
        direction: the direction the report scored (its metadata fills the metadata table).
        plots: PNG files to embed (e.g. from ``write_report_plots``).
        transfer: an optional ``TransferReport``, shown as tables with ``transfer_plots``.
        evaluations: optional results from ``load_evaluation``; each must have steered with
            ``direction`` (or be unsteered on the same model).
        title: the page title.

    Returns:
        ``path``.

    Raises:
        DataError: ``path`` is an existing folder, a plot that is not a PNG file, or a report of
            another depth than the direction.
        MetadataMismatchError: an evaluation of another direction or model.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(
            f"HTML path {str(path)!r} is an existing folder; give a file path such as "
            f"{str(path / 'report.html')!r}"
        )
    text = render_html_report(
        report,
        direction,
        plots=plots,
        transfer=transfer,
        transfer_plots=transfer_plots,
        evaluations=evaluations,
        title=title,
    )
    atomic_write_text(path, text)
    return path


# ---------------------------------------------------------------------------------------------
# pieces of the page
# ---------------------------------------------------------------------------------------------


def _image(path: str | Path) -> str:
    """A ``<figure>`` with the PNG at ``path`` embedded as base64."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"plot {str(path)!r} does not exist; write the plots first")
    data = path.read_bytes()
    if data[:8] != PNG_MAGIC:
        raise DataError(f"plot {str(path)!r} is not a PNG file; only PNG plots are embedded")
    b64 = base64.b64encode(data).decode("ascii")
    name = html.escape(path.name)
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{name}">'
        f"<figcaption>{name}</figcaption></figure>"
    )


def _table(
    rows: Sequence[Mapping[str, Any]], key_columns: Sequence[str] = (), best: int = -1
) -> str:
    """An HTML table of ``rows`` (column names from the first row); row ``best`` highlighted."""
    if not rows:
        return '<p class="note">(none)</p>'
    e = html.escape
    columns = list(rows[0])
    head = "".join(
        f'<th class="key">{e(str(c))}</th>' if c in key_columns else f"<th>{e(str(c))}</th>"
        for c in columns
    )
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="key">{e(_cell(row.get(c)))}</td>'
            if c in key_columns
            else f"<td>{e(_cell(row.get(c)))}</td>"
            for c in columns
        )
        body.append(f'<tr class="best">{cells}</tr>' if i == best else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_float(value, 3) if math.isfinite(value) or math.isnan(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def _model_line(report: LayerReport, direction: Direction) -> str:
    model = direction.metadata.get("model") or report.metadata.get("model") or {}
    return (
        f"model {model.get('name', '?')} (fingerprint {model.get('fingerprint', '?')}), "
        f"layers 0..{direction.n_layers}, d_model {direction.d_model}; "
        f"{report.n_reasoning} reasoning / {report.n_memory} memory held-out prompts"
    )


def _layer_table(report: LayerReport) -> str:
    return _table(report.table_rows(), key_columns=("layer",), best=report.best_layer)


def _baseline_table(report: LayerReport) -> str:
    b = report.best_layer
    n_perm = (report.metadata.get("settings") or {}).get("n_permutations", "?")
    rows: list[dict[str, Any]] = [
        {"baseline": f"held-out AUROC at layer {b}", "value": report.auroc[b]},
        {
            "baseline": f"shuffled labels ({n_perm} shufflings): mean / 5th / 95th percentile",
            "value": [
                report.shuffled_auroc[b],
                report.shuffled_auroc_p5[b],
                report.shuffled_auroc_p95[b],
            ],
        },
        {"baseline": "permutation p-value", "value": report.permutation_p[b]},
        {
            "baseline": "prompt length alone (better orientation / longer = reasoning)",
            "value": None
            if report.length_auroc is None
            else [report.length_auroc, report.length_auroc_oriented],
        },
        {"baseline": "length-matched pairs", "value": report.length_matched_pairs},
        {
            "baseline": f"length-matched subset: AUROC at layer {b} / its shuffled 95th pct",
            "value": [report.length_matched_auroc[b], report.length_matched_shuffled_p95[b]]
            if report.length_matched_auroc
            else None,
        },
        {
            "baseline": "length alone on the matched subset (near 0.5 = matching worked)",
            "value": report.length_matched_length_auroc,
        },
    ]
    if report.train_auroc:
        rows.append(
            {"baseline": f"in-sample train AUROC at layer {b}", "value": report.train_auroc[b]}
        )
    return _table(rows, key_columns=("baseline",))


def _evaluation_section(summary: EvaluationSummary, images: list[str]) -> list[str]:
    e = html.escape
    result = summary.result
    settings = result["metadata"].get("settings") or {}
    direction = summary.direction
    how = (
        f"steered at layer {settings.get('layer')} ({settings.get('layer_source', '?')}), mode "
        f"{settings.get('mode', '?')}"
        if direction is not None
        else "unsteered (no direction)"
    )
    header = (
        f"{result.get('benchmark', '?')}: {result.get('n_items', '?')} items, {how}; from "
        f"{summary.folder}"
    )
    # one continuous outcome per benchmark: the answer after the model's own working where the
    # exemplars show working, else the gold text right after the prompt
    outcome = result.get("outcome") or "gold_logprob"
    hidden = "gold_logprob" if outcome == "answer_logprob" else "answer_logprob"
    rows = [
        {
            k: v
            for k, v in row.items()
            if k != "paired" and not isinstance(v, Mapping) and not k.startswith(hidden)
        }
        for row in result["results"]
    ]
    paired = [row.get("paired") for row in result["results"]]
    what = {
        "answer_logprob": "answer_logprob: log p(answer | prompt + the model's own output up to "
        f"{settings.get('answer_marker')!r}), over the items whose output reached it (n; "
        "missing: the others); the paired test uses the items with a value at both alphas",
        "gold_logprob": "gold_logprob: log p(gold text | prompt), teacher-forced right after "
        "the prompt",
    }[outcome]
    parts = [f"<h3>{e(header)}</h3>", f'<p class="note">{e(what)}</p>', _table(rows)]
    if any(isinstance(p, Mapping) for p in paired):
        parts.append(
            _table(
                [
                    {"alpha": row.get("alpha"), **p}
                    for row, p in zip(result["results"], paired, strict=True)
                    if isinstance(p, Mapping)
                ]
            )
        )
    baselines = [b for b in result.get("prompt_baselines") or [] if isinstance(b, Mapping)]
    if baselines:
        parts.append(
            '<p class="note">Prompt baselines: unsteered rows whose prompts end each question '
            "with the text; tests against alpha 0 on the same items (accuracy: McNemar), "
            "Holm-adjusted with the steered rows.</p>"
        )
        parts.append(
            _table(
                [
                    {
                        "row": b.get("label"),
                        **{
                            k: v
                            for k, v in b.items()
                            if k not in ("text", "label", "alpha")
                            and not isinstance(v, Mapping)
                            and not k.startswith(hidden)
                        },
                        **{
                            f"{k} {f}": (t or {}).get(f)
                            for k, t in (b.get("tests") or {}).items()
                            if not k.startswith(hidden)
                            for f in ("diff", "p_value", "p_holm")
                        },
                    }
                    for b in baselines
                ]
            )
        )
    survivors = result.get("holm_survivors")
    if survivors is not None:
        said = "; ".join(survivors) if survivors else "none"
        parts.append(
            f'<p class="note">{e("Survive Holm correction at 0.05 (p_holm <= 0.05): " + said)}</p>'
        )
    parts += _group_section(result)
    parts += _calibration_section(settings.get("calibration"))
    return parts + images


def _calibration_section(cal: Any) -> list[str]:
    """The calibration an evaluation ran with (``lirefs evaluate --calibration``): its file,
    budget, bounds, the alphas judged within the budget, and the damage / feature-shift table of
    the points it tried; nothing for a run without one."""
    if not isinstance(cal, Mapping):
        return []
    e = html.escape
    line = (
        f"Calibration {cal.get('path', '?')} (sha256 {cal.get('hash', '?')}): budget mean "
        f"next-token KL <= {_cell(cal.get('budget'))}, alpha_min {_cell(cal.get('alpha_min'))}, "
        f"alpha_max {_cell(cal.get('alpha_max'))} (mode {cal.get('mode', '?')}, layer "
        f"{cal.get('layer', '?')})"
    )
    parts = [f"<h4>{e('calibration')}</h4>", f'<p class="note">{e(line)}</p>']
    names = cal.get("resolved")
    if isinstance(names, Mapping) and names:
        said = ", ".join(f"{k} = {_cell(v)}" for k, v in names.items())
        parts.append(f'<p class="note">{e("alphas given by name: " + said)}</p>')
    within = cal.get("within_budget")
    if isinstance(within, Mapping) and within:
        parts.append(
            _table(
                [{"alpha": k, "within budget": "?" if v is None else v} for k, v in within.items()]
            )
        )
    points = cal.get("points")
    if isinstance(points, list) and points:
        keys = ("alpha", "kl", "ppl_ratio", "shift_reasoning", "shift_memory", "within", "stage")
        rows = [{k: p.get(k) for k in keys} for p in points if isinstance(p, Mapping)]
        parts.append(_table(rows))
    return parts


def _group_section(result: Mapping[str, Any]) -> list[str]:
    """The per-group table (accuracy, exact CI, n, paired test against alpha 0 with raw and
    Holm p) when the evaluation has more than one group."""
    by_group = result.get("by_group") or {}
    names = {name for groups in by_group.values() for name in groups}
    if len(names) < 2:
        return []
    rows = []
    for key, groups in by_group.items():
        for name, g in groups.items():
            paired = g.get("paired") or {}
            rows.append(
                {
                    "alpha": float(key),
                    "group": name,
                    "n": g.get("n"),
                    "accuracy": g.get("accuracy"),
                    "ci": g.get("ci"),
                    "diff vs 0": paired.get("diff"),
                    "p": paired.get("p_value"),
                    "p_holm": paired.get("p_holm"),
                }
            )
    return ["<h4>per group</h4>", _table(rows, key_columns=("alpha", "group"))]


def _metadata_table(
    report: LayerReport, direction: Direction, transfer: TransferReport | None
) -> str:
    d_meta = direction.metadata
    r_meta = report.metadata
    model = d_meta.get("model") or {}
    rows: list[dict[str, Any]] = [
        {"field": "lirefs version (report)", "value": r_meta.get("lirefs_version")},
        {"field": "lirefs version (direction)", "value": d_meta.get("lirefs_version")},
        {"field": "layer convention", "value": r_meta.get("layer_convention")},
        {"field": "report created", "value": r_meta.get("created")},
    ]
    rows += [{"field": f"model.{k}", "value": v} for k, v in model.items()]
    rows += [
        {"field": f"direction data.{k}", "value": v} for k, v in (d_meta.get("data") or {}).items()
    ]
    rows += [
        {"field": f"direction settings.{k}", "value": v}
        for k, v in (d_meta.get("settings") or {}).items()
    ]
    rows += [
        {"field": f"report data.{k}", "value": v}
        for k, v in (r_meta.get("data") or {}).items()
        if k != "direction_data"
    ]
    rows += [
        {"field": f"report settings.{k}", "value": v}
        for k, v in (r_meta.get("settings") or {}).items()
    ]
    if transfer is not None:
        rows += [
            {"field": f"transfer settings.{k}", "value": v}
            for k, v in (transfer.metadata.get("settings") or {}).items()
        ]
    return _table(rows, key_columns=("field", "value"))
