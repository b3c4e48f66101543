"""The training processes of a run on several processes or machines: the plan each one trains, the check that
all run the same versions and plan, FSDP's settings, and a rank that died.

Node 0's processes read RUN/run.toml; another node's read the plan its launcher put in the environment
(`core.distributed.PLAN_ENV`), so that node needs nothing of the run directory but its own log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from lora_tui.core import distributed, runs
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.i18n import _

VERSIONED = ("lora_tui", "torch", "transformers", "peft", "trl")
"""The packages every rank must run in the same version."""

CHECK_TIMEOUT = timedelta(minutes=10)
"""How long the process group waits for a collective (the check, then training) before it fails."""


def read_plan(run_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(plan settings, sources): from the environment on a node other than 0, else from RUN/run.toml."""
    text = os.environ.get(distributed.PLAN_ENV)
    if text:
        doc = tomllib.loads(text)
        return dict(doc.get("plan", {})), {str(k): str(v) for k, v in doc.get("sources", {}).items()}
    return load_run_file(run_dir / runs.RUN_FILE)


def versions() -> dict[str, str]:
    """The installed version of each package in VERSIONED."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def start_group(plan: TrainingPlan) -> None:
    """Join the run's process group (torchrun's environment): NCCL on GPUs (with gloo beside it under FSDP, which
    gathers the full state dict on the CPU, as accelerate does), gloo on the CPU. The Trainer then uses it."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cuda:nccl,cpu:gloo" if plan.distributed == "fsdp" else "nccl"
    dist.init_process_group(backend=backend, timeout=CHECK_TIMEOUT)


def check_world(plan: TrainingPlan) -> str | None:
    """Every rank's versions and plan, gathered on every rank: the first difference as one message (the same on
    every rank, so all of them refuse), or None."""
    import torch.distributed as dist

    start_group(plan)
    mine = {"rank": dist.get_rank(), "node": plan.node_rank, "versions": versions(),
            "plan": distributed.compared_plan(plan.to_dict())}
    reports: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(reports, mine)
    return distributed.mismatch(reports)


def refuse(run_dir: Path, message: str, *, is_main: bool) -> None:
    """Print the refusal on this rank; rank 0 marks the run failed with it."""
    import time

    print(f"lora-tui: refused: {message}", flush=True)
    if is_main:
        runs.update_status(run_dir, state="failed", ended_at=time.time(), error=message[:600])


def peer_failure(run_dir: Path, plan: TrainingPlan, error: str) -> str:
    """A failure seen in a run of several machines, with the last log lines of every other node that rank 0 can
    read (RUN/node-R.log on shared storage): a rank that died shows its own last words there."""
    parts = [error]
    for rank in range(1, plan.nnodes):
        name = distributed.node_log_name(rank)
        tail = distributed.log_tail(run_dir / name, 3)
        if tail:
            parts.append(_("node {rank}'s last lines ({name}): {lines}").format(rank=rank, name=name,
                                                                                 lines=" / ".join(tail)))
    return " | ".join(parts)


def is_peer_failure(exc: BaseException) -> bool:
    """An error from the process group (a peer that closed its connection, a collective that timed out)."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None),) if isinstance(k, type))
    text = str(exc).lower()
    return (bool(kinds) and isinstance(exc, kinds)) or any(
        word in text for word in ("connection closed by peer", "connection reset", "gloo", "nccl", "broken pipe"))


def fsdp_arguments(plan: TrainingPlan, model_path: str) -> dict[str, Any]:
    """The Trainer's FSDP2 settings for `distributed = fsdp`: full sharding, each decoder layer its own unit
    (the model's `_no_split_modules`), a full state dict so checkpoints hold a normal adapter; nothing for ddp."""
    if plan.distributed != "fsdp":
        return {}
    return {"fsdp": True,  # full sharding is reshard_after_forward; every unit wraps (transformer_layer_cls_to_wrap)
            "fsdp_config": {"version": 2, "reshard_after_forward": True,
                            "transformer_layer_cls_to_wrap": decoder_layers(model_path),
                            "state_dict_type": "FULL_STATE_DICT",
                            "activation_checkpointing": plan.gradient_checkpointing}}


@contextmanager
def plain_module_names(model: Any) -> Iterator[None]:
    """While saving an adapter: the model's activation-checkpoint wrappers taken out of its module tree, put back
    after. FSDP's activation checkpointing puts each decoder layer inside a wrapper (`_checkpoint_wrapped_module`)
    whose name the state dict leaves out, while PEFT picks the adapter's tensors from the state dict by module
    name: with the wrappers in place it matches none and saves an adapter with no weights. Only the tree changes
    (the modules, their weights and FSDP's hooks stay as they are); a model without wrappers is left alone."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import ActivationWrapper

    swapped: list[tuple[Any, str, Any]] = []
    for _name, parent in list(model.named_modules()):
        for child, module in list(parent._modules.items()):  # noqa: SLF001 - the tree itself, hooks untouched
            if isinstance(module, ActivationWrapper):
                inner = module
                while isinstance(inner, ActivationWrapper):
                    inner = inner._checkpoint_wrapped_module  # noqa: SLF001
                parent._modules[child] = inner  # noqa: SLF001
                swapped.append((parent, child, module))
    try:
        yield
    finally:
        for parent, child, module in reversed(swapped):
            parent._modules[child] = module  # noqa: SLF001


def decoder_layers(model_path: str) -> list[str]:
    """The decoder layer class names of a model (from its class's `_no_split_modules`, read without weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path)
    cls = AutoModelForCausalLM._model_mapping[type(config)]  # noqa: SLF001 - the class the Trainer would load
    names = list(getattr(cls, "_no_split_modules", None) or [])
    if not names:
        raise RuntimeError(f"{model_path}: the model class names no decoder layers to shard (_no_split_modules)")
    return names
