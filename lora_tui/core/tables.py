"""The guide's tables (lora_tui/presets/guide.toml), loaded once and validated.

Every value the advisor recommends is traceable to a row here; `Row.cite()` gives the words a reason uses,
e.g. "the guide's data-size table, row '< 1K examples'". The tables hold the English text (the catalogue's msgids,
since the tables are loaded once); what a person reads is translated when it is shown (`row_label`, `cite`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from lora_tui.core.paths import PRESETS_DIR
from lora_tui.core.plan import TrainingPlan, fmt_value
from lora_tui.core.sources import TOML_KINDS, Citation
from lora_tui.i18n import _, pgettext

GUIDE_FILE = PRESETS_DIR / "guide.toml"
"""The data file holding the guide's tables."""
PRACTICE_FILE = PRESETS_DIR / "practice.toml"
"""Current LoRA practice beyond the guide (remedies, the `practice` advice style, the guide's errata), always
shown as such."""

GB = 1_000_000_000
"""Bytes in a gigabyte as the resource table counts them (decimal, as GPU vendors label cards)."""


@dataclass(frozen=True)
class Row:
    """One row of one of the guide's tables."""

    table: str
    """Which table: `defaults`, `task`, `data-size` or `resource`."""
    key: str
    """Row key, e.g. `chat`, `small`, `standard`."""
    label: str
    """How the guide labels the row, e.g. `< 1K examples`."""
    why: str
    """The row's rationale, in lora-tui's words."""
    settings: dict[str, Any] = field(default_factory=dict, hash=False)
    """The settings the row fixes, keyed by TrainingPlan field name."""

    def cite(self) -> str:
        """Short citation used in reasons: `the guide's <table> table, row '<label>'`."""
        return _("the guide's {table} table, row '{label}'").format(table=pgettext("guide table", self.table),
                                                                    label=_(self.label))


@dataclass(frozen=True)
class Task(Row):
    """A task preset: a Row plus what it is for and its target-module pattern."""

    what: str = ""
    """What kind of fine-tune the task is for."""
    pattern: str = "standard"
    """Key of the target-module pattern the task uses."""
    pattern_cite: Citation | None = None
    """Where the task's pattern comes from (the guide's task presets name no modules)."""


@dataclass(frozen=True)
class Band(Row):
    """A row that holds a numeric range: data-size tiers (examples) and resource tiers (GB of VRAM)."""

    low: float = 0
    """Inclusive lower bound."""
    high: float | None = None
    """Exclusive upper bound; None means unbounded."""

    def contains(self, value: float) -> bool:
        """Whether `value` falls in [low, high)."""
        return value >= self.low and (self.high is None or value < self.high)


@dataclass(frozen=True)
class Example:
    """One of the guide's worked examples: the settings its command line passes."""

    key: str
    """example1, example2, ..."""
    section: str
    """The guide's section holding it."""
    task: str | None
    """The task preset it illustrates, if any."""
    settings: dict[str, Any] = field(default_factory=dict, hash=False)
    """The settings its command line passes, keyed by TrainingPlan field name."""

    def cite(self) -> str:
        """Citation used in reasons: `the guide's worked example (<section>)`."""
        return _("the guide's worked example ({section})").format(section=_(self.section))


@dataclass(frozen=True)
class Pattern:
    """A target-module pattern."""

    key: str
    """minimal, standard or maximum."""
    title: str
    """Display name."""
    modules: tuple[str, ...]
    """Module names it targets."""
    why: str
    """What it trades."""


@dataclass(frozen=True)
class AlphaStyle:
    """An alpha/r style."""

    key: str
    """conservative, standard or aggressive."""
    ratio: float
    """alpha / r."""
    why: str
    """What the scaling does."""


@dataclass(frozen=True)
class RemedyRule:
    """One troubleshooting remedy: change one setting by a factor or to a value."""

    setting: str
    """TrainingPlan field it changes."""
    factor: float | None
    """Multiply the current value by this, when set."""
    value: Any
    """Or replace it with this."""
    example: str
    """The guide's own before -> after."""
    why: str
    """Why it helps."""


@dataclass(frozen=True)
class Trouble:
    """A troubleshooting entry: a symptom and its remedies in the guide's order."""

    key: str
    """loss_not_falling, overfitting, oom or slow_convergence."""
    title: str
    """Display name."""
    symptom: str
    """What it looks like."""
    remedies: tuple[RemedyRule, ...]
    """Remedies, first to try first."""


@dataclass(frozen=True)
class Guide:
    """All of the guide's tables."""

    defaults: Row
    """The training script's defaults."""
    tasks: dict[str, Task]
    """Task presets by key."""
    data_sizes: tuple[Band, ...]
    """Data-size tiers, smallest first."""
    resources: tuple[Band, ...]
    """Resource tiers, smallest first."""
    patterns: dict[str, Pattern]
    """Target-module patterns by key."""
    alpha_styles: tuple[AlphaStyle, ...]
    """alpha/r styles, lowest ratio first."""
    troubles: dict[str, Trouble]
    """Troubleshooting entries by key."""
    default_cites: dict[str, Citation]
    """Where each starting value (`defaults`) comes from: the script, a remedy, or lora-tui's own default."""
    examples: tuple[Example, ...]
    """The worked examples, in the guide's order."""

    def example_for(self, task: str | None) -> Example | None:
        """The worked example illustrating a task preset, if the guide has one."""
        return next((e for e in self.examples if task is not None and e.task == task), None)

    def data_size_row(self, examples: int) -> Band:
        """The data-size tier holding `examples`."""
        return next(b for b in self.data_sizes if b.contains(examples))

    def resource_row(self, vram_bytes: int) -> Band:
        """The resource tier for `vram_bytes` of usable VRAM."""
        return next(b for b in self.resources if b.contains(vram_bytes / GB))

    def alpha_style(self, key: str) -> AlphaStyle:
        """The alpha/r style with this key (UserError-free: raises KeyError for code errors)."""
        for style in self.alpha_styles:
            if style.key == key:
                return style
        raise KeyError(key)


_PLAN_FIELDS = set(TrainingPlan.field_names())


def _settings(data: dict[str, Any], where: str) -> dict[str, Any]:
    settings = dict(data.get("settings", {}))
    unknown = set(settings) - _PLAN_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {sorted(unknown)}")
    return settings


def _bands(rows: list[dict[str, Any]], table: str, lo: str, hi: str) -> tuple[Band, ...]:
    bands = []
    for r in rows:
        high = r[hi]
        bands.append(Band(table=table, key=r["key"], label=r["label"], why=r["why"],
                          settings=_settings(r, f"{table}:{r['key']}"), low=r[lo],
                          high=None if high == -1 else high))
    for a, b in zip(bands, bands[1:], strict=False):
        if a.high != b.low:
            raise ValueError(f"{table} table: rows '{a.key}' and '{b.key}' leave a gap or overlap")
    if bands[0].low != 0 or bands[-1].high is not None:
        raise ValueError(f"{table} table must cover every value from 0 up")
    return tuple(bands)


def parse_guide(doc: dict[str, Any]) -> Guide:
    """Validate and convert the parsed TOML document (ValueError naming the table on any problem)."""
    d = doc["defaults"]
    defaults = Row("defaults", "defaults", d["title"], d["why"], _settings(d, "defaults"))
    TrainingPlan(**defaults.settings)  # the defaults must form a valid plan
    cites = {k: _citation(c, f"defaults.cite.{k}") for k, c in d.get("cite", {}).items()}
    if set(cites) != set(defaults.settings):
        raise ValueError(f"defaults.cite must cite every starting value: {sorted(set(defaults.settings) ^ set(cites))}")
    tasks = {
        key: Task("task", key, t["title"], t["why"], _settings(t, f"tasks.{key}"), what=t["what"],
                  pattern=t["pattern"], pattern_cite=_citation({"kind": t["pattern_source"], "where": t["pattern_why"]},
                                                               f"tasks.{key}"))
        for key, t in doc["tasks"].items()
    }
    examples = tuple(Example(e["key"], e["section"], e.get("task"), _settings(e, f"worked_examples.{e['key']}"))
                     for e in doc.get("worked_examples", []))
    patterns = {k: Pattern(k, p["title"], tuple(p["modules"]), p["why"]) for k, p in doc["patterns"].items()}
    for task in tasks.values():
        if task.pattern not in patterns:
            raise ValueError(f"tasks.{task.key}: unknown pattern {task.pattern!r}")
    styles = tuple(sorted((AlphaStyle(s["key"], float(s["ratio"]), s["why"]) for s in doc["alpha_styles"]),
                          key=lambda s: s.ratio))
    troubles = {t["key"]: Trouble(t["key"], t["title"], t["symptom"], _rules(t, "troubleshooting"))
                for t in doc["troubleshooting"]}
    return Guide(
        defaults=defaults,
        tasks=tasks,
        data_sizes=_bands(doc["data_sizes"], "data-size", "min_examples", "max_examples"),
        resources=_bands(doc["resources"], "resource", "min_gb", "max_gb"),
        patterns=patterns,
        alpha_styles=styles,
        troubles=troubles,
        default_cites=cites,
        examples=examples,
    )


def _citation(entry: dict[str, Any], where: str) -> Citation:
    """A `{kind, where}` table as a Citation (ValueError naming the entry for an unknown kind)."""
    if entry.get("kind") not in TOML_KINDS or not entry.get("where"):
        raise ValueError(f"{where}: a citation needs a kind ({', '.join(TOML_KINDS)}) and a where")
    return Citation(TOML_KINDS[entry["kind"]], str(entry["where"]))


def _rules(entry: dict[str, Any], table: str) -> tuple[RemedyRule, ...]:
    """An entry's remedies as rules (ValueError naming the entry for a bad one)."""
    rules = []
    for r in entry["remedies"]:
        if r["setting"] not in _PLAN_FIELDS or ("factor" in r) == ("set" in r):
            raise ValueError(f"{table}.{entry['key']}: bad remedy {r}")
        rules.append(RemedyRule(r["setting"], r.get("factor"), r.get("set"), r["example"], r["why"]))
    return tuple(rules)


@dataclass(frozen=True)
class PracticeStyle:
    """The `practice` advice style: current LoRA practice for the learning rate, targets and epochs."""

    sources: str
    """Who practises it, as a reason names them."""
    learning_rate: float
    """The rate at `reference_r`."""
    reference_r: int
    """The r at which `learning_rate` applies (scaled by sqrt(reference_r / r))."""
    large_data_factor: float
    """Multiplies the rate above 10K examples."""
    min_learning_rate: float
    """The rate is kept at or above this."""
    max_learning_rate: float
    """... and at or below this."""
    lr_why: str
    """How the rate is scaled, in words."""
    pattern: str
    """The target-module pattern (all linear projections)."""
    pattern_why: str
    """Why, with the evidence."""
    epochs: dict[str, float]
    """Epochs by data-size tier key, and `unknown`."""
    epochs_why: str
    """Why 1-3 epochs."""


@dataclass(frozen=True)
class Erratum:
    """One point where the guide is wrong or out of date, with its evidence."""

    setting: str
    """The TrainingPlan field it is about."""
    title: str
    """The point, briefly."""
    guide: str
    """What the guide says."""
    truth: str
    """What is true instead, and the evidence."""


@dataclass(frozen=True)
class Practice:
    """Current practice beyond the guide (presets/practice.toml)."""

    troubles: dict[str, Trouble]
    """Symptoms the guide does not list, with their remedies."""
    first: dict[str, tuple[RemedyRule, ...]]
    """Remedies offered before the guide's own, by the guide's symptom key."""
    style: PracticeStyle
    """The `practice` advice style."""
    errata: tuple[Erratum, ...]
    """Where the guide is wrong or out of date."""


@lru_cache(maxsize=1)
def practice(path: Path = PRACTICE_FILE) -> Practice:
    """The beyond-the-guide remedies, loaded once (their symptom keys must not clash with the guide's)."""
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    troubles = {t["key"]: Trouble(t["key"], t["title"], t["symptom"], _rules(t, "troubleshooting"))
                for t in doc.get("troubleshooting", [])}
    clash = set(troubles) & set(guide().troubles)
    first = {e["key"]: _rules(e, "first_remedies") for e in doc.get("first_remedies", [])}
    unknown = set(first) - set(guide().troubles)
    if clash or unknown:
        raise ValueError(f"{path.name}: symptom keys {sorted(clash | unknown)} clash with or are missing "
                         "from the guide's")
    s = doc["advice_practice"]
    style = PracticeStyle(s["sources"], float(s["learning_rate"]), int(s["reference_r"]),
                          float(s["large_data_factor"]), float(s["min_learning_rate"]), float(s["max_learning_rate"]),
                          s["lr_why"], s["pattern"], s["pattern_why"],
                          {k: float(v) for k, v in s["epochs"].items()}, s["epochs_why"])
    if style.pattern not in guide().patterns or set(style.epochs) != {*(b.key for b in guide().data_sizes), "unknown"}:
        raise ValueError(f"{path.name}: [advice_practice] needs a guide pattern and epochs for every data-size tier")
    errata = tuple(Erratum(e["setting"], e["title"], e["guide"], e["truth"]) for e in doc.get("guide_errata", []))
    bad = [e.setting for e in errata if e.setting not in _PLAN_FIELDS]
    if bad:
        raise ValueError(f"{path.name}: guide_errata name unknown settings {bad}")
    return Practice(troubles=troubles, first=first, style=style, errata=errata)


@lru_cache(maxsize=1)
def guide(path: Path = GUIDE_FILE) -> Guide:
    """The guide's tables, loaded once."""
    with open(path, "rb") as fh:
        return parse_guide(tomllib.load(fh))


def row_label(row: Row) -> str:
    """How the guide labels a row, in the current language (the guide's own Japanese terms)."""
    return _(row.label)


def tier_name(key: str) -> str:
    """A resource tier's key (low / standard / high) as a person reads it: the key itself in English."""
    return pgettext("resource tier", key)


def style_name(key: str) -> str:
    """An alpha/r style's key (conservative / standard / aggressive) as a person reads it."""
    return pgettext("alpha style", key)


def pattern_name(key: str) -> str:
    """A target-module pattern's key (minimal / standard / maximum) as a reason names it: the key in English."""
    return pgettext("pattern", key)


def cited(citation: Citation) -> Citation:
    """A citation from the preset files (English, loaded once) in the current language."""
    return Citation(citation.kind, _(citation.where))


def size_tier(examples: int) -> str:
    """The data-size tier key (small / medium / large) for a number of examples."""
    return guide().data_size_row(examples).key


def resource_tier(vram_bytes: int | None) -> str | None:
    """The resource tier key (low / standard / high) for usable VRAM in bytes; None without a GPU."""
    return None if vram_bytes is None else guide().resource_row(vram_bytes).key


def scaling_label(scaling: float) -> str:
    """The guide's alpha/r style for a scaling factor: its key when exact, else where it falls between them."""
    styles = guide().alpha_styles
    for style in styles:
        if abs(style.ratio - scaling) < 1e-9:
            return style_name(style.key)
    if scaling < styles[0].ratio:
        return _("below {style}").format(style=style_name(styles[0].key))
    if scaling > styles[-1].ratio:
        return _("beyond {style}").format(style=style_name(styles[-1].key))
    lower = max((s for s in styles if s.ratio < scaling), key=lambda s: s.ratio)
    upper = min((s for s in styles if s.ratio > scaling), key=lambda s: s.ratio)
    return _("between {lower} and {upper}").format(lower=style_name(lower.key), upper=style_name(upper.key))


def describe_size_tier(key: str) -> str:
    """What a data-size tier means: its label, the guide's settings for it and why."""
    row = next(b for b in guide().data_sizes if b.key == key)
    st = row.settings
    return _("{label}: the guide's row uses r {r}, alpha {alpha}, dropout {dropout}, lr {lr}. {why}").format(
        label=row_label(row), r=st["lora_r"], alpha=st["lora_alpha"], dropout=f"{st['lora_dropout']:g}",
        lr=fmt_value(st["learning_rate"]), why=_(row.why))


def describe_resource_tier(key: str) -> str:
    """What a resource tier means: its label and the guide's settings for it."""
    row = next(b for b in guide().resources if b.key == key)
    st = row.settings
    return _("{label}: the guide's row uses r {r}, alpha {alpha}, batch {batch} with {accumulation} accumulation "
             "steps").format(label=row_label(row), r=st["lora_r"], alpha=st["lora_alpha"],
                             batch=st["per_device_train_batch_size"],
                             accumulation=st["gradient_accumulation_steps"])
