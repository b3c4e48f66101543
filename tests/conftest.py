"""Test isolation shared by every suite: no network, private cache and run roots.

- The cache (demo model, inventories) lives in one temporary directory per test session, so the demo model is
  built once per session, never in the user's home.
- Runs default to a per-test temporary directory.
- Hugging Face libraries are told to stay offline.
Subprocesses started by tests inherit these variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "PYTHONUNBUFFERED": "1",
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
