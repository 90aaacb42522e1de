"""Tests for fleetwise.sourced: a value needs its source, and a missing value needs a note."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleetwise.sourced import Sourced


def test_a_value_with_a_source_is_accepted_and_typed() -> None:
    figure = Sourced[float].model_validate({"value": "989", "source": "nvidia.com", "as_of": "2026-11-25"})
    assert figure.value == 989.0


def test_a_value_without_a_source_is_refused() -> None:
    with pytest.raises(ValidationError, match="a value needs a 'source'"):
        Sourced[float].model_validate({"value": 1.0, "as_of": "2026-11-25"})


@pytest.mark.parametrize("note", [None, "", "   "])
def test_a_missing_value_without_a_note_is_refused(note: str | None) -> None:
    with pytest.raises(ValidationError, match="a missing value needs a 'note'"):
        Sourced[float].model_validate({"value": None, "note": note})


def test_a_missing_value_with_a_note_says_where_it_was_looked_for() -> None:
    assert Sourced[float].model_validate({"value": None, "note": "not in the datasheet"}).value is None


def test_a_value_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="value"):
        Sourced[int].model_validate({"value": "lots", "source": "x"})
