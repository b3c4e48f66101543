"""`lora-tui recommend`: every training setting for a task, data size and GPU, each with its reason; with the run's
processes (`--num-processes`, `--nnodes`, `--distributed`) the accumulation over all of them and ddp or fsdp with
both per-GPU figures, by resolve's rules (`core.resolve.with_processes`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lora_tui.errors import UserError
from lora_tui.i18n import _


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `recommend` subcommand."""
    from lora_tui.cli.flags import add_process_flags, gb_size

    p = sub.add_parser(
        "recommend",
        help=_("recommend LoRA settings from the guide's tables (or current practice), with a reason for each"),
        description=_("Recommend r, alpha, dropout, learning rate, batch, accumulation, targets and more from the "
                      "guide's task, data-size and resource tables (--advice guide, the default) or from current "
                      "LoRA practice (--advice practice), naming the exact source behind each value and the other "
                      "style's value where they differ."),
    )
    p.add_argument("--task", choices=["chat", "domain", "code", "style"], help=_("the guide's task preset"))
    size = p.add_mutually_exclusive_group()
    size.add_argument("--examples", type=int, metavar="N", help=_("number of training examples"))
    size.add_argument("--data", metavar="FILE", help=_("data file to inspect for its size (and token lengths)"))
    p.add_argument("--vram-gb", type=gb_size, metavar="G",
                   help=_("usable GPU memory in GB (default: the smallest detected GPU; none on CPU)"))
    p.add_argument("--cpu", action="store_true", help=_("plan for CPU/MPS: ignore any detected GPU"))
    p.add_argument("--model", metavar="M", help=_("preset, local directory or hub id: check the memory estimate"))
    from lora_tui.core.sources import ADVICE

    p.add_argument("--advice", default="guide", choices=ADVICE,
                   help=_("guide: the guide's tables, exactly (default); practice: current LoRA practice (about "
                          "2e-4, all linear projections, 1-3 epochs; r, alpha and dropout as the guide)"))
    p.add_argument("--style", default="standard", choices=["conservative", "standard", "aggressive"],
                   help=_("alpha/r style (default: standard, alpha = 2r)"))
    p.add_argument("--load-in-4bit", action="store_true",
                   help=_("plan a QLoRA run: the base model's linear layers in 4-bit NF4 (default: only when 16-bit "
                          "LoRA does not fit the VRAM and 4-bit does)"))
    from lora_tui.cli.plan import add_loss_flag

    add_loss_flag(p)
    add_process_flags(p)
    p.add_argument("--json", action="store_true", help=_("print JSON with `values` and `reasons`"))
    p.set_defaults(func=run)


def _vram_bytes(args: argparse.Namespace) -> tuple[int | None, str]:
    if args.vram_gb is not None:
        return int(args.vram_gb * 1e9), f"{args.vram_gb:g} GB (--vram-gb)"
    if args.cpu:
        return None, _("none (--cpu)")
    from lora_tui.core.hardware.detect import detect_hardware

    hw = detect_hardware()
    vram = hw.usable_vram_bytes
    if vram is None:
        return None, _("no CUDA GPU ({backend}; {status})").format(backend=hw.backend, status=hw.nvml_status)
    return vram, _("{gb} GB (smallest detected GPU)").format(gb=f"{vram / 1e9:.1f}")


def run(args: argparse.Namespace) -> int:
    """Print the recommendation; exit 2 on a user error."""
    from lora_tui.core.recommend import recommend

    report = None
    if args.data:
        from lora_tui.core.dataset.report import inspect_dataset

        report = inspect_dataset(args.data)
        if not report.ok:
            first = "\n".join(str(i) for i in report.issues[:5])
            raise UserError(_("{path}: {count} invalid record(s); fix them first (`lora-tui inspect {path}` lists "
                              "all):\n{first}").format(path=args.data, count=report.issue_count, first=first))
    vram, vram_text = _vram_bytes(args)
    inventory = None
    if args.model:
        from lora_tui.core.models.modules import load_inventory

        inventory = load_inventory(args.model)
    rec = recommend(task=args.task, examples=args.examples, vram_bytes=vram, inventory=inventory,
                    style=args.style, data_report=report, loss=args.loss_impl, load_in_4bit=args.load_in_4bit,
                    advice=args.advice)
    from lora_tui.cli.flags import process_values
    from lora_tui.core.plan import TrainingPlan

    processes = process_values(args)
    if processes:
        from lora_tui.core.resolve import PlanInputs, with_processes

        rec = with_processes(rec, processes, PlanInputs(data_report=report, vram_bytes=vram, inventory=inventory,
                                                        style=args.style))
    if args.json:
        out: dict[str, Any] = rec.to_dict()
        out["inputs"] = {"task": args.task, "examples": args.examples if report is None else report.examples,
                         "vram_bytes": vram, "vram_source": vram_text, "model": args.model, "style": args.style,
                         "advice": args.advice,
                         **{k: processes.get(k, getattr(TrainingPlan, k)) for k in ("num_processes", "nnodes")}}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    _print_human(rec, args, vram_text, report)
    return 0


def _print_human(rec: Any, args: argparse.Namespace, vram_text: str, report: Any) -> None:
    import shutil

    from lora_tui.cells import fill, pad
    from lora_tui.core.plan import flag_for, fmt_value

    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    examples = report.examples if report is not None else args.examples
    inputs = _("Inputs: task {task}, examples {examples}, VRAM {vram}, model {model}; advice {advice}") if args.model \
        else _("Inputs: task {task}, examples {examples}, VRAM {vram}; advice {advice}")
    print(inputs.format(task=args.task or _("(none)"), examples=examples if examples is not None else _("(unknown)"),
                        vram=vram_text, model=args.model, advice=args.advice))
    print()
    for key, value in rec.values.items():
        print(f"{pad(flag_for(key), 32)} {pad(fmt_value(value), 24)} [{rec.citations[key].kind.words}]")
        print(fill(rec.reasons[key], width=width, initial_indent="    ", subsequent_indent="    "))
    from lora_tui.cli.plan import fit_line

    for step in rec.fit_steps:
        print(_("memory fit: {step}").format(step=fit_line(step)))
    notes = [*rec.notes, *([_("Pass --vram-gb to plan for a GPU.")] if rec.tiers.get("resource") is None else [])]
    for note in notes:
        print(fill(_("note: {note}").format(note=note), width=width, subsequent_indent="      "))
