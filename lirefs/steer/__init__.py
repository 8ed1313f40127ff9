"""Steered greedy generation along a Linear Reasoning Feature.

Modes (``r̂ = r / (||r|| + 1e-8)`` in float64, cast to each activation's dtype and device) are the
rows of ``MODES`` (``get_mode(name)``); each row says how it edits, its per-edit alpha, its
effective scale and which alphas it accepts:

* ``"project"`` (the paper): source ``r̂`` from residual index ``layer``; in EVERY block, in order,
  the block input, the attention output and the MLP output get ``x <- x + alpha (x·r̂) r̂``. The
  component along ``r̂`` compounds to about ``(1 + alpha)^L`` (``effective_scale``).
* ``"project-calibrated"``: the same edits with a per-edit scale chosen so the component is
  multiplied by about ``1 + alpha`` overall: ``a = (1 + alpha)^(1/n) - 1`` over the ``n`` edited
  blocks (``calibrated_alpha``). ``alpha`` is then the TOTAL scale and must be ``>= -1``.
* ``"add"``: ``x <- x + alpha r̂`` on ``hidden_states[layer]`` (the input of block ``layer``).
* ``"ablate"``: ``"project"`` with a per-edit ``alpha = -1``: the component along ``r̂`` is removed
  from every block input, attention output and MLP output. It takes no alpha (an alpha of 0 or -1,
  the old spelling, still ablates with a ``DeprecationWarning``).

Alpha 0 means "no edit" in every mode that takes an alpha; the unsteered baseline as a value is
``SteeringPlan.none(model)``.

``blocks=`` limits the three projection modes to some decoder blocks ``0..L-1`` (default: all, as
in the paper; ``layers=`` is its deprecated old name). ``positions`` picks tokens: ``"all"`` (the
paper), ``"prompt"``, ``"generated"`` or negative indices counted from the end of each prompt
(prompt pass only); see ``tracers.edit``.

A ``SteeringPlan`` (``plan(...)``) is one validated setting, and what every engine takes
(``Engine``: ``NnsightEngine`` here, the evaluation's shared-prefix path, teacher-forced
scoring). Its ``tracer_kwargs()`` feed ``tracers.apply_edit``, the one tracer block behind the
generation loop, persistent steering (``steered``) and any trace of your own.

One job per module: ``modes`` (the table, ``effective_scale``, ``calibrated_alpha``), ``plan``
(``SteeringPlan``, ``plan``), ``generation`` (``generate``, ``sweep``, ``NnsightEngine``),
``stopping`` (EOS ids, stop strings), ``persistent`` (``steered``), ``engine`` (the protocol).
"""

from __future__ import annotations

from ..errors import SteeringError, StopStringWarning
from .engine import Engine, Prompts
from .generation import GENERATE_BATCH_SIZE, GenerationOutput, NnsightEngine, generate, sweep
from .modes import MODES, Mode, calibrated_alpha, effective_scale, get_mode, scale_table
from .persistent import Steered, applied, steered
from .plan import Positions, SteeringPlan, plan
from .stopping import eos_ids, trim_row, unmatched_stops, warn_unmatched_stops

__all__ = [
    "GENERATE_BATCH_SIZE",
    "MODES",
    "Engine",
    "GenerationOutput",
    "Mode",
    "NnsightEngine",
    "Positions",
    "Prompts",
    "Steered",
    "SteeringError",
    "SteeringPlan",
    "StopStringWarning",
    "applied",
    "calibrated_alpha",
    "effective_scale",
    "eos_ids",
    "generate",
    "get_mode",
    "plan",
    "scale_table",
    "steered",
    "sweep",
    "trim_row",
    "unmatched_stops",
    "warn_unmatched_stops",
]
