"""Tests for fleetwise.datafiles: reading user files and validating records into DataFileErrors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from fleetwise.datafiles import Record, parse_yaml, read_text_file, validate_record
from fleetwise.errors import DataFileError


class _Point(Record):
    x: int
    y: int


def test_a_valid_record_is_returned_typed() -> None:
    assert validate_record(_Point, {"x": "1", "y": 2}, "points.yaml", "0") == _Point(x=1, y=2)


def test_a_bad_record_names_the_file_the_entry_and_the_first_bad_field() -> None:
    with pytest.raises(DataFileError) as excinfo:
        validate_record(_Point, {"x": "one", "y": "two"}, "points.yaml", "3")
    err = excinfo.value
    assert (err.path, err.entry, err.field) == ("points.yaml", "3", "x")
    assert str(err).endswith("(and 1 more problem(s))")


def test_records_refuse_unknown_fields_and_changes() -> None:
    with pytest.raises(DataFileError) as excinfo:
        validate_record(_Point, {"x": 1, "y": 2, "z": 3}, "points.yaml", "0")
    assert excinfo.value.field == "z"
    point = _Point(x=1, y=2)
    with pytest.raises(ValidationError):
        point.x = 5


def test_a_user_file_reads_as_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Mélange\n", encoding="utf-8")
    assert read_text_file(path) == "Mélange\n"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "is a directory, not a file"),
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00bad"), "cannot read"),
])
def test_an_unreadable_user_file_says_why(tmp_path: Path, make: Callable[[Path], object], message: str) -> None:
    path = tmp_path / "input"
    make(path)
    with pytest.raises(DataFileError, match=message) as excinfo:
        read_text_file(path)
    assert excinfo.value.path == str(path)


def test_yaml_is_parsed_safely() -> None:
    assert parse_yaml("a: [1, 2]\nb: {c: x}\n") == {"a": [1, 2], "b": {"c": "x"}}
    with pytest.raises(yaml.YAMLError):
        parse_yaml("!!python/object/apply:os.system ['true']\n")
