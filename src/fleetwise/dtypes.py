"""Weight data types a deployment can run: their storage cost per parameter and the names users type."""

from __future__ import annotations

from dataclasses import dataclass

from fleetwise.errors import UnknownNameError


@dataclass(frozen=True, slots=True)
class WeightDType:
    """A weight format: bytes per quantised parameter, and the format the KV cache and activations keep."""

    id: str
    description: str
    bytes_per_param: float
    # Embeddings, the LM head and norms stay in 16-bit under every quantisation scheme we model
    # (AWQ/GPTQ/FP8 checkpoints quantise only the linear layers inside the decoder blocks).
    quantized: bool
    aliases: tuple[str, ...] = ()


# int4 group-wise (AWQ / GPTQ, group_size 128): 4-bit weights plus, per group of 128, one fp16 scale
# (2 bytes) and one packed 4-bit zero point (0.5 byte): 0.5 + 2.5/128 bytes per parameter (computed
# from the format: https://github.com/casper-hansen/AutoAWQ, "w_bit": 4, "q_group_size": 128).
_INT4_GROUP_BYTES = 0.5 + 2.5 / 128

DTYPES: dict[str, WeightDType] = {
    d.id: d
    for d in (
        WeightDType("bf16", "bfloat16 weights (unquantised)", 2.0, False, ("bfloat16",)),
        WeightDType("fp16", "float16 weights (unquantised)", 2.0, False, ("float16", "half")),
        WeightDType("fp8", "FP8 E4M3 weights and activations (W8A8)", 1.0, True, ("float8", "fp8_e4m3")),
        WeightDType("int8", "int8 weight-only (W8A16)", 1.0, True, ("w8a16",)),
        WeightDType("int4", "int4 weight-only, AWQ/GPTQ group 128 (W4A16)", _INT4_GROUP_BYTES, True,
                    ("awq", "gptq", "w4a16")),
    )
}

ACTIVATION_BYTES = 2.0  # activations (and by default the KV cache) are kept in 16-bit for every dtype above
# KV-cache formats: the 16-bit default, or FP8 where the engine offers it (engines.yaml kv_cache_dtypes).
KV_CACHE_BYTES = {"auto": ACTIVATION_BYTES, "fp8": 1.0}


def kv_cache_bytes(kv_dtype: str) -> float:
    """Bytes per cached key or value element for a KV-cache dtype ("auto" = 16-bit)."""
    key = kv_dtype.strip().lower()
    if key not in KV_CACHE_BYTES:
        raise UnknownNameError("KV-cache dtype", kv_dtype, KV_CACHE_BYTES)
    return KV_CACHE_BYTES[key]
DEFAULT_FIT_DTYPES: tuple[str, ...] = ("bf16", "fp8", "int8", "int4")


def get_dtype(name: str) -> WeightDType:
    """Look up a weight dtype by id or alias (case-insensitive)."""
    key = name.strip().lower()
    if key in DTYPES:
        return DTYPES[key]
    for dtype in DTYPES.values():
        if key in dtype.aliases:
            return dtype
    raise UnknownNameError("dtype", name, list(DTYPES))
