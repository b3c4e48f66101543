"""A model's module inventory: which linear layers it has, their shapes and how many of each.

The inventory is what every count in lora-tui is computed from (LoRA parameters, memory). It is built once per
model by letting transformers construct the module tree on the meta device (no weights, no download) in a
subprocess, and cached; inventories for the preset models ship with lora-tui so the common case is instant.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core.hub import HubError, hub_file
from lora_tui.core.models.inventory import LinearKind, ModelInventory
from lora_tui.core.paths import PRESETS_DIR, cache_dir
from lora_tui.core.progress import ProgressTracker, Report
from lora_tui.errors import UserError
from lora_tui.i18n import _, ngettext

# ---- targets -----------------------------------------------------------------------------------------------

ALL_LINEAR = "all-linear"
"""PEFT's shorthand for every linear layer except the output head."""


def _check_target_name(target: str) -> None:
    """lora-tui targets module kinds: a per-layer target (with a layer index) cannot be counted from kinds."""
    if any(part.isdigit() for part in target.split(".")):
        raise UserError(_("--target-modules: {target} names a single layer; lora-tui adapts module kinds in every "
                          "layer. Use the leaf name (e.g. q_proj).").format(target=repr(target)))


def resolve_targets(inv: ModelInventory, targets: list[str]) -> tuple[list[LinearKind], list[str]]:
    """The layer kinds PEFT's `target_modules=targets` adapts, and the requested names that match nothing.

    A name matches a module whose path equals it or ends with `.` + it; `["all-linear"]` is every nn.Linear
    and Conv1D except the output head (PEFT's `_maybe_include_all_linear_layers`). Fused expert parameters
    are never matched here (see `resolve_parameters`).
    """
    if [t.lower() for t in targets] == [ALL_LINEAR]:
        return [k for k in inv.linears if k.layer_type in ("linear", "conv1d") and k.group != "output"], []
    if any(t.lower() == ALL_LINEAR for t in targets):
        raise UserError(_("--target-modules: all-linear cannot be combined with other module names."))
    matched: list[LinearKind] = []
    unmatched: list[str] = []
    for target in targets:
        _check_target_name(target)
        hits = [k for k in (*inv.linears, *inv.embeddings) if k.matches(target)]
        if not hits:
            unmatched.append(target)
        matched.extend(k for k in hits if k not in matched)
    return matched, unmatched


def resolve_parameters(inv: ModelInventory, targets: list[str]) -> tuple[list[LinearKind], list[str]]:
    """The fused expert parameters PEFT's `target_parameters=targets` adapts, and names matching nothing."""
    matched: list[LinearKind] = []
    unmatched: list[str] = []
    for target in targets:
        _check_target_name(target)
        hits = [k for k in inv.linears if k.matches_parameter(target)]
        if not hits:
            unmatched.append(target)
        matched.extend(k for k in hits if k not in matched)
    return matched, unmatched


def unknown_targets_error(inv: ModelInventory, unmatched: list[str],
                          flag: str = "--target-modules") -> UserError:
    """The user error for target names that match no module of the model, listing the names it has."""
    names, modules = ", ".join(unmatched), ", ".join(inv.module_names())
    if inv.parameter_names():
        return UserError(ngettext(
            "{flag}: {names} matches no module of {model}. Its modules: {modules} (or all-linear). Fused expert "
            "weights ({params}) need target_parameters.",
            "{flag}: {names} match no module of {model}. Its modules: {modules} (or all-linear). Fused expert "
            "weights ({params}) need target_parameters.", len(unmatched)).format(
                flag=flag, names=names, model=inv.model_id, modules=modules,
                params=", ".join(inv.parameter_names())))
    return UserError(ngettext("{flag}: {names} matches no module of {model}. Its modules: {modules} (or all-linear).",
                              "{flag}: {names} match no module of {model}. Its modules: {modules} (or all-linear).",
                              len(unmatched)).format(flag=flag, names=names, model=inv.model_id, modules=modules))


def check_targets(inv: ModelInventory, targets: list[str]) -> list[LinearKind]:
    """resolve_targets, raising UserError when any requested name matches nothing.

    Names PEFT remaps onto a mixture-of-experts model's fused expert weights (`inv.moe_conversion`, e.g. gate_proj
    on Qwen3-MoE) are accepted; `lora_math.peft_moe_targets` counts what they adapt.
    """
    matched, unmatched = resolve_targets(inv, targets)
    remapped = set((inv.moe_conversion or {}).get("target_module_mapping") or {})
    unmatched = [t for t in unmatched if t.rsplit(".", 1)[-1] not in remapped]
    if unmatched:
        raise unknown_targets_error(inv, unmatched)
    return matched


# ---- presets -----------------------------------------------------------------------------------------------

MODELS_DIR = PRESETS_DIR / "models"
"""One JSON file per preset model: metadata, the config.json it was built from, and its inventory."""

DEMO = "demo"
"""Name of the built-in tiny model."""


@dataclass(frozen=True)
class PresetInfo:
    """What the model picker shows for one preset."""

    name: str
    """Short name, e.g. `gemma-3-1b-it`."""
    hub_id: str
    """Hugging Face hub id, e.g. `google/gemma-3-1b-it`."""
    display_name: str
    """Human name, e.g. `Gemma 3 1B (instruct)`."""
    params: int
    """Total parameters."""
    family: str
    """Model family, e.g. `gemma`, `llama`, `qwen`."""
    notes: str
    """Anything a person should know before picking it."""


@functools.lru_cache(maxsize=1)
def _preset_files() -> dict[str, Path]:
    """Preset lookup: lower-cased short name, hub id and aliases -> file."""
    index: dict[str, Path] = {}
    for path in sorted(MODELS_DIR.glob("*.json")):
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
        for key in (meta["name"], meta["hub_id"], *meta.get("aliases", [])):
            index[key.lower()] = path
    return index


@functools.lru_cache(maxsize=64)
def _load_preset_file(path: Path) -> dict[str, Any]:
    """A preset file's content, parsed once."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def preset(model: str) -> dict[str, Any] | None:
    """The stored preset for a short name, hub id or alias (case-insensitive), or None."""
    path = _preset_files().get(model.strip().lower())
    return None if path is None else _load_preset_file(path)


def list_presets() -> list[PresetInfo]:
    """Every preset model, smallest first."""
    infos = []
    for path in sorted(set(_preset_files().values())):
        meta = _load_preset_file(path)
        infos.append(PresetInfo(meta["name"], meta["hub_id"], meta["display_name"],
                                int(meta["inventory"]["total_params"]), meta["family"],
                                meta.get("notes", "")))
    return sorted(infos, key=lambda p: (p.params, p.name))


def demo_config() -> dict[str, Any]:
    """The built-in demo model's config.json content (a tiny Llama), as stored in presets/models/demo.json."""
    return dict(_load_preset_file(MODELS_DIR / "demo.json")["config"])


def _preset_inventory(meta: dict[str, Any]) -> ModelInventory:
    """A preset's stored inventory, with its metadata in `extra`."""
    extra = {k: meta.get(k) for k in ("name", "hub_id", "display_name", "family", "notes", "recommend")}
    return ModelInventory.from_dict(meta["inventory"], model_id=meta["name"], extra=extra)


# ---- anything else: config.json -> meta-device build in a subprocess, cached -------------------------------

BUILD_TIMEOUT_S = 300
"""Longest a meta-device build may take before it is reported as failed."""
HUB_TIMEOUT_S = 4.0
"""Seconds to wait for the Hugging Face hub before treating it as unreachable."""


def hf_hub_cache() -> Path:
    """The local HF hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def _cached_snapshots(hub_id: str) -> list[Path]:
    """Snapshot directories of a hub id in the local HF cache, newest first."""
    snaps = hf_hub_cache() / ("models--" + hub_id.replace("/", "--")) / "snapshots"
    if not snaps.is_dir():
        return []
    return sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)


def _read_config(path: Path) -> dict[str, Any]:
    """A config.json, or a UserError naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UserError(_("{path}: cannot read config.json ({error}).").format(path=path, error=exc)) from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise UserError(_("{path}: not a transformers config.json (no `model_type`).").format(path=path))
    return data


def _fetch_hub_config(hub_id: str) -> dict[str, Any] | None:
    """config.json from the hub with a short timeout; None when offline, unreachable or not found."""
    try:
        data = json.loads(hub_file(hub_id, "config.json", timeout=HUB_TIMEOUT_S).decode("utf-8"))
    except (HubError, ValueError):
        return None
    return data if isinstance(data, dict) and "model_type" in data else None


def config_key(config: dict[str, Any]) -> str:
    """Cache key of a config: a hash of its canonical JSON and the builder's transformers version."""
    try:
        tf_version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "none"
    blob = json.dumps(config, sort_keys=True) + "|" + tf_version + "|inventory-v1"
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def build_inventory(config: dict[str, Any], model_id: str, progress: Report | None = None) -> ModelInventory:
    """A model's inventory from its config: cached in cache_dir()/inventories, else built in a subprocess (about
    5 s on 2 cores, most of it importing transformers), told to `progress` as a stage of unknown length."""
    cache = cache_dir() / "inventories" / f"{config_key(config)}.json"
    cached = _read_cached_inventory(cache, model_id)
    if cached is not None:
        return cached
    tracker = ProgressTracker(progress) if progress is not None else None
    if tracker is not None:
        tracker.stage(_("building the module tree of {model} on the meta device (once per model, about 5 s)").format(
            model=model_id))
    try:
        return _build_and_cache(config, model_id, cache)
    finally:
        if tracker is not None:
            tracker.finish()


def _build_and_cache(config: dict[str, Any], model_id: str, cache: Path) -> ModelInventory:
    unique = f"{os.getpid()}.{time.monotonic_ns()}"
    cfg_file = cache.with_name(f"{cache.stem}.{unique}.config.json")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(json.dumps(config), encoding="utf-8")
    except OSError as exc:
        raise UserError(_("cannot write to the cache directory {path} ({error}); set LORA_TUI_CACHE to a writable "
                          "directory.").format(path=cache.parent, error=exc.strerror or exc)) from None
    try:
        cmd = [sys.executable, "-m", "lora_tui.core.models._build", str(cfg_file), model_id]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(_("model {model}: building its module tree took over {seconds} s.").format(
            model=repr(model_id), seconds=BUILD_TIMEOUT_S)) from None
    finally:
        cfg_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise UserError(_("model {model}: transformers cannot build it from its config.json ({error}).").format(
            model=repr(model_id), error=_first_sentence(proc.stderr)))
    data = json.loads(proc.stdout)
    tmp = cache.with_name(f"{cache.stem}.{unique}.tmp")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        tmp.unlink(missing_ok=True)  # the cache is an optimisation: the next call builds again
    return ModelInventory.from_dict(data, model_id=model_id)


def _read_cached_inventory(cache: Path, model_id: str) -> ModelInventory | None:
    """The cached inventory, or None when there is none or it cannot be read (it is then rebuilt)."""
    try:
        with open(cache, encoding="utf-8") as fh:
            return ModelInventory.from_dict(json.load(fh), model_id=model_id)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _first_sentence(stderr: str, limit: int = 200) -> str:
    """The builder's error in one short line: the last stderr line, up to its first sentence."""
    why = (stderr.strip().splitlines() or ["unknown error"])[-1].strip()
    why = why.split(". ", 1)[0].rstrip(".")
    return why if len(why) <= limit else why[: limit - 3] + "..."


def _not_found(model: str) -> UserError:
    return UserError(_("model {model}: not a preset, not a local directory with config.json, and not in the local "
                       "Hugging Face cache (the hub is unreachable); use a preset (`lora-tui plan --list-models`), "
                       "`demo`, or a local path.").format(model=repr(model)))


def load_inventory(model: str, progress: Report | None = None) -> ModelInventory:
    """The inventory of a preset (short name or hub id), `demo`, a local directory, or a hub id.

    Presets load from their JSON instantly. A local directory or a hub id (local HF cache first, then the hub
    with a short timeout) is built once on the meta device in a subprocess and cached.
    """
    meta = preset(model)
    if meta is not None:
        return _preset_inventory(meta)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(_("model {model}: the directory has no config.json.").format(model=repr(model)))
        return build_inventory(_read_config(path / "config.json"), str(path), progress)
    if path.is_file() and path.name.endswith(".json"):
        return build_inventory(_read_config(path), str(path), progress)
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        for snap in _cached_snapshots(model):
            if (snap / "config.json").is_file():
                return build_inventory(_read_config(snap / "config.json"), model, progress)
        config = _fetch_hub_config(model)
        if config is not None:
            return build_inventory(config, model, progress)
    raise _not_found(model)


def _has_weights(directory: Path) -> bool:
    """Whether a directory holds model weights (safetensors or PyTorch bin files)."""
    return any(directory.glob("*.safetensors")) or any(directory.glob("pytorch_model*.bin"))


def is_available_offline(model: str) -> tuple[bool, str]:
    """Whether the model's weights are on this machine, and a one-line reason (in the current language)."""
    if model.strip().lower() == DEMO:
        built = cache_dir() / "demo-model"
        if (built / "config.json").is_file() and _has_weights(built):
            return True, _("demo model built at {path}").format(path=built)
        return False, _("demo model not built yet (it is built locally, at {path}, on first use)").format(path=built)
    path = Path(model).expanduser()
    if path.is_dir():
        if _has_weights(path):
            return True, _("weights found in {path}").format(path=path)
        return False, _("{path} has no *.safetensors or pytorch_model*.bin files").format(path=path)
    meta = preset(model)
    hub_id = meta["hub_id"] if meta else model
    for snap in _cached_snapshots(hub_id):
        if any(snap.glob("*.safetensors")):
            return True, _("{model} in the Hugging Face cache ({path})").format(model=hub_id, path=snap)
    return False, _("{model} is not in the Hugging Face cache ({path}); it must be downloaded").format(
        model=hub_id, path=hf_hub_cache())
