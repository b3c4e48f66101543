"""`lora-tui train`: the guide's `scripts/train_lora.py` flags, resolved against the advisor, run detached.

Every command line of the guide works with `lora-tui train` in place of `python scripts/train_lora.py`.
Flags not given come from `--config`, then the recommendation for this hardware and data, then the defaults;
the run records which. Nothing heavy is imported here: the training process is a separate program.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from lora_tui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand: a flag for every TrainingPlan field, plus what to do with the run."""
    from lora_tui.cli.flags import add_plan_flags, gb_size
    from lora_tui.core.plan import TrainingPlan

    p = sub.add_parser("train", help="train a LoRA adapter (headless; the TUI starts the same process)",
                       description=__doc__.split("\n\n")[0],
                       epilog="--target-modules also takes a pattern of the guide: minimal, standard or maximum "
                              "(mapped onto the model's modules, e.g. Phi-3's fused qkv_proj).")
    add_plan_flags(p, TrainingPlan.field_names())
    p.add_argument("--config", metavar="FILE", help="run file (TOML [plan] table) written by the TUI or by hand")
    p.add_argument("--resume", action="store_true", help="continue --output from its newest complete checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output directory")
    p.add_argument("--dry-run", action="store_true", help="validate and print the resolved plan; train nothing")
    p.add_argument("--detach", action="store_true", help="start the run and return (print run dir and pid)")
    p.add_argument("--auto-oom-retry", type=int, default=0, metavar="N",
                   help="on out-of-memory, retry up to N times with the guide's next settings")
    p.add_argument("--vram-gb", type=gb_size, default=None, help="plan for this much GPU memory instead of detecting")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the resolved plan as JSON")
    p.set_defaults(func=run)


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """TrainingPlan fields the user set on the command line (a target pattern name as the pattern choice)."""
    from lora_tui.cli.flags import given_values
    from lora_tui.core.plan import TrainingPlan

    return given_values(args, TrainingPlan.field_names())


def run(args: argparse.Namespace) -> int:
    """Resolve, validate and then print (dry run), start detached, or start and follow the run."""
    from lora_tui.core import launcher

    if args.resume and not args.output:
        raise UserError("--resume needs --output RUN_DIR (the run to continue)")
    vram = int(args.vram_gb * 1e9) if args.vram_gb is not None else None
    resolved = launcher.resolve_run(given_settings(args), config=args.config, resume=args.resume,
                                    overwrite=args.overwrite, dry_run=args.dry_run,
                                    auto_oom_retry=args.auto_oom_retry, vram_bytes=vram)
    memory = getattr(resolved, "memory", None)
    if memory is not None:  # where the VRAM figure came from, in the dry run and the run's launch.json
        memory["vram_source"] = ("--vram-gb" if vram is not None else
                                 "detected GPU" if memory.get("vram_bytes") else "none")
    for warning in resolved.warnings:
        print(f"lora-tui: warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print(launcher.to_json(resolved) if args.json else render_dry_run(resolved))
        return 0
    log_start = _log_size(resolved) if resolved.mode == "resume" else 0  # a resumed run appends to run.log
    run_dir, proc = launcher.launch(resolved)
    node_rank = getattr(resolved.plan, "node_rank", 0)
    if node_rank > 0:
        return follow_node(run_dir, proc, node_rank, detach=args.detach)
    resume_from = getattr(resolved, "resume_from", None)
    resuming = f"  resuming from {Path(resume_from).name}" if resume_from else ""
    print(f"run: {run_dir}  pid: {proc.pid}{resuming}", flush=True)
    if args.detach:
        quoted = shlex.quote(str(run_dir))
        print(f"follow it with `lora-tui runs logs {quoted} -f`; stop it with `lora-tui runs stop {quoted}`")
        return 0
    return follow(run_dir, proc, offset=log_start)


def _log_size(resolved: Any) -> int:
    from lora_tui.core.follow import log_size

    return log_size(Path(resolved.plan.output).expanduser().resolve())


def render_dry_run(resolved: Any) -> str:
    """The resolved plan with sources, the per-layer LoRA math and the memory estimate."""
    from lora_tui.cli.inspect import data_lines
    from lora_tui.cli.plan import render_plan
    from lora_tui.core.lora_math import compute_lora_math

    plan = resolved.plan
    lines = [f"Plan ({resolved.mode} run in {plan.output}):"]
    for row in _rows(resolved):
        lines.append(row)
    world = (f"{plan.num_processes} process(es)" if plan.nnodes == 1 else
             f"{plan.world_size} processes ({plan.nnodes} machines x {plan.num_processes})")
    lines += [f"Effective batch: {plan.effective_batch_size} (batch {plan.per_device_train_batch_size} x "
              f"accumulation {plan.gradient_accumulation_steps} x {world})", *_command_lines(plan),
              *_per_gpu_lines(resolved.memory), *data_lines(resolved.data_report), ""]
    math = compute_lora_math(resolved.inventory, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                             target_modules=list(plan.target_modules), use_dora=plan.use_dora,
                             use_rslora=plan.use_rslora)
    memory = dict(resolved.memory) if resolved.memory else None
    lines.append(render_plan(resolved.inventory, math, memory, alpha_default=False, plan=plan))
    if not resolved.model_available:
        lines += ["", "Warning: the model's weights are not on this machine; a real run will need them."]
    return "\n".join(lines)


def _command_lines(plan: Any) -> list[str]:
    """The command to run, one per machine for a run on several (each with its own --node-rank)."""
    from lora_tui.core.distributed import node_commands

    commands = node_commands(plan, plan.command_line())
    if len(commands) == 1:
        return [f"Command: {commands[0]}"]
    return ["Commands, one per machine (start node 0 first, then the others):",
            *(f"  node {rank}: {command}" for rank, command in enumerate(commands))]


def _per_gpu_lines(memory: dict[str, Any] | None) -> list[str]:
    """Per-GPU memory of each strategy, for a run on several processes."""
    from lora_tui.core.units import fmt_gib

    per = (memory or {}).get("per_gpu")
    if not per:
        return []
    return [f"Per-GPU memory: ddp {fmt_gib(per['ddp_bytes'])} ({per['ddp_verdict'].replace('_', ' ')}, the whole "
            f"base on every GPU); fsdp {fmt_gib(per['fsdp_bytes'])} ({per['fsdp_verdict'].replace('_', ' ')}, "
            f"weights and LoRA state / {per['shards']} shards)"]


def follow_node(run_dir: Path, proc: Any, node_rank: int, *, detach: bool, poll_s: float = 0.2) -> int:
    """A node other than 0: its processes log to RUN/node-R.log, and node 0 keeps the run's status."""
    from lora_tui.core.distributed import node_log_name

    log = run_dir / node_log_name(node_rank)
    print(f"node {node_rank}: pid {proc.pid}, log {log}; node 0 writes the run's status, metrics and adapter",
          flush=True)
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
    print(f"lora-tui: node {node_rank}'s training processes exited with status {proc.returncode}")
    return 0 if proc.returncode == 0 else 1


def _rows(resolved: Any) -> list[str]:
    from lora_tui.core.launcher import describe_sources
    from lora_tui.core.plan import fmt_value

    out = []
    for row in describe_sources(resolved):
        value = "(built-in sample)" if row["field"] == "data" and row["value"] is None else fmt_value(row["value"])
        reason = f"  ({row['reason']})" if row["reason"] else ""
        out.append(f"  {row['field']:28s} {value:24s} {row['source']}{reason}")
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
                print("\nlora-tui: stopping: the run saves a checkpoint and the adapter at its next step "
                      "(Ctrl-C again only stops following; the run keeps going)", file=sys.stderr, flush=True)
                runs.request_stop(run_dir)
            else:
                print(f"lora-tui: no longer following; the run continues in {run_dir}", file=sys.stderr)
                return 130
    status = launcher.mark_exited(run_dir, proc.returncode)
    state = status.state if status else "unknown"
    print(f"lora-tui: run {state}" + (f": {status.error}" if status and status.error else "") + f" ({run_dir})")
    _print_summary(run_dir, status)
    if interrupted:
        return 130
    return 0 if state == "finished" else 1


def _print_summary(run_dir: Path, status: Any) -> None:
    """After the run: losses, time, where the adapter is, and what to do next."""
    from lora_tui.core import runs
    from lora_tui.core.run_files import read_training_info

    info = read_training_info(run_dir)  # None when missing or damaged: the summary skips it
    if info is not None and info.final_loss is not None:
        first = info.first_loss if info.first_loss is not None else float("nan")
        best, took = info.best_loss, info.timings.wall_seconds if info.timings else None
        print(f"  loss {first:.4f} -> {info.final_loss:.4f}"
              + (f" (best {best:.4f})" if best is not None else "") + (f" in {took:.0f} s" if took else ""))
    quoted, merged = shlex.quote(str(run_dir)), shlex.quote(f"{run_dir}-merged")
    if runs.is_adapter_dir(run_dir):
        from lora_tui.core.adapter_report import adapter_choice_line

        chosen = adapter_choice_line(info.adapter_step, info.adapter_kept, info.adapter_eval_loss) if info else None
        print(f"  adapter: {run_dir}" + (f" ({chosen})" if chosen else ""))
        print(f"  next: lora-tui adapters try {quoted} --prompt \"...\"   |   "
              f"lora-tui adapters merge {quoted} --output {merged}")
    if status is not None and status.state in ("stopped", "failed", "oom"):
        from lora_tui.core.checkpoints import choose_checkpoint

        if choose_checkpoint(run_dir).checkpoint is not None:  # a usable one: never suggest a damaged checkpoint
            print(f"  resume: lora-tui train --output {quoted} --resume")
        if status.next_settings:
            print(f"  the guide's next settings for out of memory: {status.next_settings}")
