"""Reading and validating data files: one place that turns I/O and validation failures into DataFileError."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fleetwise.errors import DataFileError

RecordT = TypeVar("RecordT", bound=BaseModel)


class Record(BaseModel):
    """Base of every validated data record: immutable, and unknown fields are errors (they are usually typos)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def validate_record(model: type[RecordT], data: Any, file: str, entry: str) -> RecordT:
    """Validate one entry of a data file; the error names the file, the entry and the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise DataFileError(file, f"{first['msg']}{more}", entry=entry, field=where) from None


def read_text_file(path: str | Path) -> str:
    """The text of a user's file, or a DataFileError saying why it cannot be read."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise DataFileError(str(p), "is a directory, not a file")
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(str(p), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(str(p), f"cannot read: {exc}") from None


# libyaml's parser when PyYAML was built with it (its wheels are), else the pure-Python one: same documents,
# same errors, about ten times faster on the bundled catalog.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """A YAML document's data, with only safe types (as yaml.safe_load); raises yaml.YAMLError."""
    return yaml.load(text, Loader=_SAFE_LOADER)
