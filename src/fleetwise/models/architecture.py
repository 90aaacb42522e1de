"""A transformer's architecture as plain data, and what follows from it: parameters, weight bytes, KV cache, FLOPs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fleetwise.dtypes import ACTIVATION_BYTES, WeightDType

AttentionKind = Literal["mha", "gqa", "mqa", "mla"]


@dataclass(frozen=True, slots=True)
class Attention:
    """Shape of one attention block (the same in every layer of the models we support)."""

    kind: AttentionKind
    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key width per head (for MLA: nope + rope part)
    v_head_dim: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3, Gemma 3)
    sinks: bool = False  # one learned sink logit per head (gpt-oss)
    q_lora_rank: int | None = None  # MLA only: low-rank query projection (None = full-rank query)
    kv_lora_rank: int = 0  # MLA only: width of the compressed KV latent
    qk_rope_head_dim: int = 0  # MLA only: decoupled RoPE key width, cached beside the latent


@dataclass(frozen=True, slots=True)
class MixtureOfExperts:
    """Routed and shared experts of an MoE feed-forward layer."""

    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0  # per shared expert
    expert_bias: bool = False
    router_bias: bool = False
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate (hidden -> 1) on the shared expert


@dataclass(frozen=True, slots=True)
class ParameterCounts:
    """Parameter counts by component; `active` is what one token touches in a forward pass."""

    embedding: int
    lm_head: int
    attention: int  # projections and their biases
    dense_mlp: int
    routed_experts: int
    routed_experts_active: int
    shared_experts: int
    routers: int
    norms: int  # every norm weight, attention sinks included

    @property
    def total(self) -> int:
        """All parameters stored in the checkpoint (language model only)."""
        return (self.embedding + self.lm_head + self.attention + self.dense_mlp + self.routed_experts
                + self.shared_experts + self.routers + self.norms)

    @property
    def active(self) -> int:
        """Parameters used per token, embedding table included (Mixtral's and DeepSeek's convention)."""
        return self.total - self.routed_experts + self.routed_experts_active

    @property
    def active_excluding_embedding(self) -> int:
        """Parameters used per token without the input embedding lookup (OpenAI's gpt-oss convention)."""
        return self.active - self.embedding

    @property
    def quantizable(self) -> int:
        """Linear-layer weights inside the decoder blocks: what AWQ/GPTQ/FP8 checkpoints quantise."""
        return self.attention + self.dense_mlp + self.routed_experts + self.shared_experts


@dataclass(frozen=True, slots=True)
class ModelArchitecture:
    """Everything fleetwise needs to know about a decoder-only language model."""

    name: str
    architecture: str  # HF class name, e.g. LlamaForCausalLM
    model_type: str
    hidden_size: int
    num_layers: int
    vocab_size: int
    tie_word_embeddings: bool
    attention: Attention
    dense_intermediate_size: int  # width of the dense MLP (layers that are not MoE)
    moe: MixtureOfExperts | None
    moe_layers: tuple[bool, ...]  # per layer: is its feed-forward an MoE?
    layer_windows: tuple[int | None, ...]  # per layer: sliding/chunked attention window, None = full
    max_position_embeddings: int
    native_dtype: str  # the checkpoint's format, e.g. bf16, fp8, mxfp4
    norms_per_layer: int = 2
    mlp_bias: bool = False
    source: str | None = None
    note: str | None = None
    _counts: ParameterCounts | None = field(default=None, init=False, repr=False, compare=False)

    # ---- parameters -------------------------------------------------------------------------------

    def parameters(self) -> ParameterCounts:
        """Parameter counts by component (computed once from the shapes)."""
        if self._counts is None:
            object.__setattr__(self, "_counts", self._count_parameters())
        assert self._counts is not None
        return self._counts

    def matmul_parameters_per_token(self) -> int:
        """Weights one token multiplies through: active parameters without the embedding lookup, plus the
        output projection (which a tied model shares with its embedding table)."""
        p = self.parameters()
        return p.active_excluding_embedding + (p.embedding if self.tie_word_embeddings else 0)

    def _count_parameters(self) -> ParameterCounts:
        h = self.hidden_size
        layers = self.num_layers
        n_moe = sum(self.moe_layers)
        n_dense = layers - n_moe
        embedding = self.vocab_size * h
        lm_head = 0 if self.tie_word_embeddings else self.vocab_size * h

        dense_mlp = n_dense * _gated_mlp(h, self.dense_intermediate_size, self.mlp_bias)
        routed = routed_active = shared = routers = 0
        if self.moe is not None and n_moe:
            m = self.moe
            expert = _gated_mlp(h, m.expert_intermediate_size, m.expert_bias)
            routed = n_moe * m.num_experts * expert
            routed_active = n_moe * m.experts_per_token * expert
            shared = n_moe * m.num_shared_experts * _gated_mlp(h, m.shared_expert_intermediate_size, False)
            per_router = h * m.num_experts + (m.num_experts if m.router_bias else 0)
            per_router += h if m.shared_expert_gate else 0
            routers = n_moe * per_router

        attention_linear, attention_norms = self._attention_parameters()
        norms = layers * (self.norms_per_layer * h + attention_norms) + h  # + final norm
        return ParameterCounts(
            embedding=embedding, lm_head=lm_head, attention=layers * attention_linear, dense_mlp=dense_mlp,
            routed_experts=routed, routed_experts_active=routed_active, shared_experts=shared,
            routers=routers, norms=norms,
        )

    def _attention_parameters(self) -> tuple[int, int]:
        """(projection weights and biases, norm/sink weights) of one attention block."""
        a = self.attention
        h = self.hidden_size
        o_proj = a.num_heads * a.v_head_dim * h + (h if a.o_bias else 0)
        sinks = a.num_heads if a.sinks else 0
        if a.kind == "mla":
            q_width = a.num_heads * a.head_dim
            if a.q_lora_rank:
                q_proj = h * a.q_lora_rank + a.q_lora_rank * q_width
                q_norm = a.q_lora_rank
            else:
                q_proj, q_norm = h * q_width, 0
            kv_a = h * (a.kv_lora_rank + a.qk_rope_head_dim)
            kv_b = a.kv_lora_rank * a.num_heads * (a.head_dim - a.qk_rope_head_dim + a.v_head_dim)
            return q_proj + kv_a + kv_b + o_proj, q_norm + a.kv_lora_rank + sinks
        q_out = a.num_heads * a.head_dim
        kv_out = a.num_kv_heads * (a.head_dim + a.v_head_dim)
        qkv = h * (q_out + kv_out) + ((q_out + kv_out) if a.qkv_bias else 0)
        qk_norm = 2 * a.head_dim if a.qk_norm else 0
        return qkv + o_proj, qk_norm + sinks

    def weight_bytes(self, dtype: WeightDType) -> float:
        """Bytes of weights when the decoder's linear layers are stored in `dtype`, the rest in 16-bit."""
        p = self.parameters()
        if not dtype.quantized:
            return p.total * dtype.bytes_per_param
        return p.quantizable * dtype.bytes_per_param + (p.total - p.quantizable) * ACTIVATION_BYTES

    # ---- KV cache ---------------------------------------------------------------------------------

    def kv_cache_bytes_per_token_per_layer(self, kv_bytes: float = ACTIVATION_BYTES) -> float:
        """KV-cache bytes one token adds to one layer (MLA keeps only the compressed latent + RoPE key)."""
        a = self.attention
        if a.kind == "mla":
            return (a.kv_lora_rank + a.qk_rope_head_dim) * kv_bytes
        return a.num_kv_heads * (a.head_dim + a.v_head_dim) * kv_bytes

    def kv_cache_bytes_per_token(self, kv_bytes: float = ACTIVATION_BYTES) -> float:
        """KV-cache bytes one token adds across all layers while every window still has room."""
        return self.num_layers * self.kv_cache_bytes_per_token_per_layer(kv_bytes)

    def kv_cache_bytes_per_sequence(self, context_tokens: int, kv_bytes: float = ACTIVATION_BYTES,
                                    windowed: bool = True) -> float:
        """KV-cache bytes held by one sequence of `context_tokens`; with `windowed`, windowed layers keep only
        their window (engines that allocate every layer for the full context pass False)."""
        token_layers = (self.kv_cached_token_layers(context_tokens) if windowed
                        else self.num_layers * context_tokens)
        return token_layers * self.kv_cache_bytes_per_token_per_layer(kv_bytes)

    def kv_cached_token_layers(self, context_tokens: int) -> int:
        """Sum over layers of the tokens each layer keeps (or attends to) for a sequence of `context_tokens`."""
        return sum(context_tokens if w is None else min(w, context_tokens) for w in self.layer_windows)

    # ---- compute ----------------------------------------------------------------------------------

    def forward_flops_per_token(self, context_tokens: int = 0) -> float:
        """FLOPs to process one token that attends to `context_tokens` earlier tokens (2 per multiply-add).

        Attention is counted in its plain form (QK^T over head_dim, then PV over v_head_dim); for MLA that is the
        decompressed form, not the weight-absorbed one some engines run at decode time.
        """
        matmul = 2.0 * self.matmul_parameters_per_token()
        a = self.attention
        attention_scores = 2.0 * a.num_heads * (a.head_dim + a.v_head_dim) * self.kv_cached_token_layers(context_tokens)
        return matmul + attention_scores

    # ---- descriptions -----------------------------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        """True when any layer routes tokens to experts."""
        return self.moe is not None and any(self.moe_layers)

    @property
    def sliding_window_layers(self) -> int:
        """How many layers attend only within a window."""
        return sum(w is not None for w in self.layer_windows)


def _gated_mlp(hidden: int, intermediate: int, bias: bool) -> int:
    """Parameters of a gated (SwiGLU/GeGLU) MLP: gate, up and down projections."""
    return 3 * hidden * intermediate + ((2 * intermediate + hidden) if bias else 0)
