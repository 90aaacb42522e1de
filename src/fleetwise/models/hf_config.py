"""Read a Hugging Face `config.json` into a ModelArchitecture, one small rule set per `model_type`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fleetwise.datafiles import read_text_file
from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.models.architecture import Attention, AttentionKind, MixtureOfExperts, ModelArchitecture

Config = Mapping[str, Any]

# HF's own defaults for `tie_word_embeddings` differ per config class; these are the class defaults
# (transformers: models/<type>/configuration_<type>.py) used when a config.json leaves the key out.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3_text"}


def load_config_file(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a config.json (or a model directory holding one); returns (config, the file actually read)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "config.json"
    if not p.exists():
        raise DataFileError(str(p), "no such file (expected a Hugging Face config.json or a model directory)")
    try:
        data = json.loads(read_text_file(p))
    except json.JSONDecodeError as exc:
        raise DataFileError(str(p), f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataFileError(str(p), "expected a JSON object at the top level")
    return data, str(p)


class _Fields:
    """Typed access to a config mapping that names the file and field in every error."""

    def __init__(self, config: Config, path: str, prefix: str = "") -> None:
        self.config = config
        self.path = path
        self.prefix = prefix

    def _field(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def has(self, key: str) -> bool:
        """True when `key` is present and not null."""
        return self.config.get(key) is not None

    def get_int(self, key: str, default: int | None = None) -> int:
        """The integer at `key`; a missing or null key takes `default`, or is an error without one."""
        value = self.config.get(key)
        value = default if value is None else value
        if value is None:
            raise DataFileError(self.path, "missing required field", field=self._field(key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataFileError(self.path, f"expected a non-negative integer, got {value!r}",
                                field=self._field(key))
        return value

    def optional_int(self, key: str) -> int | None:
        """The integer at `key`, or None when missing or null."""
        return self.get_int(key) if self.has(key) else None

    def get_bool(self, key: str, default: bool) -> bool:
        """The flag at `key`, `default` when missing or null."""
        value = self.config.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise DataFileError(self.path, f"expected true/false, got {value!r}", field=self._field(key))
        return value

    def get_list(self, key: str) -> list[Any] | None:
        """The list at `key`, None when missing or null."""
        value = self.config.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise DataFileError(self.path, f"expected a list, got {value!r}", field=self._field(key))
        return value


def parse_hf_config(config: Config, name: str, path: str = "config.json") -> ModelArchitecture:
    """Build a ModelArchitecture from a config.json mapping; errors name the file and the missing field."""
    architectures = config.get("architectures") or []
    if isinstance(architectures, str):
        architectures = [architectures]
    text, prefix = config, ""
    if isinstance(config.get("text_config"), Mapping):  # multimodal wrappers keep the LM in text_config
        text, prefix = config["text_config"], "text_config."
    declared_type = str(config.get("model_type") or text.get("model_type") or "")
    text_type = str(text.get("model_type") or declared_type)
    if not declared_type:
        raise DataFileError(path, "missing required field", field="model_type")
    # Wrappers (gemma3, llama4) describe their language model with the *_text rules.
    model_type = {"gemma3": "gemma3_text", "llama4": "llama4_text"}.get(text_type, text_type)
    architecture = str(architectures[0]) if architectures else _DEFAULT_ARCHITECTURE.get(declared_type, "")
    rules = _RULES.get(model_type)
    if rules is None:
        raise FleetwiseError(
            f"{path}: model_type {model_type!r} is not supported yet; supported: {', '.join(sorted(_RULES))}")
    f = _Fields(text, path, prefix)
    top = _Fields(config, path)
    tie_default = model_type in _TIED_BY_DEFAULT
    tied = top.get_bool("tie_word_embeddings", f.get_bool("tie_word_embeddings", tie_default))
    attention, moe, moe_layers, windows, dense_intermediate, extras = rules(f, model_type)
    num_layers = f.get_int("num_hidden_layers")
    if num_layers < 1:
        raise DataFileError(path, "must be at least 1", field=f"{prefix}num_hidden_layers")
    if len(moe_layers) != num_layers or len(windows) != num_layers:
        raise DataFileError(path, f"per-layer lists must have {num_layers} entries", field=f"{prefix}layer_types")
    if attention.num_kv_heads == 0 or attention.num_heads % attention.num_kv_heads:
        raise DataFileError(path, f"num_attention_heads {attention.num_heads} is not a multiple of "
                                  f"num_key_value_heads {attention.num_kv_heads}", field=f"{prefix}num_key_value_heads")
    multimodal = prefix != ""
    return ModelArchitecture(
        name=name,
        architecture=architecture or declared_type,
        model_type=declared_type,
        hidden_size=f.get_int("hidden_size"),
        num_layers=num_layers,
        vocab_size=f.get_int("vocab_size"),
        tie_word_embeddings=tied,
        attention=attention,
        dense_intermediate_size=dense_intermediate,
        moe=moe,
        moe_layers=tuple(moe_layers),
        layer_windows=tuple(windows),
        max_position_embeddings=f.get_int("max_position_embeddings"),
        native_dtype=_native_dtype(config, text),
        norms_per_layer=extras.get("norms_per_layer", 2),
        mlp_bias=f.get_bool("mlp_bias", False),
        note="language model only; the vision encoder is not counted" if multimodal else None,
    )


def _native_dtype(config: Config, text: Config) -> str:
    """The checkpoint's weight format: its quantisation method if any, else torch_dtype."""
    quant = config.get("quantization_config") or text.get("quantization_config")
    if isinstance(quant, Mapping):
        method = str(quant.get("quant_method", "")).lower()
        if method in ("awq", "gptq"):
            return "int4"
        if method:
            return method
    torch_dtype = str(config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype")
                      or text.get("dtype") or "bfloat16")
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(torch_dtype, torch_dtype)


# ---- per-model_type rules ---------------------------------------------------------------------------

_Parsed = tuple[Attention, MixtureOfExperts | None, list[bool], list[int | None], int, dict[str, int]]


def _gqa(f: _Fields, *, qkv_bias: bool = False, o_bias: bool = False, qk_norm: bool = False,
         sinks: bool = False) -> Attention:
    heads = f.get_int("num_attention_heads")
    kv_heads = f.get_int("num_key_value_heads", heads)
    head_dim = f.get_int("head_dim") if f.has("head_dim") else f.get_int("hidden_size") // max(heads, 1)
    kind: AttentionKind = "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")
    return Attention(kind=kind, num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, v_head_dim=head_dim,
                     qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm, sinks=sinks)


def _windows_from_layer_types(f: _Fields, layers: int) -> list[int | None] | None:
    """Per-layer windows from an explicit `layer_types` list, when the config has one."""
    layer_types = f.get_list("layer_types")
    if layer_types is None:
        return None
    if len(layer_types) != layers:
        raise DataFileError(f.path, f"has {len(layer_types)} entries, expected {layers}",
                            field=f._field("layer_types"))
    windowed = [t in ("sliding_attention", "chunked_attention") for t in layer_types]
    if not any(windowed):
        return [None] * layers  # newer saves list full_attention layers and set sliding_window to null
    key = "attention_chunk_size" if "chunked_attention" in layer_types and not f.has("sliding_window") else \
        "sliding_window"
    window = f.get_int(key)
    return [window if w else None for w in windowed]


def _uniform_window(f: _Fields, layers: int, enabled: bool = True) -> list[int | None]:
    window = f.optional_int("sliding_window") if enabled else None
    return [window] * layers


def _llama_like(f: _Fields, model_type: str) -> _Parsed:
    """Llama, Mistral, Phi-3: dense decoder with optional uniform sliding window."""
    layers = f.get_int("num_hidden_layers")
    bias = f.get_bool("attention_bias", False)
    attention = _gqa(f, qkv_bias=bias, o_bias=bias)
    windows = _windows_from_layer_types(f, layers) or _uniform_window(f, layers, model_type != "llama")
    return attention, None, [False] * layers, windows, f.get_int("intermediate_size"), {}


def _mixtral(f: _Fields, model_type: str) -> _Parsed:
    layers = f.get_int("num_hidden_layers")
    moe = MixtureOfExperts(num_experts=f.get_int("num_local_experts"),
                           experts_per_token=f.get_int("num_experts_per_tok"),
                           expert_intermediate_size=f.get_int("intermediate_size"))
    return _gqa(f), moe, [True] * layers, _uniform_window(f, layers), 0, {}


def _qwen(f: _Fields, model_type: str) -> _Parsed:
    """Qwen2/2.5/3 dense and MoE: sliding window only when enabled, only from `max_window_layers` on."""
    layers = f.get_int("num_hidden_layers")
    qwen3 = model_type.startswith("qwen3")
    attention = _gqa(f, qkv_bias=f.get_bool("attention_bias", not qwen3), qk_norm=qwen3)
    windows = _windows_from_layer_types(f, layers)
    if windows is None:
        if f.get_bool("use_sliding_window", False):
            first = f.get_int("max_window_layers", 28)  # Qwen2Config's default
            window = f.get_int("sliding_window")
            windows = [window if i >= first else None for i in range(layers)]
        else:
            windows = [None] * layers
    moe = None
    moe_layers = [False] * layers
    dense = f.get_int("intermediate_size")
    if model_type.endswith("_moe") and f.get_int("num_experts", 0) > 0:
        skip = set(f.get_list("mlp_only_layers") or [])
        step = f.get_int("decoder_sparse_step", 1) or 1
        moe_layers = [i not in skip and (i + 1) % step == 0 for i in range(layers)]
        shared_width = f.get_int("shared_expert_intermediate_size", 0)
        moe = MixtureOfExperts(
            num_experts=f.get_int("num_experts"), experts_per_token=f.get_int("num_experts_per_tok"),
            expert_intermediate_size=f.get_int("moe_intermediate_size"),
            num_shared_experts=1 if shared_width else 0, shared_expert_intermediate_size=shared_width,
            shared_expert_gate=bool(shared_width),
        )
    return attention, moe, moe_layers, windows, dense, {}


def _gemma(f: _Fields, model_type: str) -> _Parsed:
    """Gemma 1/2/3: four norms per layer (2 and 3), alternating local/global attention."""
    layers = f.get_int("num_hidden_layers")
    attention = _gqa(f, qkv_bias=f.get_bool("attention_bias", False), qk_norm=model_type == "gemma3_text")
    windows = _windows_from_layer_types(f, layers)
    if windows is None and model_type == "gemma2":
        window = f.get_int("sliding_window")
        windows = [window if i % 2 == 0 else None for i in range(layers)]  # even layers are local
    elif windows is None and model_type == "gemma3_text":
        window = f.get_int("sliding_window")
        pattern = f.get_int("sliding_window_pattern", 6)
        windows = [None if (i + 1) % pattern == 0 else window for i in range(layers)]
    elif windows is None:
        windows = [None] * layers
    norms = 2 if model_type == "gemma" else 4
    return attention, None, [False] * layers, windows, f.get_int("intermediate_size"), {"norms_per_layer": norms}


def _deepseek(f: _Fields, model_type: str) -> _Parsed:
    """DeepSeek-V2/V3/R1: multi-head latent attention and fine-grained MoE after the first dense layers."""
    layers = f.get_int("num_hidden_layers")
    heads = f.get_int("num_attention_heads")
    rope = f.get_int("qk_rope_head_dim")
    attention = Attention(
        kind="mla", num_heads=heads, num_kv_heads=f.get_int("num_key_value_heads", heads),
        head_dim=f.get_int("qk_nope_head_dim") + rope, v_head_dim=f.get_int("v_head_dim"),
        q_lora_rank=f.optional_int("q_lora_rank"), kv_lora_rank=f.get_int("kv_lora_rank"), qk_rope_head_dim=rope,
    )
    first_dense = f.get_int("first_k_dense_replace", 0)
    freq = f.get_int("moe_layer_freq", 1) or 1
    moe_layers = [i >= first_dense and i % freq == 0 for i in range(layers)]
    moe = MixtureOfExperts(
        num_experts=f.get_int("n_routed_experts"), experts_per_token=f.get_int("num_experts_per_tok"),
        expert_intermediate_size=f.get_int("moe_intermediate_size"),
        num_shared_experts=f.get_int("n_shared_experts", 0),
        shared_expert_intermediate_size=f.get_int("moe_intermediate_size"),
        router_bias=f.config.get("topk_method") == "noaux_tc",  # e_score_correction_bias per expert
    )
    return attention, moe, moe_layers, [None] * layers, f.get_int("intermediate_size"), {}


def _llama4(f: _Fields, model_type: str) -> _Parsed:
    """Llama 4: MoE with one shared expert, interleaved with dense layers; chunked local attention."""
    layers = f.get_int("num_hidden_layers")
    moe_list = f.get_list("moe_layers")
    if moe_list is not None:
        moe_layers = [i in set(moe_list) for i in range(layers)]
    else:
        step = f.get_int("interleave_moe_layer_step", 1) or 1
        moe_layers = [(i + 1) % step == 0 for i in range(layers)]
    chunk = f.optional_int("attention_chunk_size")
    rope_layers = f.get_list("no_rope_layers")  # 1 = RoPE + chunked local attention, 0 = global NoPE layer
    if not rope_layers:  # HF: an empty or missing list means the default, every 4th layer global (NoPE)
        rope_layers = [int((i + 1) % 4 != 0) for i in range(layers)]
    windows: list[int | None] = [chunk if chunk and used else None for used in rope_layers]
    width = f.get_int("intermediate_size")
    moe = MixtureOfExperts(num_experts=f.get_int("num_local_experts"),
                           experts_per_token=f.get_int("num_experts_per_tok"),
                           expert_intermediate_size=width, num_shared_experts=1,
                           shared_expert_intermediate_size=width)
    dense = f.get_int("intermediate_size_mlp", width)
    return _gqa(f, qkv_bias=f.get_bool("attention_bias", False)), moe, moe_layers, windows, dense, {}


def _gpt_oss(f: _Fields, model_type: str) -> _Parsed:
    """gpt-oss: biased attention with sinks, alternating 128-token windows, biased MoE experts."""
    layers = f.get_int("num_hidden_layers")
    windows = _windows_from_layer_types(f, layers) or _uniform_window(f, layers)
    key = "num_experts_per_tok" if f.has("num_experts_per_tok") else "experts_per_token"
    moe = MixtureOfExperts(num_experts=f.get_int("num_local_experts"), experts_per_token=f.get_int(key),
                           expert_intermediate_size=f.get_int("intermediate_size"), expert_bias=True,
                           router_bias=True)
    bias = f.get_bool("attention_bias", True)
    attention = _gqa(f, qkv_bias=bias, o_bias=bias, sinks=True)
    return attention, moe, [True] * layers, windows, 0, {}


_RULES: dict[str, Callable[[_Fields, str], _Parsed]] = {
    "llama": _llama_like,
    "mistral": _llama_like,
    "phi3": _llama_like,
    "mixtral": _mixtral,
    "qwen2": _qwen,
    "qwen2_moe": _qwen,
    "qwen3": _qwen,
    "qwen3_moe": _qwen,
    "gemma": _gemma,
    "gemma2": _gemma,
    "gemma3_text": _gemma,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "llama4_text": _llama4,
    "gpt_oss": _gpt_oss,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_RULES))

# The class transformers registers for a model_type, for configs that omit `architectures`.
_DEFAULT_ARCHITECTURE = {
    "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "phi3": "Phi3ForCausalLM",
    "mixtral": "MixtralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM", "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForConditionalGeneration", "gemma3_text": "Gemma3ForCausalLM",
    "deepseek_v2": "DeepseekV2ForCausalLM", "deepseek_v3": "DeepseekV3ForCausalLM",
    "llama4": "Llama4ForConditionalGeneration", "llama4_text": "Llama4ForCausalLM", "gpt_oss": "GptOssForCausalLM",
}
