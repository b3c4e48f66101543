"""Tests only: FSDP2 across CPU processes (gloo), which torch supports and accelerate does not offer.

accelerate turns FSDP on only for GPU-like devices; on the CPU it quietly trains data-parallel instead, which is
why lora-tui refuses `--distributed fsdp` without CUDA GPUs. To run lora-tui's own FSDP path on this machine
(sharding, the checkpoints, the adapter saved from the gathered state, resume), a test puts this directory on
PYTHONPATH with LORA_TUI_TEST_FSDP_ON_CPU=1: Python imports `sitecustomize` at start-up in every process, and
this one makes accelerate's state say FSDP where it would say multi-CPU. Nothing else changes.
"""

import os

if os.environ.get("LORA_TUI_TEST_FSDP_ON_CPU") == "1":
    import accelerate.state as _state

    _init = _state.AcceleratorState.__init__

    def _fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):  # type: ignore[no-untyped-def]
        _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == _state.DistributedType.MULTI_CPU:
            self.distributed_type = _state.DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            _state.PartialState._shared_state["distributed_type"] = self.distributed_type  # noqa: SLF001

    _state.AcceleratorState.__init__ = _fsdp_on_cpu
