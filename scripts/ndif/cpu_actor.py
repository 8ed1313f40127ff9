"""A CPU model actor for NDIF's server, for testing lirefs against a real server without a GPU.

NDIF's ``BaseModelDeployment`` calls CUDA-only torch functions when it loads, parks
(``to_cache``/``from_cache``) and cleans up a model. This subclass loads the model on the CPU and
does the same work without CUDA; nothing else of the server changes. Select it with
``NDIF_MODEL_IMPORT_PATH=cpu_actor.CPUModelActor`` (this folder on ``PYTHONPATH``).

It runs in the NDIF server's own virtual environment (scripts/ndif/install.sh), never in lirefs.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import ray
from ndif.services.ray.deployments.modeling.base import BaseModelDeployment
from nnsight.modeling.huggingface import HuggingFaceModel

logger = logging.getLogger("ndif.modeling")


class CPUModelDeployment(BaseModelDeployment):
    """``BaseModelDeployment`` with every CUDA call replaced by its CPU equivalent."""

    #: Parking moves weights GPU -> CPU; on a CPU-only actor there is nothing to move.
    CACHEABLE = False

    def load_from_disk(self) -> HuggingFaceModel:
        """Load the model named by the model key onto the CPU (HF cache only, no GPU)."""
        started = time.time()
        model = HuggingFaceModel.from_model_key(
            self.model_key, dispatch=True, dtype=self.dtype_name, device="cpu", **self.kwargs
        )
        model._module.requires_grad_(False)
        logger.info(f"Loaded {self.model_key} on the CPU in {time.time() - started:.1f} s")
        return model

    async def to_cache(self) -> None:
        """Nothing to park: the weights already live in CPU memory."""
        self.cached = True

    def from_cache(self, gpu_mem_bytes_by_id: dict[int, int]) -> None:
        """Nothing to restore: the weights never left CPU memory."""
        self.gpu_mem_bytes_by_id = gpu_mem_bytes_by_id
        self.cached = False

    def cleanup(self) -> None:
        """Per-request cleanup of ``BaseModelDeployment.cleanup`` without the CUDA calls."""
        self.kill_switch.clear()
        self.kill_reason = None
        self.execution_ident = None
        self.model.interleaver.cancel()
        gc.collect()


@ray.remote(num_cpus=1, max_restarts=-1)
class CPUModelActor(CPUModelDeployment):
    """The Ray actor the controller starts for each model replica."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
