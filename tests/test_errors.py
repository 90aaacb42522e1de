"""Tests for fleetwise.errors: user-facing messages and the closest-name suggestions they carry."""

from __future__ import annotations

from fleetwise.errors import DataFileError, UnknownNameError, closest_names

MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-32B"]


def test_a_typo_suggests_the_name_it_was_meant_to_be_first() -> None:
    assert closest_names("meta-llama/Llama-3.1-8B-Instrct", MODELS)[0] == "meta-llama/Llama-3.1-8B-Instruct"


def test_a_name_without_its_organisation_matches_on_the_part_after_the_slash() -> None:
    assert closest_names("qwen3-32b", MODELS) == ["Qwen/Qwen3-32B"]


def test_a_misspelt_name_without_its_organisation_is_matched_on_the_part_after_the_slash() -> None:
    scout = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    assert closest_names("Llama-4-Scot", [*MODELS, scout])[0] == scout


def test_a_fragment_matches_every_name_containing_it() -> None:
    assert set(closest_names("Llama-3.1", MODELS)) == {"meta-llama/Llama-3.1-8B-Instruct",
                                                       "meta-llama/Llama-3.1-70B-Instruct"}


def test_suggestions_are_unique_and_limited() -> None:
    known = [f"g5.{n}xlarge" for n in range(1, 30)]
    suggestions = closest_names("g5.xlarge", known, limit=3)
    assert len(suggestions) == 3 and len(set(suggestions)) == 3


def test_nothing_alike_suggests_nothing() -> None:
    assert closest_names("zzzz", MODELS) == []


def test_unknown_name_message_names_the_kind_and_the_closest_names() -> None:
    error = UnknownNameError("instance type", "inf2.96xlarge", ["inf2.48xlarge", "p5.48xlarge"])
    assert error.suggestions[0] == "inf2.48xlarge"
    assert str(error).startswith("unknown instance type 'inf2.96xlarge'; closest: inf2.48xlarge")
    assert str(UnknownNameError("chip", "zzzz", ["h200"])) == "unknown chip 'zzzz'"


def test_data_file_error_says_where_in_the_file() -> None:
    error = DataFileError("mine.yaml", "not a number", entry="line 3", field="usd_per_hour")
    assert str(error) == "mine.yaml, entry line 3, field 'usd_per_hour': not a number"
    assert str(DataFileError("mine.yaml", "no such file")) == "mine.yaml: no such file"
