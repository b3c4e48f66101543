"""Fetching a model's tokenizer files from the hub (a local fake of its file endpoint) to measure data with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lora_tui.core import hub
from lora_tui.core.dataset.tokens import find_tokenizer_file, get_tokenizer, local_tokenizer
from lora_tui.errors import UserError
from tests.helpers.fake_hub import FakeHub, serve

REPO = "acme/tiny-chat"


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    fake = FakeHub()
    fake.files[f"{REPO}/tokenizer.json"] = b'{"version": "1.0"}'
    fake.files[f"{REPO}/tokenizer_config.json"] = b'{"eos_token": "</s>"}'
    with serve(fake):
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def test_the_tokenizer_files_are_fetched_and_found_afterwards(fake_hub: FakeHub, tmp_path: Path) -> None:
    assert local_tokenizer(REPO) is None
    got = hub.fetch_tokenizer(REPO)
    assert got == tmp_path / "cache" / "tokenizers" / "acme--tiny-chat" / "tokenizer.json"
    assert got.read_bytes() == b'{"version": "1.0"}'
    assert sorted(p.name for p in got.parent.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert [r.split("/")[-1] for r in fake_hub.requests] == list(hub.TOKENIZER_FILES)
    assert local_tokenizer(REPO) == got and find_tokenizer_file(REPO) == got


def test_a_missing_tokenizer_json_fails_and_leaves_nothing(fake_hub: FakeHub, tmp_path: Path) -> None:
    del fake_hub.files[f"{REPO}/tokenizer.json"]
    with pytest.raises(hub.HubError, match="tokenizer.json: not found"):
        hub.fetch_tokenizer(REPO)
    assert list((tmp_path / "cache" / "tokenizers").iterdir()) == []


def test_a_gated_repo_says_to_set_hf_token(fake_hub: FakeHub) -> None:
    fake_hub.status[f"{REPO}/tokenizer.json"] = 401
    with pytest.raises(UserError, match=r"^acme/tiny-chat: could not fetch its tokenizer: tokenizer.json: the "
                                        r"repository is gated or private: set HF_TOKEN$"):
        get_tokenizer(REPO)


def test_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set"):
        hub.hub_file(REPO, "tokenizer.json", timeout=1)


def test_presets_fetch_from_their_hub_id_and_local_paths_never(tmp_path: Path) -> None:
    from lora_tui.core.dataset.tokens import hub_repo

    assert hub_repo("demo") is None and hub_repo(str(tmp_path)) is None and hub_repo("./x/y") is None
    assert hub_repo("acme/model") == "acme/model"
    assert hub_repo("smollm2-135m") == "HuggingFaceTB/SmolLM2-135M"
