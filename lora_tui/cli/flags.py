"""Command-line flags made from TrainingPlan's fields, and the one argparse type for sizes in GB.

A plan flag's name comes from `core.plan.flag_for`, its kind from the field's type and its help from the
field's docstring, so `train`, `plan` and `recommend` cannot drift from the plan. Flags only parse: every range
check is TrainingPlan's (`__post_init__`), which names the field and the flag.
"""

from __future__ import annotations

import argparse
import ast
import functools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lora_tui.core.plan import NEGATABLE, TrainingPlan, flag_for, parse_target_modules
from lora_tui.i18n import _

MAX_GB = 1e6
"""Largest size in GB a flag accepts (a petabyte: beyond any GPU or machine)."""
PROCESS_FIELDS = ("num_processes", "nnodes", "distributed")
"""The run's processes, as `recommend` and `plan` take them (the same flags as `train`'s)."""
PLANNING_ADDR = "node-0"
"""Node 0's address while a run on several machines is only planned (`recommend`, `plan`): a plan for more than
one machine needs one (`train --master-addr`), and nothing is started, so a name stands in for it."""


def gb_size(text: str) -> float:
    """argparse type: a finite size in GB, > 0 (refuses nan, inf, 1e400, negatives and absurd sizes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("must be a number of GB, got {text!r}").format(text=text)) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(_("must be a positive, finite number of GB, got {text}; leave it out to "
                                           "detect the GPU").format(text=text))
    if value > MAX_GB:
        raise argparse.ArgumentTypeError(_("must be at most {limit} GB, got {text}").format(limit=f"{MAX_GB:,.0f}",
                                                                                           text=text))
    return value


@functools.cache
def field_help() -> dict[str, str]:
    """TrainingPlan field -> the first sentence of its docstring (read from the source, once)."""
    from lora_tui.core import plan as plan_module

    tree = ast.parse(Path(plan_module.__file__).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainingPlan")
    helps: dict[str, str] = {}
    for stmt, after in zip(cls.body, cls.body[1:], strict=False):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            text = " ".join(after.value.value.split())
            helps[stmt.target.id] = text.split(". ")[0].rstrip(".").replace("%", "%%")
    return helps


def add_plan_flags(parser: argparse.ArgumentParser, names: Iterable[str], *,
                   defaults: TrainingPlan | None = None) -> None:
    """Add one flag per TrainingPlan field in `names`; a value not given is None (booleans too).

    With `defaults`, the help says the value used when the flag is left out.
    """
    helps = field_help()
    for name in names:
        kind, flag = TrainingPlan.field_kind(name), flag_for(name)
        text = helps.get(name, name)
        if defaults is not None:
            default = getattr(defaults, name)
            shown = ",".join(default) if isinstance(default, list) else default
            text += f" (default {shown})"
        if kind == "bool":
            action: Any = argparse.BooleanOptionalAction if name in NEGATABLE else "store_true"
            parser.add_argument(flag, dest=name, action=action, default=None, help=text)
            continue
        metavar = {"int": "N", "float": "X", "list": "LIST"}.get(kind)
        parser.add_argument(flag, dest=name, type={"int": int, "float": float}.get(kind, str), default=None,
                            metavar=metavar, help=text)


def given_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The plan fields in `names` that were given on the command line, parsed (a target list into names, and
    a pattern name such as `standard` into the resolver's pattern choice)."""
    from lora_tui.core.resolve import PATTERN
    from lora_tui.core.targets import pattern_names

    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if "target_modules" in given:
        text = str(given.pop("target_modules")).strip()
        if text in pattern_names():
            given[PATTERN] = text
        else:
            given["target_modules"] = parse_target_modules(text)
    return given


def add_process_flags(parser: argparse.ArgumentParser) -> None:
    """`--num-processes`, `--nnodes` and `--distributed`, as `train` has them (`add_plan_flags`)."""
    add_plan_flags(parser, PROCESS_FIELDS)


def process_values(args: argparse.Namespace) -> dict[str, Any]:
    """The process flags given (empty when none), with `PLANNING_ADDR` for more than one machine."""
    given = given_values(args, PROCESS_FIELDS)
    nodes = given.get("nnodes")
    if isinstance(nodes, int) and nodes > 1:
        given["master_addr"] = PLANNING_ADDR
    return given
