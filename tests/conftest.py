"""Test isolation shared by every suite: no network, private cache and run roots. First, a map of the suite.

Where things are tested: the tree mirrors the package, `tests/<package>/test_<module>.py` tests
`lora_tui/<package>/<module>.py` (tests/core/dataset/test_report.py tests lora_tui/core/dataset/report.py).

- tests/core: the advisor as a library: hardware against a fake NVML, datasets, inventories, LoRA math (and its
  parity with PEFT, test_lora_math_peft.py), memory and fit, recommend, resolve, plans, run files, symptoms,
  units, and that core imports no heavy library (test_light_imports.py).
- tests/cli: each `lora-tui` subcommand through `lora_tui.cli.main`: output and exit status.
- tests/ui: the Textual app through Textual's Pilot: the wizard's state (test_state.py: the wizard and the CLI
  resolve the same plan), the wizard, each screen (tests/ui/screens), SVG snapshots (tests/ui/__snapshots__;
  `pytest --snapshot-update` rewrites them after a deliberate change), and that the TUI never imports the
  training stack.
- tests/inference: loading adapters for try/compare, and merging, on a tiny local base.
- tests/train: the training process itself on the built-in demo model (slow: real training on the CPU).

Helpers live in one package, tests/helpers, imported as `tests.helpers.NAME`:

- fake_nvml (a pynvml stand-in built from data), fake_trainer (writes a run's files like the real training
  process, without torch; its path is `tests.helpers.FAKE_TRAINER`), ui_fakes (fixed hardware reports, a
  launcher running the fake trainer), waits (wait on a condition instead of sleeping), adapter_fakes (adapter
  directories without torch), adapter_fixtures (a tiny trained base and adapters, registered below as a plugin),
  dataset_files (small data files of every supported format and schema), memory_models (hand-built inventories
  from published configs). tests/train/conftest.py builds the session's demo model.

Running: `make test-fast` (or `pytest -m "not slow"`) skips the tests marked slow, which train a model, for the
edit-test loop; `make test` runs lint, the benchmarks' quick modes and everything. pyproject.toml sets the
per-test timeout (300 s) and prints the 15 slowest tests. A missing dependency fails a test; nothing is skipped
for want of a module.

Isolation, for every test:

- The cache (demo model, inventories) lives in one temporary directory per test session, so the demo model is
  built once per session, never in the user's home.
- Runs default to a per-test temporary directory.
- Hugging Face libraries are told to stay offline.
- The TUI starts no background demo build (`LORA_TUI_PREBUILD=0`); the demo tokenizer is still built, once per
  session, when a test needs it.
Subprocesses started by tests inherit these variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.helpers.adapter_fixtures"]
"""Fixtures of a tiny local base model and adapters trained on it (for tests/core, cli, inference, ui)."""

_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "PYTHONUNBUFFERED": "1",
    "LORA_TUI_PREBUILD": "0",
    "LORA_TUI_LANG": "en",  # English output whatever the machine's locale (the Japanese tests choose ja)
}


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache directory for the whole session (set before any test runs)."""
    cache = tmp_path_factory.mktemp("lora-tui-cache")
    saved = {k: os.environ.get(k) for k in [*_OFFLINE, "LORA_TUI_CACHE", "HF_HOME"]}
    os.environ.update(_OFFLINE)
    os.environ["LORA_TUI_CACHE"] = str(cache)
    os.environ["HF_HOME"] = str(cache / "hf-home")
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own default output root."""
    root = tmp_path / "runs"
    monkeypatch.setenv("LORA_TUI_RUNS", str(root))
    return root
