"""train/token_cache.py: the tokenized training data is reused when data and tokenizer are the same, and only then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lora_tui.train import data as data_mod
from lora_tui.train import token_cache
from tests.helpers.dataset_files import RECORDS, write_jsonl


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lora_tui.train.demo import build_tokenizer

    folder = tmp_path_factory.mktemp("demo-tokenizer")
    build_tokenizer(4096).save_pretrained(folder)
    return folder


def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _load(path: Path, folder: Path, **kwargs: Any) -> tuple[Any, Any, dict[str, Any]]:
    return data_mod.load_dataset_for_training(path, _tokenizer(folder), eval_split=0.0, seed=1, **kwargs)


def test_the_second_load_tokenizes_nothing_and_gives_the_same_examples(
        tokenizer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    data = write_jsonl(tmp_path / "chat.jsonl", RECORDS["messages"] * 3)
    first, _, stats = _load(data, tokenizer_dir, max_length=64)
    assert stats["tokenized_from_cache"] is False and len(list(token_cache.cache_root().iterdir())) == 1

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("tokenized again")

    monkeypatch.setattr(data_mod, "encode_examples", refuse)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(data.read_bytes())  # the same content under another name
    again, _, stats_again = _load(copy, tokenizer_dir, max_length=64)
    assert stats_again["tokenized_from_cache"] is True and stats_again["path"] == str(copy)
    assert again["input_ids"] == first["input_ids"] and again["labels"] == first["labels"]
    assert {k: v for k, v in stats_again.items() if k not in ("path", "tokenized_from_cache")} == \
        {k: v for k, v in stats.items() if k not in ("path", "tokenized_from_cache")}
    assert "tokenized data reused from the cache" in capsys.readouterr().out


def test_other_content_another_cut_or_another_tokenizer_is_a_new_key(tokenizer_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "chat.jsonl", RECORDS["messages"])
    tok = _tokenizer(tokenizer_dir)
    inner = data_mod.backend(tok).to_str()

    def key(path: Path = data, tokenizer_json: str = inner, max_length: int | None = 64) -> str:
        return token_cache.key(path, tokenizer_json, tok.chat_template, "<s>", "</s>", None, max_length)

    base = key()
    assert key() == base
    assert key(max_length=128) != base and key(tokenizer_json=inner.replace("<s>", "<S>")) != base
    data.write_text(data.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert key() != base  # one byte more in the data file


def test_a_damaged_entry_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import Dataset

    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    made = []

    def make() -> tuple[Any, dict[str, Any]]:
        made.append(1)
        return Dataset.from_dict({"input_ids": [[1, 2]], "labels": [[1, 2]]}), {"examples": 1}

    token_cache.cached("k", make)
    for file in (token_cache.cache_root() / "k").glob("*.arrow"):
        file.write_bytes(b"not arrow")
    dataset, stats, reused = token_cache.cached("k", make)
    assert (reused, len(made), dataset["input_ids"], stats) == (False, 2, [[1, 2]], {"examples": 1})
