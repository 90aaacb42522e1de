"""The model library: bundled config.json facts by Hugging Face id, plus user configs from local paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fleetwise.errors import DataFileError, UnknownNameError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.models.hf_config import load_config_file, parse_hf_config

_META_KEY = "_fleetwise"


@dataclass(frozen=True, slots=True)
class PublishedParameters:
    """Parameter counts as the model's publisher states them, for checking our arithmetic."""

    total: float | None  # parameters, e.g. 8.03e9
    active: float | None
    non_embedding: float | None
    source: str | None
    active_counts_input_embedding: bool = True  # False for OpenAI's gpt-oss convention
    includes_vision_encoder: bool = False  # multimodal totals count a vision tower fleetwise does not model
    disputed: str | None = None  # why the publisher's figure contradicts its own config, if it does


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """A bundled model: its architecture, where the config facts were read, and published counts."""

    hf_id: str
    architecture: ModelArchitecture
    source: str
    as_of: str
    published: PublishedParameters


def _parse_count(value: Any) -> float | None:
    """'8.03B' / '671B' / 8.03e9 -> parameters."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().upper().replace(",", "")
    scale = {"B": 1e9, "M": 1e6, "T": 1e12}.get(text[-1:], 1.0)
    number = text[:-1] if text[-1:] in "BMT" else text
    return float(number) * scale


def _entry_from_json(text: str, filename: str) -> LibraryEntry:
    raw = json.loads(text)
    meta = raw.get(_META_KEY)
    if not isinstance(meta, dict) or not meta.get("hf_id") or not meta.get("source"):
        raise DataFileError(filename, "bundled config needs _fleetwise.hf_id and _fleetwise.source", field=_META_KEY)
    hf_id = str(meta["hf_id"])
    arch = parse_hf_config(raw, hf_id, filename)
    published = meta.get("published_params") or {}
    return LibraryEntry(
        hf_id=hf_id,
        architecture=replace(arch, source=str(meta["source"])),
        source=str(meta["source"]),
        as_of=str(meta.get("as_of", "")),
        published=PublishedParameters(
            total=_parse_count(published.get("total")), active=_parse_count(published.get("active")),
            non_embedding=_parse_count(published.get("non_embedding")), source=published.get("source"),
            active_counts_input_embedding=bool(published.get("active_counts_input_embedding", True)),
            includes_vision_encoder="includes_vision_encoder" in published, disputed=published.get("disputed"),
        ),
    )


@cache
def bundled_models() -> dict[str, LibraryEntry]:
    """Every bundled model, keyed by Hugging Face id."""
    entries: dict[str, LibraryEntry] = {}
    folder = resources.files("fleetwise.models") / "data" / "configs"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            entry = _entry_from_json(item.read_text(encoding="utf-8"), f"fleetwise/models/data/configs/{item.name}")
            entries[entry.hf_id] = entry
    return entries


def find_bundled(name: str) -> LibraryEntry | None:
    """The bundled entry for an HF id, matched case-insensitively, or by its unique name after the slash."""
    models = bundled_models()
    if name in models:
        return models[name]
    lowered = {k.lower(): v for k, v in models.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    tails = [v for k, v in models.items() if k.split("/")[-1].lower() == name.lower()]
    return tails[0] if len(tails) == 1 else None


def load_model(name_or_path: str) -> ModelArchitecture:
    """Resolve a bundled HF id, a config.json file or a model directory into a ModelArchitecture."""
    entry = find_bundled(name_or_path)
    if entry is not None:
        return entry.architecture
    path = Path(name_or_path).expanduser()
    if path.exists() or name_or_path.endswith(".json"):
        config, read = load_config_file(path)
        meta = config.get(_META_KEY) or {}
        resolved = path.resolve()
        default = resolved.parent.name if resolved.name == "config.json" else resolved.stem
        name = str(meta.get("hf_id") or config.get("_name_or_path") or (resolved.name if path.is_dir() else default))
        return replace(parse_hf_config(config, name, read), source=read)
    raise UnknownNameError("model", name_or_path, bundled_models())
