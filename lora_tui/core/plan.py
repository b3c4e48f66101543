"""TrainingPlan: every setting of one run, validated in one place, serialisable to a run file.

A run file is TOML with one `[plan]` table holding the fields below, and an optional `[sources]` table that
says where each value came from (`given`, `config`, `recommended`, `default`). The TUI writes run files and
`lora-tui train --config FILE` reads them; the train process records the resolved plan as `run.toml`.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from lora_tui.core.plan_values import _KIND_WORDS, _is_int, _is_num, _parse_bool, _shown, _toml_value, fmt_value
from lora_tui.core.sources import ADVICE
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
"""Allowed values of `precision`: auto picks bf16 where the device supports it, else fp16 on CUDA (fp32 for model
families that overflow in fp16, such as Gemma 2 and 3) or fp32; `core.precision.choose_precision` decides."""

KEEP = ("best", "last")
"""Allowed values of `keep`: the checkpoint with the lowest eval loss, or the last one."""

REPORT_TO = ("none", "tensorboard", "wandb", "mlflow", "trackio")
"""Allowed values of `report_to`: the Trainer's own tracker integrations (`core.trackers` names each one's package)."""

BATCHING = ("grouped", "random", "padding-free", "packed")
"""Allowed values of `batching`: how examples become batches. grouped: examples of similar length share a batch
(padded to its longest); random: any examples share a batch (padded to its longest); padding-free: a batch's
examples are laid end to end with no padding; packed: examples are packed best-fit into sequences of
max_seq_length, fewer and fuller batches. Each example of a row attends to itself only (`train.trainer.FLAT`)."""

PLACES = (N_("run file"), N_("settings"), N_("plan"), N_("memory fit"), N_("oom retry"))
"""Where a plan is built from, as `TrainingPlan.from_dict`'s callers name it in its errors (shown translated)."""

SOURCES = ("given", "config", "recommended", "default")
"""Where a setting's value came from: a flag, a run file, the advisor, or TrainingPlan's default."""


@dataclass
class TrainingPlan:
    """Every setting of a LoRA training run."""

    model: str = "demo"
    """Base model: `demo`, a preset name, a local directory with config.json, or a hub id."""
    data: str | None = None
    """Training data file or directory; the built-in sample dataset when not set."""
    columns: str | None = None
    """Which data fields to train on when the schema is not detected: prompt=FIELD,response=FIELD[,system=FIELD],
    messages=FIELD or text=FIELD (see `lora-tui inspect`)."""
    output: str = "runs/lora-run"
    """Run directory: adapter, checkpoints, metrics and logs are written here (when not given: the first free
    RUNS_ROOT/MODEL, MODEL-2, ...; RUNS_ROOT is $LORA_TUI_RUNS or ./runs)."""
    task: str | None = None
    """The guide's task preset this plan started from (chat, domain, code, style), if any."""
    advice: str = "guide"
    """Which advice fills the settings not given: guide (the guide's tables, exactly) or practice (current LoRA
    practice: about 2e-4, all linear projections, 1-3 epochs; r, alpha and dropout as the guide)."""
    lora_r: int = 16
    """LoRA rank r: the inner dimension of the low-rank update B @ A."""
    lora_alpha: float = 32
    """LoRA alpha: the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA)."""
    lora_dropout: float = 0.05
    """Dropout probability applied to the LoRA branch's input, in [0, 1)."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Module names to adapt (suffix match, as PEFT does), or ["all-linear"]."""
    learning_rate: float = 5e-5
    """Peak learning rate of AdamW."""
    num_train_epochs: float = 3.0
    """Passes over the training data (ignored when max_steps > 0)."""
    per_device_train_batch_size: int = 2
    """Examples per device per forward pass."""
    gradient_accumulation_steps: int = 8
    """Forward/backward passes summed before each optimizer step."""
    warmup_ratio: float = 0.1
    """Fraction of the optimizer steps spent ramping the learning rate up from 0, in [0, 1)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    max_seq_length: int = 1024
    """Tokens per example after truncation."""
    max_steps: int = -1
    """Stop after this many optimizer steps; -1 trains for num_train_epochs."""
    seed: int = 42
    """Random seed for initialisation, shuffling and dropout."""
    eval_split: float = 0.0
    """Fraction of the examples held out for evaluation, in [0, 0.5]; 0 disables evaluation."""
    keep: str = "best"
    """Which checkpoint the run's final adapter is, with an evaluation split: best (lowest eval loss) or last."""
    early_stopping: int = 0
    """Stop after this many evaluations without a lower eval loss (needs an evaluation split); 0 never stops early."""
    use_rslora: bool = False
    """Rank-stabilised LoRA: scale by alpha / sqrt(r) instead of alpha / r."""
    use_dora: bool = False
    """DoRA: adds a learned magnitude vector (out_features values) per adapted module."""
    gradient_checkpointing: bool = True
    """Recompute activations in backward instead of storing them: less memory, about 30% more time."""
    precision: str = "auto"
    """Compute precision: auto, bf16, fp16 or fp32."""
    load_in_4bit: bool = False
    """QLoRA: load the base model's linear layers in 4-bit NF4 (bitsandbytes, double quantization), about a quarter
    of the 16-bit weights' memory; adapters train in the compute precision, and a merge goes into the 16-bit base."""
    logging_steps: int = 1
    """Write a metrics line every this many optimizer steps."""
    report_to: str = "none"
    """Also log to a tracker through the Trainer's own integration: none, tensorboard, wandb, mlflow or trackio."""
    save_steps: int = 50
    """Save a checkpoint every this many optimizer steps (and always at the end or on stop)."""
    save_total_limit: int = 3
    """Keep at most this many checkpoints (older ones are deleted once a newer one is complete)."""
    num_processes: int = 1
    """Training processes on each machine (one per GPU; CPU runs use gloo)."""
    nnodes: int = 1
    """Machines taking part in the run; each one runs the same `lora-tui train` with its own --node-rank."""
    node_rank: int = 0
    """This machine's index, 0 to nnodes - 1; node 0 writes the run directory, the others only their log."""
    master_addr: str | None = None
    """Address of node 0 that every machine can reach (torchrun's rendezvous); needed with --nnodes above 1."""
    master_port: int = 29500
    """Port on node 0 for the rendezvous (free on node 0, open to the other machines)."""
    distributed: str = "ddp"
    """ddp: every GPU holds the whole base model; fsdp: the base's weights are sharded across the GPUs (FSDP2),
    for a base that does not fit one GPU."""
    batching: str = "grouped"
    """How examples become batches: grouped (by length, less padding), random, padding-free or packed (no padding)."""

    def __post_init__(self) -> None:
        self.target_modules = _normalise_targets(self.target_modules)
        self.validate()

    # ---- validation -------------------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise UserError naming the first invalid field (flag names are the field's `--kebab-case`), in the
        language shown."""
        _check(isinstance(self.model, str) and self.model.strip() != "", "model", N_("{setting} must not be empty"))
        for name in ("data", "columns", "task", "master_addr"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, str) and value.strip() != ""), name,
                   N_("{setting} must not be empty (leave it out instead)"))
        if self.columns is not None:
            from lora_tui.core.dataset.mapping import parse_columns

            parse_columns(self.columns)  # UserError naming what is wrong and how a mapping is written
        _check(isinstance(self.output, str) and self.output.strip() != "", "output", N_("{setting} must not be empty"))
        for name, high in _INT_BOUNDS.items():
            value = getattr(self, name)
            _check(_is_int(value) and 0 < value <= high, name,
                   N_("{setting} must be a positive integer, got {value} (at most {high} is accepted)"), value,
                   high=f"{high:,}")
        for name, (low, top, low_open) in _NUMBER_BOUNDS.items():
            number = getattr(self, name)
            ok = _is_num(number) and (number > low if low_open else number >= low) and number <= top
            _check(ok, name, N_("{setting} must be > {low}, got {value} (at most {high} is accepted)") if low_open
                   else N_("{setting} must be >= {low}, got {value} (at most {high} is accepted)"), number,
                   low=fmt_value(low), high=f"{top:,g}")
        for name in ("lora_dropout", "warmup_ratio"):
            value = getattr(self, name)
            _check(_is_num(value) and 0 <= value < 1, name, N_("{setting} must be in [0, 1), got {value}"), value)
        _check(_is_int(self.max_steps) and (self.max_steps == -1 or 0 < self.max_steps <= MAX_STEPS), "max_steps",
               N_("{setting} must be a positive integer or -1, got {value} (at most {high})"), self.max_steps,
               high=f"{MAX_STEPS:,}")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**32, "seed",
               N_("{setting} must be a non-negative integer below 2**32, got {value}"), self.seed)
        _check(_is_num(self.eval_split) and 0 <= self.eval_split <= 0.5, "eval_split",
               N_("{setting} must be in [0, 0.5], got {value}"), self.eval_split)
        for name, choices in (("precision", PRECISIONS), ("advice", ADVICE), ("report_to", REPORT_TO),
                              ("batching", BATCHING), ("keep", KEEP)):
            value = getattr(self, name)
            _check(value in choices, name, N_("{setting} must be one of {choices}, got {value}"), value,
                   choices=", ".join(choices))
        for name in _bool_fields():  # a TOML table or string here would pass every check below and break run.toml
            value = getattr(self, name)
            _check(isinstance(value, bool), name, N_("{setting} must be true or false, got {value}"), value)
        _check(_is_int(self.early_stopping) and 0 <= self.early_stopping <= 1000, "early_stopping",
               N_("{setting} must be a whole number from 0 (off) to 1000 evaluations, got {value}"),
               self.early_stopping)
        _check(self.early_stopping == 0 or self.eval_split > 0, "early_stopping",
               N_("{setting} needs an evaluation split to watch (--eval-split > 0)"))
        _check(not (self.load_in_4bit and self.use_dora), "load_in_4bit",
               N_("{setting} cannot be combined with DoRA (--use-dora): lora-tui trains DoRA on 16-bit weights "
                  "only; turn one of them off"))
        _check(len(self.target_modules) > 0, "target_modules", N_("{setting} must name at least one module"))
        from lora_tui.core.distributed import problems

        for name, message in problems(self)[:1]:
            _check(False, name, N_("{setting} {problem}"), problem=message)

    # ---- derived values ---------------------------------------------------------------------------------

    @property
    def scaling(self) -> float:
        """The factor applied to the LoRA update: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.lora_alpha / (math.sqrt(self.lora_r) if self.use_rslora else self.lora_r)

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimizer step: batch x accumulation x processes x machines."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * self.world_size

    @property
    def world_size(self) -> int:
        """Training processes of the whole run: machines x processes per machine."""
        return self.num_processes * self.nnodes

    # ---- serialisation ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON/TOML friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def field_kind(cls, name: str) -> str:
        """The value kind of a field: str, int, float, bool or list (a list of module names)."""
        for f in dataclasses.fields(cls):
            if f.name == name:
                kind = str(f.type).split("|")[0].strip()
                return "list" if kind.startswith("list") else kind
        raise KeyError(name)

    @classmethod
    def parse_field(cls, name: str, text: str) -> Any:
        """The typed value of a field from what a person typed; raises UserError naming the field and flag.

        Booleans take yes/no, on/off, true/false or 1/0; lists take comma- or space-separated names; an empty
        text is None for a field that may be unset (data, task).
        """
        kind, text = cls.field_kind(name), text.strip()
        try:
            if kind == "list":
                return parse_target_modules(text)
            if kind == "bool":
                return _parse_bool(text)
            if kind == "int":
                return int(text)
            if kind == "float":
                value = float(text)
                return int(value) if value.is_integer() and abs(value) < 2**53 and "." not in text else value
        except ValueError:
            raise UserError(_("{setting}: {text} is not {kind}").format(setting=setting_label(name), text=repr(text),
                                                                          kind=_(_KIND_WORDS[kind]))) from None
        return text or (None if getattr(cls, name, "") is None else text)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of every setting, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "run file") -> TrainingPlan:
        """Build from a mapping; unknown keys are refused with their name and `where` (a path, shown as it is, or
        one of `PLACES`, shown in the language shown)."""
        place = _(where) if where in PLACES else where
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(_("{where}: unknown setting(s) {names}; known: {known}").format(
                where=place, names=", ".join(unknown), known=", ".join(sorted(known))))
        try:
            return cls(**dict(data))
        except (UserError, TypeError) as exc:
            raise UserError(_("{where}: {error}").format(where=place, error=exc)) from None

    def to_toml(self, sources: Mapping[str, str] | None = None) -> str:
        """The run file text: a `[plan]` table and, when given, a `[sources]` table."""
        lines = ["# lora-tui run file: `lora-tui train --config THIS_FILE` runs it.", "[plan]"]
        for key, value in self.to_dict().items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        if sources:
            lines += ["", "[sources]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in sources.items()]
        return "\n".join(lines) + "\n"

    def to_cli_args(self, *, defaults: TrainingPlan | None = None, keep: tuple[str, ...] = ()) -> list[str]:
        """`lora-tui train` arguments reproducing this plan (fields equal to `defaults` are left out, except
        those in `keep`)."""
        base = defaults.to_dict() if defaults is not None else {}
        args: list[str] = ["lora-tui", "train"]
        for key, value in self.to_dict().items():
            if key in base and base[key] == value and key not in keep or value is None:
                continue
            flag = "--" + _FLAG_NAMES.get(key, key.replace("_", "-"))
            if isinstance(value, bool):
                if key in NEGATABLE:
                    args.append(flag if value else "--no-" + flag.removeprefix("--"))
                elif value:
                    args.append(flag)
            elif isinstance(value, list):
                args += [flag, ",".join(value)]
            else:
                args += [flag, fmt_value(value)]
        return args

    def command_line(self, *, defaults: TrainingPlan | None = None, keep: tuple[str, ...] = ()) -> str:
        """The shell command line equivalent to this plan (see `to_cli_args`)."""
        return shlex.join(self.to_cli_args(defaults=defaults, keep=keep))


MAX_STEPS = 10**9
"""Largest `max_steps` (and save/logging interval) accepted: far beyond any real run, small enough for every
library that stores steps in a 64-bit integer."""

_NUMBER_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "lora_alpha": (0, 1e6, True),
    "learning_rate": (0, 1.0, True),
    "num_train_epochs": (0, 10_000, True),
    "weight_decay": (0, 10.0, False),
}
"""Finite numbers: field -> (low, high, low excluded)."""

_INT_BOUNDS = {
    "lora_r": 65_536,
    "per_device_train_batch_size": 65_536,
    "gradient_accumulation_steps": 65_536,
    "max_seq_length": 1 << 20,
    "logging_steps": MAX_STEPS,
    "save_steps": MAX_STEPS,
    "save_total_limit": 1_000_000,
    "num_processes": 4096,
    "nnodes": 4096,
    "master_port": 65_535,
}
"""Positive whole numbers: field -> the largest accepted (a typo such as r = 10**20 is refused, not run)."""

NEGATABLE = ("gradient_checkpointing", "load_in_4bit")
"""Boolean fields whose flag has a `--no-` form, since the advisor may turn them on (`cli/flags.py`)."""

_FLAG_NAMES = {
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch-size",
}
"""Fields whose `lora-tui train` flag is not simply the field name in kebab case (the guide's flag names)."""


def held_out(examples: int, split: float) -> int:
    """Examples an evaluation split holds out of `examples`: ceil(examples x split), as the training process's
    `datasets.train_test_split` takes them (none below 4 examples, where it keeps them all for training)."""
    return math.ceil(examples * split) if split > 0 and examples >= 4 else 0


def split_for(examples: int, held: int) -> float:
    """The shortest split fraction (at most 8 decimals) that holds out exactly `held` of `examples`."""
    for digits in range(2, 9):
        scale = 10 ** digits
        share = math.floor(held / examples * scale) / scale
        if share > 0 and held_out(examples, share) == held:
            return share
    return held / examples


def flag_for(field_name: str) -> str:
    """The `lora-tui train` flag for a plan field, e.g. `num_train_epochs` -> `--epochs`."""
    return "--" + _FLAG_NAMES.get(field_name, field_name.replace("_", "-"))


def load_run_file(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a run file: (plan settings, sources). Raises UserError with the path on any problem."""
    from lora_tui.core.textfiles import read_regular_text

    p = Path(path)
    text = read_regular_text(p, str(p), N_("run file"))  # a FIFO or a device is refused, not read forever
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(_("{path}: not valid TOML ({error})").format(path=p, error=exc)) from None
    settings = doc.get("plan", doc)
    if not isinstance(settings, dict):
        raise UserError(_("{path}: [{table}] must be a table").format(path=p, table="plan"))
    sources = doc.get("sources", {})
    return dict(settings), {str(k): str(v) for k, v in sources.items()} if isinstance(sources, dict) else {}


def read_run_plan(path: str | Path) -> TrainingPlan | None:
    """The plan a run file holds, or None when it is missing, unreadable or not a valid plan (what the monitor,
    `runs show` and `runs diagnose` read of a run)."""
    try:
        return TrainingPlan.from_dict(load_run_file(path)[0])
    except UserError:
        return None


def parse_target_modules(text: str) -> list[str]:
    """Parse `--target-modules`: comma- or space-separated names, or `all-linear`."""
    names = [t for t in text.replace(",", " ").split() if t]
    return _normalise_targets(names)


def _normalise_targets(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [t for t in value.replace(",", " ").split() if t]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UserError(_("`target_modules` must be a list of module names or 'all-linear'"))
    names: list[str] = []
    for name in value:
        if name not in names:
            names.append(name)
    if "all-linear" in names and len(names) > 1:
        raise UserError(_("`target_modules`: 'all-linear' cannot be combined with other names"))
    return names


def setting_label(field_name: str) -> str:
    """How an error names a setting: "`lora_r` (--lora-r)" (`ui.field_errors` shows only the field in the TUI)."""
    return _("`{field}` ({flag})").format(field=field_name, flag=flag_for(field_name))


@cache
def _bool_fields() -> tuple[str, ...]:
    return tuple(name for name in TrainingPlan.field_names() if TrainingPlan.field_kind(name) == "bool")


def _check(ok: bool, name: str, message: str, got: Any = None, **values: Any) -> None:
    """UserError with `message` (a catalogue template with `{setting}` and `{value}`, `got` shown) unless `ok`."""
    if not ok:
        raise UserError(_(message).format(setting=setting_label(name), value=_shown(got), **values))
