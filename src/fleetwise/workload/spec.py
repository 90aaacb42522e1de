"""A workload as a value: arrivals over time, prompt and output lengths, shared prefixes; saved as YAML or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from fleetwise.datafiles import Record, parse_yaml, read_text_file, validate_record
from fleetwise.errors import DataFileError

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Arrivals(Record):
    """When requests arrive: a process at a base rate, optionally shaped by an hourly profile."""

    process: Literal["poisson", "gamma", "constant"] = "poisson"
    rate_per_s: PositiveFloat  # mean requests per second (before the hourly profile)
    # gamma only: coefficient of variation of inter-arrival gaps (1 = Poisson, > 1 = burstier)
    burstiness_cv: PositiveFloat = 1.0
    # 24 multipliers of rate_per_s, one per hour of the day (a diurnal curve); None = flat
    hourly_profile: list[NonNegativeFloat] | None = None

    @field_validator("hourly_profile")
    @classmethod
    def _24_hours(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 24 or max(value) <= 0):
            raise ValueError("hourly_profile needs 24 non-negative multipliers, at least one positive")
        return value


class Lengths(Record):
    """A token-length distribution, truncated to [minimum, maximum] and rounded to whole tokens."""

    distribution: Literal["fixed", "normal", "lognormal", "empirical"] = "fixed"
    mean: PositiveFloat | None = None  # fixed, normal, lognormal
    std: NonNegativeFloat = 0.0  # normal, lognormal
    values: list[PositiveFloat] | None = None  # empirical: lengths drawn uniformly
    minimum: int = Field(default=1, ge=1)
    maximum: int = Field(default=1_000_000, ge=1)

    @model_validator(mode="after")
    def _parameters(self) -> Lengths:
        if self.distribution == "empirical" and not self.values:
            raise ValueError("an empirical distribution needs 'values'")
        if self.distribution != "empirical" and self.mean is None:
            raise ValueError(f"a {self.distribution} distribution needs 'mean'")
        if self.minimum > self.maximum:
            raise ValueError("minimum exceeds maximum")
        return self


class SharedPrefixes(Record):
    """Prompts that start with a shared prefix (system prompts, earlier turns), so prefix caching matters."""

    count: int = Field(ge=1)  # distinct prefixes (e.g. system prompts or apps)
    tokens: int = Field(ge=1)  # length of each shared prefix, counted inside the prompt
    share_of_requests: float = Field(default=1.0, ge=0.0, le=1.0)
    popularity: Literal["uniform", "zipf"] = "zipf"  # zipf: a few prefixes serve most requests


class Sessions(Record):
    """Multi-turn conversations: each later turn re-sends the conversation so far plus a new user message."""

    turns: Lengths  # turns per conversation
    think_time_s: PositiveFloat  # mean (exponential) gap between one turn's arrival and the next
    user_tokens: Lengths  # new tokens the user adds each later turn


def _typical(lengths: Lengths) -> float:
    """The mean of a length distribution (fixed, normal, lognormal, or empirical)."""
    if lengths.mean is not None:
        return min(lengths.mean, lengths.maximum)
    values = lengths.values or [1.0]  # an empirical distribution always has values
    return sum(values) / len(values)


# Computed: 6 request arrays + 7 log arrays of 8 bytes each = 104 B per request, about 2 GB at this limit,
# and several minutes of simulation at ~50k requests/s; far beyond a useful planning run.
MAX_REQUESTS = 20_000_000


class Workload(Record):
    """Everything needed to generate the same requests again: arrivals, lengths, prefixes, duration, seed."""

    name: str = "workload"
    duration_s: PositiveFloat
    arrivals: Arrivals
    prompt_tokens: Lengths
    output_tokens: Lengths
    shared_prefixes: SharedPrefixes | None = None
    sessions: Sessions | None = None  # arrivals then start conversations rather than single requests
    seed: int = Field(default=0, ge=0)

    def replace(self, **changes: object) -> Workload:
        """A copy with `changes`, validated like a loaded workload."""
        return Workload.model_validate({**self.model_dump(), **changes})

    @model_validator(mode="after")
    def _bounded(self) -> Workload:
        peak = self.arrivals.rate_per_s * (max(self.arrivals.hourly_profile) if self.arrivals.hourly_profile else 1.0)
        turns = _typical(self.sessions.turns) if self.sessions is not None else 1.0
        if peak * self.duration_s * turns > MAX_REQUESTS:
            raise ValueError(f"rate x duration asks for up to {peak * self.duration_s * turns:.3g} requests; "
                             f"the limit is {MAX_REQUESTS:,} (shorten duration_s or lower the rate)")
        return self

    @model_validator(mode="after")
    def _prefix_fits(self) -> Workload:
        if self.shared_prefixes is not None and self.shared_prefixes.tokens >= self.prompt_tokens.maximum:
            raise ValueError("shared prefixes must be shorter than the longest prompt")
        return self


def load_workload(path: str | Path) -> Workload:
    """Read a workload from YAML or JSON; errors name the file and the field."""
    name = str(path)
    text = read_text_file(path)
    try:
        doc = json.loads(text) if name.lower().endswith(".json") else parse_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DataFileError(name, f"not valid {'JSON' if name.lower().endswith('.json') else 'YAML'}: "
                                  f"{str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise DataFileError(name, "expected a mapping with duration_s, arrivals, prompt_tokens, output_tokens")
    return validate_record(Workload, doc, name, doc.get("name", "workload"))


def save_workload(workload: Workload, path: str | Path) -> None:
    """Write a workload as YAML (or JSON when the name ends in .json)."""
    p = Path(path)
    data = workload.model_dump(exclude_none=True)
    text = json.dumps(data, indent=2) if p.suffix.lower() == ".json" else yaml.safe_dump(data, sort_keys=False)
    p.write_text(text, encoding="utf-8")
