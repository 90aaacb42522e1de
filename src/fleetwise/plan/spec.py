"""What a plan asks: model, workload, latency SLOs, where and how capacity may be bought; as a value or a YAML file.

Every default here is a chosen starting point, not a measurement: the report lists them under assumptions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from fleetwise.catalog.catalog import DEFAULT_REGION
from fleetwise.datafiles import Record, parse_yaml, read_text_file, validate_record
from fleetwise.errors import DataFileError, FleetwiseError

Purchase = Literal["on-demand", "spot", "reserved-1y", "reserved-3y", "savings-plan-1y", "savings-plan-3y"]
PURCHASES: tuple[Purchase, ...] = ("on-demand", "spot", "reserved-1y", "reserved-3y")  # the default set
COMMITMENTS: tuple[Purchase, ...] = ("reserved-3y", "reserved-1y", "savings-plan-3y", "savings-plan-1y")
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULT_WORKLOAD = "chat-diurnal"


class Slos(Record):
    """95th-percentile latency targets every recommended option must meet (chat defaults, chosen)."""

    ttft_p95_ms: PositiveFloat = 1000.0  # time to first token
    tpot_p95_ms: PositiveFloat = 100.0  # time per output token after the first (~10 tokens/s, faster than reading)


class PlanSpec(Record):
    """A planning question; a YAML plan file holds the same fields."""

    model: str = DEFAULT_MODEL
    workload: str | None = DEFAULT_WORKLOAD  # bundled name or YAML/JSON file; ignored when rate_per_s is set
    rate_per_s: PositiveFloat | None = None  # a flat Poisson workload instead (with input/output tokens)
    input_tokens: int | None = Field(default=None, ge=1)
    output_tokens: int | None = Field(default=None, ge=1)
    slo: Slos = Slos()
    region: str = DEFAULT_REGION
    purchase: list[Purchase] = Field(default_factory=lambda: list(PURCHASES))
    instances: list[str] = Field(default_factory=list)  # families (inf2, g6e) or instance types; empty: all
    engines: list[str] = Field(default_factory=list)  # empty: the default engine per hardware kind
    dtypes: list[str] = Field(default_factory=lambda: ["bf16", "fp8"])  # weights; add int8/int4 to allow them
    calibration: str | None = None
    catalog: list[str] = Field(default_factory=list)  # extra catalog files (overlays)
    startup_s: NonNegativeFloat = 600.0  # launch to serving: boot, image pull, weight load
    compile_s: NonNegativeFloat = 0.0  # Neuron compilation per launch when the artifact is not cached
    spot_interruptions_per_hour: NonNegativeFloat = 0.05  # per instance; a pessimistic stress value
    spot_max_share: float = Field(default=0.5, ge=0.0, le=1.0)  # of each hour's instances; the rest on-demand
    latency_headroom: float = Field(default=0.8, gt=0.0, le=1.0)  # screen against this share of each SLO
    traffic_scale: PositiveFloat = 1.0  # what-if multipliers
    prompt_scale: PositiveFloat = 1.0
    spot_price_scale: PositiveFloat = 1.0
    verify: bool = True  # check finalists with the serving simulator
    finalists: int = Field(default=3, ge=1, le=20)
    what_if: list[str] = Field(default_factory=list)

    @field_validator("purchase")
    @classmethod
    def _some_purchase(cls, value: list[Purchase]) -> list[Purchase]:
        if not value:
            raise ValueError("at least one purchase option is needed")
        if "on-demand" not in value and "spot" not in value:
            raise ValueError("reserved capacity covers only the always-on base: add on-demand or spot for the rest")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _flat_workload(self) -> PlanSpec:
        given = [self.input_tokens is not None, self.output_tokens is not None]
        if self.rate_per_s is not None and not all(given):
            raise ValueError("rate_per_s needs input_tokens and output_tokens")
        if self.rate_per_s is None and any(given):
            raise ValueError("input_tokens/output_tokens go with rate_per_s")
        if self.rate_per_s is None and self.workload is None:
            raise ValueError("give a workload or rate_per_s with input_tokens and output_tokens")
        for change in self.what_if:
            parse_what_if(change)
        return self

    def replace(self, **changes: object) -> PlanSpec:
        """A copy with `changes`, validated like a loaded plan."""
        return PlanSpec.model_validate({**self.model_dump(), **changes})


WHAT_IF_KEYS = {"traffic": "traffic_scale", "prompt": "prompt_scale", "spot_price": "spot_price_scale"}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_WHAT_IF = re.compile(rf"^\s*(traffic|prompt|spot_price)\s*=\s*(?:({_NUMBER})\s*x|([+-]{_NUMBER})\s*%)\s*$")


def parse_what_if(text: str) -> tuple[str, float]:
    """'traffic=2x' -> ('traffic_scale', 2.0); 'spot_price=+30%' -> ('spot_price_scale', 1.3)."""
    match = _WHAT_IF.match(text)
    if match is None:
        raise FleetwiseError(f"what-if {text!r} not understood; use traffic=2x, prompt=1.5x or spot_price=+30% "
                             f"(keys: {', '.join(WHAT_IF_KEYS)})")
    key, times, percent = match.groups()
    factor = float(times) if times is not None else 1.0 + float(percent) / 100.0
    if not factor > 0:
        raise FleetwiseError(f"what-if {text!r} gives a factor of {factor:g}; it must be positive")
    return WHAT_IF_KEYS[key], factor


_DURATION = re.compile(rf"^\s*({_NUMBER})\s*(ms|s)?\s*$")
SLO_KEYS = {"ttft_p95": "ttft_p95_ms", "tpot_p95": "tpot_p95_ms"}


def parse_slo(text: str) -> tuple[str, float]:
    """'ttft_p95=800ms' -> ('ttft_p95_ms', 800.0); seconds are accepted as '1.5s'."""
    key, _, value = text.partition("=")
    field = SLO_KEYS.get(key.strip().lower())
    match = _DURATION.match(value)
    if field is None or match is None:
        raise FleetwiseError(f"--slo {text!r} not understood; use ttft_p95=800ms or tpot_p95=60ms "
                             f"(keys: {', '.join(SLO_KEYS)})")
    number = float(match.group(1)) * (1000.0 if match.group(2) == "s" else 1.0)
    if not number > 0:
        raise FleetwiseError(f"--slo {text!r}: the target must be positive")
    return field, number


def load_plan_file(path: str | Path) -> PlanSpec:
    """Read a YAML plan file (the same fields as the command's options); errors name the file and the field."""
    name = str(path)
    try:
        doc = parse_yaml(read_text_file(path))
    except yaml.YAMLError as exc:
        raise DataFileError(name, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise DataFileError(name, "expected a mapping of plan fields (model, workload, slo, purchase, ...)")
    base = Path(name).expanduser().parent

    def beside_the_plan(value: object) -> object:  # relative files are relative to the plan file
        if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
            return str(base / value)
        return value

    for key in ("workload", "calibration"):
        if key in doc:
            doc[key] = beside_the_plan(doc[key])
    if isinstance(doc.get("catalog"), list):
        doc["catalog"] = [beside_the_plan(value) for value in doc["catalog"]]
    return validate_record(PlanSpec, doc, name, "plan")


SPLIT_FIELDS = ("purchase", "instances", "engines", "dtypes", "what_if")  # comma-separated on the command line


def plan_spec(plan_file: str | Path | None = None, *, slo: Sequence[str] = (), catalog: Sequence[str] = (),
              verify: bool = True, **options: object) -> PlanSpec:
    """The question a command line asks: a plan file (or the defaults), each option given overriding its field.

    `slo` items are `ttft_p95=800ms`-style targets merged into the file's; `catalog` files are added to the file's;
    list fields (purchase, instances, engines, dtypes, what_if) accept comma-separated items; a workload replaces a
    flat rate and its lengths; options that are None are not given.
    """
    spec = load_plan_file(plan_file) if plan_file is not None else PlanSpec()
    changes: dict[str, object] = {}
    for key, value in options.items():
        if value is None or (key in SPLIT_FIELDS and not value):
            continue
        if key in SPLIT_FIELDS:
            items = value if isinstance(value, list | tuple) else [value]
            value = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        changes[key] = str(value) if key == "calibration" else value
    if options.get("workload") is not None:
        changes.update(rate_per_s=changes.get("rate_per_s"), input_tokens=changes.get("input_tokens"),
                       output_tokens=changes.get("output_tokens"))
    if slo:
        changes["slo"] = {**spec.slo.model_dump(), **dict(parse_slo(s) for s in slo)}
    if catalog:
        changes["catalog"] = [*spec.catalog, *(str(p) for p in catalog)]
    if not verify:
        changes["verify"] = False
    return spec.replace(**changes) if changes else spec
