"""lirefs: find, analyse and steer the Linear Reasoning Features of language models.

The pipeline (Hong et al., 2025, arXiv 2503.23084)::

    import lirefs

    model = lirefs.load_model("smollm2-135m")              # offline default
    sets = lirefs.data.load("builtin")                     # .reasoning / .memory questions
    train, test = sets.split()
    r = lirefs.collect_activations(model, train.reasoning_prompts())   # [n, L + 1, d_model]
    m = lirefs.collect_activations(model, train.memory_prompts())
    liref = lirefs.Direction.from_activations(r, m, model=model)
    report = lirefs.layer_report(liref, test_r, test_m)    # held-out AUROC per layer

Layer index convention everywhere: ``l == HF output_hidden_states[l]`` (0 = embeddings, L = final).
"""

from __future__ import annotations

from ._version import __version__


def _check_tracers() -> None:
    import tracers as _tracers

    if not getattr(_tracers, "LIREFS_TRACERS", False):
        from .errors import TracersClashError

        where = getattr(_tracers, "__file__", "?")
        raise TracersClashError(
            f"'import tracers' found an unrelated package at {where}; lirefs ships its own "
            "'tracers'. Uninstall the other one (pip uninstall tracers) and reinstall lirefs"
        )


_check_tracers()

from . import data, pipeline  # noqa: E402
from .analysis import LayerReport, TransferReport, layer_report, transfer_report  # noqa: E402
from .calibrate import Calibration, calibrate  # noqa: E402
from .checks import residual_index  # noqa: E402
from .collect import ActivationCache, collect_activations  # noqa: E402
from .direction import Direction  # noqa: E402
from .errors import *  # noqa: E402,F403
from .errors import __all__ as _errors_all  # noqa: E402
from .evaluation import (  # noqa: E402
    Benchmark,
    EvalConfig,
    EvalResult,
    benchmarks,
    evaluate,
    get_benchmark,
)
from .export import export_ablated, export_gguf, export_lm_eval, import_gguf  # noqa: E402
from .models import DEFAULT_MODEL, ModelInfo, load_model, model_info, wrap  # noqa: E402
from .reading import ReadMismatchWarning  # noqa: E402
from .steer import (  # noqa: E402
    GenerationOutput,
    Steered,
    SteeringError,
    SteeringPlan,
    calibrated_alpha,
    effective_scale,
    generate,
    scale_table,
    steered,
    sweep,
)

__all__ = [
    "DEFAULT_MODEL",
    "ActivationCache",
    "Benchmark",
    "Calibration",
    "Direction",
    "EvalConfig",
    "EvalResult",
    "GenerationOutput",
    "LayerReport",
    "ModelInfo",
    "ReadMismatchWarning",
    "Steered",
    "SteeringError",
    "SteeringPlan",
    "TransferReport",
    "__version__",
    "benchmarks",
    "calibrate",
    "calibrated_alpha",
    "collect_activations",
    "data",
    "effective_scale",
    "evaluate",
    "export_ablated",
    "export_gguf",
    "export_lm_eval",
    "generate",
    "get_benchmark",
    "import_gguf",
    "layer_report",
    "load_model",
    "model_info",
    "pipeline",
    "residual_index",
    "scale_table",
    "steered",
    "sweep",
    "transfer_report",
    "wrap",
    *_errors_all,
]
