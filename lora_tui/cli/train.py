"""`lora-tui train`: the guide's `scripts/train_lora.py` flags, resolved against the advisor, run detached.

Every command line of the guide works with `lora-tui train` in place of `python scripts/train_lora.py`.
Flags not given come from `--config`, then the recommendation for this hardware and data, then the defaults;
the run records which. Nothing heavy is imported here: the training process is a separate program.

What is printed is in the language shown; the run files are English whatever it is, so a launch in another
language is resolved again in English from the same measured inputs (the data is not read twice).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from lora_tui.cells import pad
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, english, language, pgettext

VRAM_SOURCES = {"detected GPU": N_("detected GPU"), "none": N_("none")}
"""Where the VRAM figure came from, as the memory estimate records it (English) and a dry run shows it."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand: a flag for every TrainingPlan field, plus what to do with the run."""
    from lora_tui.cli.flags import add_plan_flags, gb_size
    from lora_tui.core.plan import TrainingPlan

    p = sub.add_parser("train", help=_("train a LoRA adapter (headless; the TUI starts the same process)"),
                       description=_("`lora-tui train`: the guide's `scripts/train_lora.py` flags, resolved against "
                                     "the advisor, run detached."),
                       epilog=_("--target-modules also takes a pattern of the guide: minimal, standard or maximum "
                                "(mapped onto the model's modules, e.g. Phi-3's fused qkv_proj)."))
    add_plan_flags(p, TrainingPlan.field_names())
    p.add_argument("--config", metavar="FILE", help=_("run file (TOML [plan] table) written by the TUI or by hand"))
    p.add_argument("--resume", action="store_true", help=_("continue --output from its newest complete checkpoint"))
    p.add_argument("--overwrite", action="store_true", help=_("replace a non-empty --output directory"))
    p.add_argument("--dry-run", action="store_true", help=_("validate and print the resolved plan; train nothing"))
    p.add_argument("--detach", action="store_true", help=_("start the run and return (print run dir and pid)"))
    p.add_argument("--auto-oom-retry", type=int, default=0, metavar="N",
                   help=_("on out-of-memory, retry up to N times with the guide's next settings"))
    p.add_argument("--vram-gb", type=gb_size, default=None,
                   help=_("plan for this much GPU memory instead of detecting"))
    p.add_argument("--json", action="store_true", help=_("with --dry-run: print the resolved plan as JSON"))
    p.set_defaults(func=run)


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """TrainingPlan fields the user set on the command line (a target pattern name as the pattern choice)."""
    from lora_tui.cli.flags import given_values
    from lora_tui.core.plan import TrainingPlan

    return given_values(args, TrainingPlan.field_names())


def _resolve(args: argparse.Namespace, vram: int | None, inputs: Any = None) -> Any:
    """The run resolved and validated for launch, in the current language; `inputs` reuses what an earlier
    resolution measured."""
    from lora_tui.core import launcher

    resolved = launcher.resolve_run(given_settings(args), config=args.config, resume=args.resume,
                                    overwrite=args.overwrite, dry_run=args.dry_run,
                                    auto_oom_retry=args.auto_oom_retry, vram_bytes=vram, inputs=inputs)
    memory = getattr(resolved, "memory", None)
    if memory is not None:  # where the VRAM figure came from, in the dry run and the run's launch.json
        memory["vram_source"] = ("--vram-gb" if vram is not None else
                                 "detected GPU" if memory.get("vram_bytes") else "none")
    return resolved


def run(args: argparse.Namespace) -> int:
    """Resolve, validate and then print (dry run), start detached, or start and follow the run."""
    from lora_tui.core import launcher

    if args.resume and not args.output:
        raise UserError(_("--resume needs --output RUN_DIR (the run to continue)"))
    vram = int(args.vram_gb * 1e9) if args.vram_gb is not None else None
    resolved = _resolve(args, vram)
    for warning in resolved.warnings:
        print(_("lora-tui: warning: {warning}").format(warning=warning), file=sys.stderr)
    if args.dry_run:
        print(launcher.to_json(resolved) if args.json else render_dry_run(resolved))
        return 0
    if language() != "en":
        with english():  # run.toml's and launch.json's reasons, notes and warnings are English
            resolved = _resolve(args, vram, inputs=resolved.inputs)
    log_start = _log_size(resolved) if resolved.mode == "resume" else 0  # a resumed run appends to run.log
    run_dir, proc = launcher.launch(resolved)
    node_rank = getattr(resolved.plan, "node_rank", 0)
    if node_rank > 0:
        return follow_node(run_dir, proc, node_rank, detach=args.detach)
    resume_from = getattr(resolved, "resume_from", None)
    if resume_from:
        print(_("run: {run}  pid: {pid}  resuming from {checkpoint}").format(run=run_dir, pid=proc.pid,
                                                                           checkpoint=Path(resume_from).name),
              flush=True)
    else:
        print(_("run: {run}  pid: {pid}").format(run=run_dir, pid=proc.pid), flush=True)
    if args.detach:
        quoted = shlex.quote(str(run_dir))
        print(_("follow it with `lora-tui runs logs {run} -f`; stop it with `lora-tui runs stop {run}`").format(
            run=quoted))
        return 0
    return follow(run_dir, proc, offset=log_start)


def _log_size(resolved: Any) -> int:
    from lora_tui.core.follow import log_size

    return log_size(Path(resolved.plan.output).expanduser().resolve())


def render_dry_run(resolved: Any) -> str:
    """The resolved plan with sources, the per-layer LoRA math and the memory estimate, in the current language."""
    from lora_tui.cli.inspect import data_lines
    from lora_tui.cli.plan import render_plan
    from lora_tui.core.lora_math import compute_lora_math

    plan = resolved.plan
    modes = {"new": N_("Plan (new run in {output}):"), "resume": N_("Plan (resume run in {output}):"),
             "overwrite": N_("Plan (overwrite run in {output}):")}
    lines = [_(modes.get(resolved.mode, modes["new"])).format(output=plan.output), *_rows(resolved)]
    world = _("{n} process(es)").format(n=plan.num_processes) if plan.nnodes == 1 else \
        _("{n} processes ({nodes} machines x {per_node})").format(n=plan.world_size, nodes=plan.nnodes,
                                                                  per_node=plan.num_processes)
    lines += [_("Effective batch: {effective} (batch {batch} x accumulation {accumulation} x {world})").format(
                  effective=plan.effective_batch_size, batch=plan.per_device_train_batch_size,
                  accumulation=plan.gradient_accumulation_steps, world=world), *_command_lines(plan),
              *_per_gpu_lines(resolved.memory), *data_lines(resolved.data_report), ""]
    math = compute_lora_math(resolved.inventory, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                             target_modules=list(plan.target_modules), use_dora=plan.use_dora,
                             use_rslora=plan.use_rslora)
    lines.append(render_plan(resolved.inventory, math, _shown_memory(resolved), alpha_default=False, plan=plan))
    if not resolved.model_available:
        lines += ["", _("Warning: the model's weights are not on this machine; a real run will need them.")]
    return "\n".join(lines)


def _shown_memory(resolved: Any) -> dict[str, Any] | None:
    """The memory estimate in the current language (launch.json's is English), its VRAM source in words."""
    from lora_tui.core import launcher

    if resolved.memory is None:
        return None
    memory = dict(resolved.memory)
    inputs = getattr(resolved, "inputs", None)
    if inputs is not None and language() != "en":
        report = inputs.data_report
        stats = report.at(resolved.plan.max_seq_length).token_stats if report is not None else None
        memory = launcher.memory_estimate(resolved.inventory, resolved.plan, inputs.vram_bytes, stats) or memory
    source = resolved.memory.get("vram_source")
    memory["vram_source"] = _(VRAM_SOURCES[source]) if source in VRAM_SOURCES else source
    return memory


def _command_lines(plan: Any) -> list[str]:
    """The command to run, one per machine for a run on several (each with its own --node-rank)."""
    from lora_tui.core.distributed import node_commands

    commands = node_commands(plan, plan.command_line())
    if len(commands) == 1:
        return [_("Command: {command}").format(command=commands[0])]
    return [_("Commands, one per machine (start node 0 first, then the others):"),
            *(_("  node {rank}: {command}").format(rank=rank, command=command)
              for rank, command in enumerate(commands))]


def _per_gpu_lines(memory: dict[str, Any] | None) -> list[str]:
    """Per-GPU memory of each strategy, for a run on several processes."""
    from lora_tui.core.memory_sharded import per_gpu_text

    per = (memory or {}).get("per_gpu")
    return [per_gpu_text(per)] if per else []


def follow_node(run_dir: Path, proc: Any, node_rank: int, *, detach: bool, poll_s: float = 0.2) -> int:
    """A node other than 0: its processes log to RUN/node-R.log, and node 0 keeps the run's status."""
    from lora_tui.core.distributed import node_log_name

    log = run_dir / node_log_name(node_rank)
    print(_("node {rank}: pid {pid}, log {log}; node 0 writes the run's status, metrics and adapter").format(
        rank=node_rank, pid=proc.pid, log=log), flush=True)
    if detach:
        return 0
    offset = 0
    while True:
        done = proc.poll() is not None
        try:
            with open(log, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except OSError:
            chunk = b""
        offset += len(chunk)
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
        sys.stdout.flush()
        if done:
            break
        time.sleep(poll_s)
    print(_("lora-tui: node {rank}'s training processes exited with status {code}").format(rank=node_rank,
                                                                                         code=proc.returncode))
    return 0 if proc.returncode == 0 else 1


_PROCESSES = re.compile(r"^\(/(\d+) processes(?: \((\d+) machines x (\d+)\))?\)$")
"""The tag resolve adds to a source when the accumulation is divided by the processes (English, as run files
keep it)."""


def source_words(source: str) -> str:
    """A value's source (`recommended`, `config`, `default (/2 processes)`) as a person reads it."""
    head, _sep, tail = source.partition(" ")
    words = pgettext("value source", head)
    found = _PROCESSES.match(tail)
    if found is None:
        return f"{words} {tail}" if tail else words
    n, nodes, per_node = found.groups()
    tag = _("(/{n} processes)").format(n=n) if nodes is None else \
        _("(/{n} processes ({nodes} machines x {per_node}))").format(n=n, nodes=nodes, per_node=per_node)
    return f"{words} {tag}"


def _rows(resolved: Any) -> list[str]:
    from lora_tui.core.launcher import describe_sources
    from lora_tui.core.plan import fmt_value

    out = []
    for row in describe_sources(resolved):
        value = _("(built-in sample)") if row["field"] == "data" and row["value"] is None else fmt_value(row["value"])
        reason = _("  ({reason})").format(reason=row["reason"]) if row["reason"] else ""
        out.append(f"  {pad(row['field'], 28)} {pad(value, 24)} {source_words(row['source'])}{reason}")
    return out


def follow(run_dir: Path, proc: Any, *, poll_s: float = 0.2, offset: int = 0) -> int:
    """Copy run.log from byte `offset` to the terminal until the process ends; Ctrl-C asks for a graceful stop
    and keeps going.

    Returns 0 when the run finished, 130 after a Ctrl-C, 1 otherwise.
    """
    from lora_tui.core import launcher, runs
    from lora_tui.core.demo_progress import BuildPrinter
    from lora_tui.core.follow import RunFollower

    interrupted = False
    follower = RunFollower(run_dir, every_line=True, log_offset=offset)
    build = BuildPrinter.for_run(run_dir)  # the demo model's build progress, while the run waits for it
    while True:
        try:
            follower.copy_log(sys.stdout)
            build.tick(sys.stdout)
            if proc.poll() is not None:
                follower.copy_log(sys.stdout, final=True)
                break
            time.sleep(poll_s)
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                print("\n" + _("lora-tui: stopping: the run saves a checkpoint and the adapter at its next step "
                               "(Ctrl-C again only stops following; the run keeps going)"), file=sys.stderr,
                      flush=True)
                runs.request_stop(run_dir)
            else:
                print(_("lora-tui: no longer following; the run continues in {run}").format(run=run_dir),
                      file=sys.stderr)
                return 130
    status = launcher.mark_exited(run_dir, proc.returncode)
    state = status.state if status else "unknown"
    if status and status.error:  # the run file's error, as the training process wrote it (English)
        print(_("lora-tui: run {state}: {error} ({run})").format(state=pgettext("run state", state),
                                                                 error=status.error, run=run_dir))
    else:
        print(_("lora-tui: run {state} ({run})").format(state=pgettext("run state", state), run=run_dir))
    _print_summary(run_dir, status)
    if interrupted:
        return 130
    return 0 if state == "finished" else 1


def _loss_line(info: Any) -> str:
    """`  loss 2.1000 -> 1.2000 (best 1.1500) in 42 s`, each part only when known."""
    first = f"{info.first_loss:.4f}" if info.first_loss is not None else "nan"
    loss = {"first": first, "final": f"{info.final_loss:.4f}"}
    best, took = info.best_loss, info.timings.wall_seconds if info.timings else None
    if best is not None and took:
        return _("  loss {first} -> {final} (best {best}) in {seconds} s").format(**loss, best=f"{best:.4f}",
                                                                                 seconds=f"{took:.0f}")
    if best is not None:
        return _("  loss {first} -> {final} (best {best})").format(**loss, best=f"{best:.4f}")
    if took:
        return _("  loss {first} -> {final} in {seconds} s").format(**loss, seconds=f"{took:.0f}")
    return _("  loss {first} -> {final}").format(**loss)


def _print_summary(run_dir: Path, status: Any) -> None:
    """After the run: losses, time, where the adapter is, and what to do next."""
    from lora_tui.core import runs
    from lora_tui.core.run_files import read_training_info

    info = read_training_info(run_dir)  # None when missing or damaged: the summary skips it
    if info is not None and info.final_loss is not None:
        print(_loss_line(info))
    quoted, merged = shlex.quote(str(run_dir)), shlex.quote(f"{run_dir}-merged")
    if runs.is_adapter_dir(run_dir):
        from lora_tui.core.adapter_report import adapter_choice_line

        chosen = adapter_choice_line(info.adapter_step, info.adapter_kept, info.adapter_eval_loss) if info else None
        print(_("  adapter: {run} ({chosen})").format(run=run_dir, chosen=chosen) if chosen else
              _("  adapter: {run}").format(run=run_dir))
        print(_("  next: lora-tui adapters try {run} --prompt \"...\"   |   lora-tui adapters merge {run} --output "
                "{merged}").format(run=quoted, merged=merged))
    if status is not None and status.state in ("stopped", "failed", "oom"):
        from lora_tui.core.checkpoints import choose_checkpoint

        if choose_checkpoint(run_dir).checkpoint is not None:  # a usable one: never suggest a damaged checkpoint
            print(_("  resume: lora-tui train --output {run} --resume").format(run=quoted))
        if status.next_settings:
            print(_("  the guide's next settings for out of memory: {settings}").format(settings=status.next_settings))
