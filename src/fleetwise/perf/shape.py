"""The deployment shape of one replica, resolved once: model, hardware (instance or chip × TP, engine), weight and
KV-cache dtypes, memory fit at a context, efficiencies, and the sequence cap the engine runs with.

`predict`, the simulator's pools, the planner's options and the calibration replay all start from
`resolve_shape`, so a shape that cannot run is refused with the same reason everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.dtypes import WeightDType, get_dtype
from fleetwise.engines.profile import EngineProfile
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import FitResult, fit_one
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable, Efficiency
from fleetwise.perf.hardware import ReplicaHardware, resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaArrays, ReplicaConfig, build_arrays
from fleetwise.perf.scenarios import smallest_compiled_batch
from fleetwise.perf.step_time import StepCost


class UnpredictableError(FleetwiseError):
    """A shape that fits but whose step time cannot be predicted: a chip figure is not in the catalog."""


@dataclass(frozen=True)
class Load:
    """A steady load a compiled (Neuron) batch is sized for: requests per second of given lengths."""

    rate_per_s: float
    prompt_tokens: float
    output_tokens: float


@dataclass(frozen=True)
class DeploymentShape:
    """What one replica runs, with everything derived from it that the perf model and the simulator need."""

    model: ModelArchitecture
    hardware: ReplicaHardware  # instance (or chip), engine, TP, device layout, price per replica-hour
    dtype: WeightDType
    kv_cache_dtype: str
    fit: FitResult  # memory fit at the context the shape was resolved for
    efficiency: Efficiency
    calibrated: bool  # measurements for this engine on this chip informed the efficiencies
    max_seqs: int  # sequences the engine runs at once (vLLM max_num_seqs; the compiled batch on Neuron)

    @property
    def engine(self) -> EngineProfile:
        """The serving engine's profile."""
        return self.hardware.engine

    @property
    def tp(self) -> int:
        """Tensor-parallel degree."""
        return self.hardware.tp

    @property
    def compiled(self) -> bool:
        """True when batch and sequence shapes are fixed at compile time (Neuron)."""
        return self.hardware.engine.compiled_shapes.value is True

    @property
    def name(self) -> str:
        """instance/engine/TP/dtype, as the planner and reports name a shape."""
        return f"{self.hardware.instance.instance_type} {self.engine.id} TP={self.tp} {self.dtype.id}"

    @cached_property
    def arrays(self) -> ReplicaArrays:
        """The shape packed for the vectorised step model (one configuration)."""
        return build_arrays([self.config])

    @property
    def config(self) -> ReplicaConfig:
        """The shape as one configuration of the step model."""
        return ReplicaConfig(self.model, self.hardware, self.dtype, self.efficiency, self.kv_cache_dtype)

    def step_cost(self) -> StepCost:
        """The simulator's step-time predictor for this shape."""
        return StepCost.from_arrays(self.arrays)

    def with_max_seqs(self, max_seqs: int) -> DeploymentShape:
        """The same shape run with another sequence cap."""
        if max_seqs < 1:
            raise FleetwiseError(f"the sequence cap must be at least 1, got {max_seqs}")
        return replace(self, max_seqs=max_seqs)


def resolve_shape(model: ModelArchitecture, catalog: Catalog, calibration: CalibrationTable, hardware: str, tp: int,
                  dtype: str, engine: str | None = None, *, context_tokens: int, kv_cache_dtype: str = "auto",
                  region: str = DEFAULT_REGION, max_seqs: int | None = None, load: Load | None = None,
                  check_fit: bool = True) -> DeploymentShape:
    """Resolve a requested shape; refuse it with `fit`'s reason when it cannot run, or with UnpredictableError.

    The sequence cap is `max_seqs` when given, else the engine's default (`max_num_seqs` in engines.yaml) or what
    the KV cache holds; on a compiled engine sized for a `load`, the smallest power-of-two batch that keeps up.
    `check_fit=False` keeps a shape the memory model refuses (a measured configuration evidently ran).
    """
    resolved = resolve_hardware(catalog, hardware, tp, engine, region)
    weight_dtype = get_dtype(dtype)
    fit = fit_one(model, catalog, resolved.instance, resolved.engine, tp, weight_dtype, context_tokens,
                  region=region, kv_cache_dtype=kv_cache_dtype)
    if check_fit and not fit.fits:
        raise FleetwiseError(f"{resolved.name} TP={tp} {weight_dtype.id}: {fit.reason}")
    if max_seqs is not None and max_seqs < 1:
        raise FleetwiseError(f"--max-seqs must be at least 1, got {max_seqs}")
    efficiency = calibration.lookup(resolved.engine.id, resolved.chip.id, resolved.chip.kind)
    shape = DeploymentShape(model=model, hardware=resolved, dtype=weight_dtype, kv_cache_dtype=kv_cache_dtype,
                            fit=fit, efficiency=efficiency,
                            calibrated=calibration.has_cell(resolved.engine.id, resolved.chip.id),
                            max_seqs=max_seqs or resolved.engine.sequence_limit or max(fit.max_sequences, 1))
    try:
        shape.arrays  # noqa: B018  (a figure missing from the catalog is reported here, once)
    except FleetwiseError as exc:
        raise UnpredictableError(str(exc)) from None
    if max_seqs is None and shape.compiled and load is not None:
        batch = smallest_compiled_batch(shape.arrays, load.rate_per_s, load.prompt_tokens, load.output_tokens,
                                        fit.max_sequences)
        shape = replace(shape, max_seqs=batch)
    return shape
