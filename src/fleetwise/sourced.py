"""Sourced values: every fact in a data file carries where it came from and when it was read."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

T = TypeVar("T")


class Sourced(BaseModel, Generic[T]):
    """A value with its source (URL or repo:path) and the date it was read; value may be None if not found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: T | None
    source: str | None = None
    as_of: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _require_provenance(self) -> Sourced[T]:
        if self.value is not None and not self.source:
            raise ValueError("a value needs a 'source' (URL or repo:path)")
        if self.value is None and not (self.note or "").strip():
            raise ValueError("a missing value needs a 'note' saying where it was looked for")
        return self

