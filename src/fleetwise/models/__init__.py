"""Model library: architectures parsed from Hugging Face config.json, and what they cost in memory and compute."""

from fleetwise.models.architecture import Attention, MixtureOfExperts, ModelArchitecture, ParameterCounts
from fleetwise.models.hf_config import SUPPORTED_MODEL_TYPES, parse_hf_config
from fleetwise.models.library import LibraryEntry, bundled_models, find_bundled, load_model

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "Attention",
    "LibraryEntry",
    "MixtureOfExperts",
    "ModelArchitecture",
    "ParameterCounts",
    "bundled_models",
    "find_bundled",
    "load_model",
    "parse_hf_config",
]
