"""Finding and reading trained adapters: discovery under a root, adapter_config.json, files, training info.

Light on purpose (no torch, transformers or peft): the listing, the details view and the checks that run
before anything heavy is loaded. A truncated `adapter_model.safetensors` is detected here from its header
(8-byte little-endian header length, a JSON header, then the tensor data whose end offset must equal the file
size), so a half-copied adapter is reported before a model is loaded for it.

Loading, generating and merging live in `lora_tui.inference` (heavy).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import run_files, runs
from lora_tui.errors import UserError
from lora_tui.i18n import Phrase, _, pgettext

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
WRONG_ALPHA_KEY = "alpha"
"""The key the guide's example shows; PEFT reads `lora_alpha` and silently ignores `alpha`."""
PEFT_DEFAULT_ALPHA = 8
"""What PEFT uses for `lora_alpha` when the key is missing (LoraConfig's default)."""


@dataclass
class AdapterInfo:
    """One adapter (or a run that should have produced one), as the list shows it."""

    path: str
    """Directory holding (or meant to hold) adapter_config.json and adapter_model.safetensors."""
    run_dir: str
    """The run directory it belongs to (the same as `path` for a run's final adapter)."""
    name: str
    """Short name: the run directory relative to the listed root."""
    state: str
    """Run state from status.json (finished, stopped, failed, oom, running, lost), `partial` when the adapter
    files are missing or damaged where a finished adapter was expected, `saved` for an adapter with no run."""
    has_adapter: bool
    """Both adapter files present and the weights file intact: loadable."""
    base_model: str | None = None
    """`base_model_name_or_path` from adapter_config.json."""
    r: int | None = None
    """LoRA rank."""
    lora_alpha: float | None = None
    """LoRA alpha as PEFT reads it (`lora_alpha`; PEFT's default 8 when only the wrong `alpha` key exists)."""
    target_modules: list[str] = field(default_factory=list)
    """Adapted module names (or ["all-linear"])."""
    use_rslora: bool = False
    """rsLoRA scaling alpha / sqrt(r)."""
    use_dora: bool = False
    """DoRA magnitude vectors present."""
    adapter_bytes: int = 0
    """Size of adapter_model.safetensors in bytes."""
    modified: float | None = None
    """Unix time the adapter weights (else the run directory) were last written."""
    final_loss: float | None = None
    """Last training loss, from training_info.json or the last metrics.jsonl line."""
    checkpoints: int = 0
    """Complete checkpoints in the run (each is a loadable adapter too)."""
    problems: list[str] = field(default_factory=list)
    """What is wrong with it, one line each (wrong alpha key, truncated weights, missing config): `Phrase`s,
    English in JSON and shown in the current language."""

    @property
    def scaling(self) -> float | None:
        """alpha / r (alpha / sqrt(r) with rsLoRA): the factor applied to B @ A."""
        if not self.r or self.lora_alpha is None:
            return None
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (scaling included)."""
        return {**asdict(self), "scaling": self.scaling}


@dataclass
class AdapterDetails:
    """Everything `adapters show` explains about one adapter."""

    info: AdapterInfo
    """The listing row."""
    config: dict[str, Any]
    """adapter_config.json as written."""
    files: list[tuple[str, int]]
    """(relative path, bytes) of every file in the adapter directory (checkpoints summarised)."""
    training: dict[str, Any]
    """Selected entries of training_info.json (empty when there is none)."""
    math: dict[str, Any] | None = None
    """`core.lora_math` result for the base model's inventory (rows, totals), when the base is known."""
    math_note: str | None = None
    """Why the per-layer math is missing, when it is."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "info": self.info.to_dict(),
            "config": self.config,
            "files": [{"path": p, "bytes": b} for p, b in self.files],
            "training": self.training,
            "math": self.math,
            "math_note": self.math_note,
        }


# ---- safetensors header -------------------------------------------------------------------------------


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a safetensors file; UserError when the file is truncated or not safetensors.

    Checks that the data section ends exactly at the end of the file, which catches truncated copies.
    """
    tensors, problem = _safetensors_header(Path(path))
    if problem is not None:
        raise UserError(_(problem))
    return tensors


def _safetensors_header(p: Path) -> tuple[dict[str, Any], str | None]:
    """(tensors of the header, None), or ({}, the problem as a `Phrase`)."""
    damaged = Phrase("{path}: damaged safetensors header: copy or save the adapter again", path=str(p))
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return {}, Phrase("{path}: truncated ({size} bytes): copy or save the adapter again", path=str(p),
                                  size=size)
            length = int.from_bytes(head, "little")
            if length <= 0 or 8 + length > size:
                return {}, Phrase("{path}: truncated or not a safetensors file (header of {length} bytes, file of "
                                  "{size}): copy or save the adapter again", path=str(p), length=length, size=size)
            header = json.loads(fh.read(length).decode("utf-8"))
    except FileNotFoundError:
        return {}, Phrase("{path}: not found", path=str(p))
    except (UnicodeDecodeError, ValueError):
        return {}, damaged
    if not isinstance(header, dict):
        return {}, damaged
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    if 8 + length + end != size:
        return {}, Phrase("{path}: truncated: header says {expected} bytes, the file has {size}; copy or save the "
                          "adapter again", path=str(p), expected=8 + length + end, size=size)
    if not tensors:
        return {}, Phrase("{path}: holds no weights (saved without them); use one of the run's checkpoints or train "
                          "it again", path=str(p))
    return tensors, None


def safetensors_param_stats(paths: list[Path]) -> tuple[int, int]:
    """(total parameters, parameters of the largest 2-D tensor) over the given safetensors files."""
    total = largest = 0
    for path in paths:
        for meta in read_safetensors_header(path).values():
            n = math.prod(int(d) for d in meta.get("shape", []))
            total += n
            if len(meta.get("shape", [])) == 2:
                largest = max(largest, n)
    return total, largest


# ---- reading one adapter --------------------------------------------------------------------------------


def read_adapter_config(path: str | Path) -> dict[str, Any]:
    """adapter_config.json of an adapter directory; UserError naming the file when missing or invalid."""
    data, problem = _adapter_config(Path(path))
    if problem is not None:
        raise UserError(_(problem))
    return data


def _adapter_config(p: Path) -> tuple[dict[str, Any], str | None]:
    """(adapter_config.json, None), or ({}, why it cannot be read as a `Phrase`)."""
    cfg = p / CONFIG_FILE
    if not p.is_dir():
        return {}, Phrase("{path}: no such adapter directory", path=str(p))
    if not cfg.is_file():
        if (p / WEIGHTS_FILE).is_file():
            return {}, Phrase("{path}: no {file} (the weights are there: the save was interrupted or the config was "
                              "not copied); point at a directory saved by save_pretrained", path=str(p),
                              file=CONFIG_FILE)
        latest = runs.latest_complete_checkpoint(p)
        if latest is not None:
            return {}, Phrase("{path}: no {file}; its latest complete checkpoint is {checkpoint}; point at a "
                              "directory saved by save_pretrained", path=str(p), file=CONFIG_FILE,
                              checkpoint=str(latest))
        return {}, Phrase("{path}: no {file}; point at a directory saved by save_pretrained", path=str(p),
                          file=CONFIG_FILE)
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, Phrase("{path}: not valid JSON ({error}); save the adapter again", path=str(cfg), error=str(exc))
    if not isinstance(data, dict):
        return {}, Phrase("{path}: expected a JSON object", path=str(cfg))
    return data, None


def config_problems(config: dict[str, Any]) -> list[str]:
    """Problems PEFT would not tell you about (the guide's `alpha` key is silently ignored)."""
    problems: list[str] = []
    if WRONG_ALPHA_KEY in config and "lora_alpha" not in config:
        problems.append(Phrase("uses the key `alpha` ({alpha}); PEFT reads `lora_alpha` and will use its default "
                               "{default}: rename the key to `lora_alpha`", alpha=config[WRONG_ALPHA_KEY],
                               default=PEFT_DEFAULT_ALPHA))
    elif WRONG_ALPHA_KEY in config:
        problems.append(Phrase("has an extra `alpha` key that PEFT ignores (it reads `lora_alpha`)"))
    if config.get("peft_type", "LORA") not in ("LORA", None):
        problems.append(Phrase("peft_type is {type}, not LORA", type=config.get("peft_type")))
    return problems


def read_adapter(
    path: str | Path, *, run_dir: str | Path | None = None, name: str | None = None
) -> AdapterInfo:
    """The listing row for one adapter directory (never raises for a damaged adapter: see `problems`)."""
    p = Path(path)
    rd = Path(run_dir) if run_dir is not None else p
    info = AdapterInfo(path=str(p), run_dir=str(rd), name=name or p.name, state="saved", has_adapter=False)
    status = runs.read_status(rd)
    if status is not None:
        info.state = status.effective_state()
    info.checkpoints = sum(1 for c in runs.list_checkpoints(rd) if runs.is_complete_checkpoint(c))
    info.final_loss = final_loss(rd)
    info.modified = _mtime(p / WEIGHTS_FILE) or _mtime(rd)
    config, problem = _adapter_config(p)
    if problem is not None:
        info.problems.append(problem)
    _fill_from_config(info, config)
    weights = p / WEIGHTS_FILE
    readable = False
    if weights.is_file():
        info.adapter_bytes = weights.stat().st_size
        _tensors, problem = _safetensors_header(weights)
        readable = problem is None
        if problem is not None:
            info.problems.append(problem)
    elif config:
        info.problems.append(Phrase("{path}: missing; the adapter was never saved or the save was interrupted",
                                    path=str(weights)))
    info.has_adapter = bool(config) and readable
    if not info.has_adapter and info.state in ("finished", "saved"):
        info.state = "partial"
    return info


def _fill_from_config(info: AdapterInfo, config: dict[str, Any]) -> None:
    if not config:
        return
    info.base_model = config.get("base_model_name_or_path")
    r = config.get("r")
    info.r = int(r) if isinstance(r, (int, float)) and not isinstance(r, bool) else None
    if "lora_alpha" in config:
        info.lora_alpha = float(config["lora_alpha"])
    elif "peft_type" in config or WRONG_ALPHA_KEY in config:
        info.lora_alpha = float(PEFT_DEFAULT_ALPHA)
    targets = config.get("target_modules") or []
    info.target_modules = [targets] if isinstance(targets, str) else sorted(str(t) for t in targets)
    info.use_rslora = bool(config.get("use_rslora", False))
    info.use_dora = bool(config.get("use_dora", False))
    info.problems.extend(config_problems(config))


def final_loss(run_dir: str | Path) -> float | None:
    """The run's last training loss: training_info.json's `final_loss` when finite, else the last metrics line
    with a loss (a run killed before writing training_info.json still shows where it got to)."""
    info = run_files.read_training_info(run_dir)
    if info is not None and info.final_loss is not None and math.isfinite(info.final_loss):
        return info.final_loss
    records, _errors = run_files.read_metrics(run_dir)
    return next((r.loss for r in reversed(records) if r.loss is not None), None)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


# ---- discovery ------------------------------------------------------------------------------------------


def adapter_path_of(run_dir: Path) -> Path:
    """Where a run's final adapter is: status.json's `adapter_dir` (relative or absolute), else the run."""
    status = runs.read_status(run_dir)
    if status is not None and status.adapter_dir:
        candidate = Path(status.adapter_dir)
        return candidate if candidate.is_absolute() else run_dir / candidate
    return run_dir


def find_adapters(root: str | Path) -> list[AdapterInfo]:
    """Every run or adapter directory under `root`, newest first.

    Runs without a final adapter are listed too (state failed/oom/partial...), with the count of their
    complete checkpoints, so a person sees why an expected adapter is not there.
    """
    base = Path(root)
    found = []
    for run_dir in runs.iter_run_dirs(base):
        rel = run_dir.relative_to(base).as_posix() if run_dir != base else run_dir.name
        found.append(read_adapter(adapter_path_of(run_dir), run_dir=run_dir, name=rel))
    found.sort(key=lambda a: a.modified or 0.0, reverse=True)
    return found


def run_dir_of(adapter: Path) -> Path:
    """The run an adapter belongs to: itself, its parent, or RUN for RUN/checkpoints/checkpoint-N."""
    if adapter.parent.name == runs.CHECKPOINTS_DIR:
        return adapter.parent.parent
    for candidate in (adapter, adapter.parent):
        if (candidate / runs.STATUS_FILE).is_file() or (candidate / runs.INFO_FILE).is_file():
            return candidate
    return adapter


def merge_note(adapter: str | Path) -> str | None:
    """What the adapter's run says about merging it now: UserError while the run still trains (its adapter is
    stale, its checkpoints may be rotated away); for a run that did not finish, one line saying which step the
    adapter is from; None for a finished run or an adapter without a run."""
    p = Path(adapter)
    run_dir = run_dir_of(p)
    status = runs.read_status(run_dir)
    if status is None:
        return None
    state = status.effective_state()
    if state in runs.LIVE_STATES:
        message = _("{adapter}: its run is still {state} (step {step} of {total}); wait for it to end, or stop it "
                    "first (`lora-tui runs stop {run}`)") if status.max_steps else \
            _("{adapter}: its run is still {state} (step {step}); wait for it to end, or stop it first "
              "(`lora-tui runs stop {run}`)")
        raise UserError(message.format(adapter=adapter, state=pgettext("run state", state), step=status.step,
                                       total=status.max_steps, run=run_dir))
    if state == "finished":
        return None
    step = runs.checkpoint_step(p) if p.parent.name == runs.CHECKPOINTS_DIR else status.adapter_step
    if step is None:
        info = run_files.read_training_info(run_dir)
        step = info.steps if info is not None and info.steps else status.step
    words = Phrase.of("run state", state)
    if status.max_steps:
        return Phrase("the run {run} is {state}: this adapter is from step {step} of {total}", run=str(run_dir),
                      state=words, step=step, total=status.max_steps)
    return Phrase("the run {run} is {state}: this adapter is from step {step}", run=str(run_dir), state=words,
                  step=step)


def _files_of(path: Path) -> list[tuple[str, int]]:
    files = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):  # the run's lock file, temporary files of atomic writes, the trash
            continue
        if child.is_file():
            files.append((child.name, child.stat().st_size))
        elif child.is_dir():
            size = sum(f.stat().st_size for f in child.rglob("*") if f.is_file())
            files.append((child.name + "/", size))
    return files


_TRAINING_KEYS = ("settings", "data", "hardware", "versions", "timings", "steps", "tokens_seen", "precision",
                  "first_loss", "final_loss", "best_loss", "final_eval_loss", "best_eval_loss", "memory",
                  "base_model_path", "world_size", "resumed_from")
"""The `run_files.TrainingInfo` fields that `adapters show` reports (those the file records)."""


def describe_adapter(path: str | Path) -> AdapterDetails:
    """`adapters show`: config, files, training info, and per-layer math when the base model's shape is known.

    Raises UserError when the directory has no readable adapter_config.json.
    """
    p = Path(path)
    if runs.is_adapter_dir(p) is False and (p / runs.STATUS_FILE).is_file():
        p = adapter_path_of(p)
    config = read_adapter_config(p)
    info = read_adapter(p, run_dir=run_dir_of(p))
    recorded = run_files.read_training_info(info.run_dir)
    everything = recorded.to_dict() if recorded is not None else {}
    training = {k: everything[k] for k in _TRAINING_KEYS if everything.get(k) is not None}
    details = AdapterDetails(info=info, config=config, files=_files_of(p), training=training)
    details.math, details.math_note = _lora_math(info)
    return details


def _lora_math(info: AdapterInfo) -> tuple[dict[str, Any] | None, str | None]:
    """Per-layer parameter math from core.lora_math, or (None, why not)."""
    if not info.base_model or not info.r or info.lora_alpha is None:
        return None, Phrase("the adapter config does not name a base model and rank")
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models.modules import load_inventory

    try:
        inventory = load_inventory(info.base_model)
        result = compute_lora_math(inventory, r=info.r, lora_alpha=info.lora_alpha,
                                   target_modules=info.target_modules, use_dora=info.use_dora,
                                   use_rslora=info.use_rslora)
    except UserError as exc:
        return None, Phrase("base model shape unknown: {error}", error=str(exc))
    return result.to_dict(), None
