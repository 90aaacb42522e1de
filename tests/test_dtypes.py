"""Tests for fleetwise.dtypes: weight formats, their names, and bytes per parameter and per KV element."""

from __future__ import annotations

import pytest

from fleetwise.dtypes import DEFAULT_FIT_DTYPES, get_dtype, kv_cache_bytes
from fleetwise.errors import UnknownNameError


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("AWQ", "int4"), ("gptq", "int4"), ("bfloat16", "bf16"), (" BF16 ", "bf16"), ("half", "fp16"),
     ("fp8_e4m3", "fp8"), ("w8a16", "int8")],
)
def test_dtypes_are_found_by_id_or_alias_in_any_case(name: str, dtype: str) -> None:
    assert get_dtype(name).id == dtype


def test_an_unknown_dtype_suggests_the_closest_ids() -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        get_dtype("fp4")
    assert excinfo.value.suggestions[0] == "fp8"


@pytest.mark.parametrize(("dtype", "size", "quantized"),
                         [("bf16", 2.0, False), ("fp16", 2.0, False), ("fp8", 1.0, True), ("int8", 1.0, True),
                          ("int4", 0.5 + 2.5 / 128, True)])
def test_bytes_per_parameter_include_int4_group_scales_and_zero_points(dtype: str, size: float,
                                                                      quantized: bool) -> None:
    found = get_dtype(dtype)
    assert (found.bytes_per_param, found.quantized) == (size, quantized)


def test_every_default_fit_dtype_resolves() -> None:
    assert [get_dtype(d).id for d in DEFAULT_FIT_DTYPES] == list(DEFAULT_FIT_DTYPES)


def test_kv_cache_is_16_bit_by_default_and_one_byte_in_fp8() -> None:
    assert kv_cache_bytes("auto") == 2.0
    assert kv_cache_bytes(" FP8 ") == 1.0
    with pytest.raises(UnknownNameError, match="KV-cache dtype 'int4'"):
        kv_cache_bytes("int4")
