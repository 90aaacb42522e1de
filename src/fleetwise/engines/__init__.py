"""Serving engines (vLLM, TensorRT-LLM, TGI, NxD Inference, transformers-neuronx) and their compatibility rules."""

from fleetwise.engines.profile import DEFAULT_ENGINE_FOR_KIND, EngineProfile, engine_profiles, get_engine

__all__ = ["DEFAULT_ENGINE_FOR_KIND", "EngineProfile", "engine_profiles", "get_engine"]
