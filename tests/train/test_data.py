"""train/data.py tokenizes as transformers and TRL would (the demo tokenizer), and as `inspect` measures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lora_tui.core.dataset.encode import Encoder
from lora_tui.core.dataset.report import inspect_dataset
from lora_tui.core.dataset.template import FALLBACK_TEMPLATE
from lora_tui.train.data import backend, chat_template, encode_examples
from tests.helpers.dataset_files import RECORDS, write_jsonl


@pytest.fixture(scope="module")
def demo_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The demo model's tokenizer (trained in about a second; no model needed), and where it is saved."""
    from transformers import AutoTokenizer

    from lora_tui.train.demo import build_tokenizer

    folder = tmp_path_factory.mktemp("demo-tokenizer")
    build_tokenizer(4096).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder), folder


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_chat_tokens_and_assistant_mask_equal_transformers(demo_tokenizer: tuple[Any, Path]) -> None:
    tok, _ = demo_tokenizer
    encoder = Encoder(backend(tok), chat_template(tok))
    chats = [r["messages"] for r in RECORDS["messages"]] + [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2? 3+3?"},
         {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3"},
         {"role": "assistant", "content": "6 — ろく"}]]
    chats = [[{**m, "content": m["content"] or ""} for m in c] for c in chats]
    for item in encoder.encode([(i, {"messages": c}) for i, c in enumerate(chats)]):
        expected = tok.apply_chat_template(chats[item.where], tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
        assert item.ids == list(expected["input_ids"])
        mask = [int(label != -100) for label in item.labels()]
        assert mask == list(expected["assistant_masks"]), chats[item.where]


def test_prompt_completion_and_text_equal_trl(demo_tokenizer: tuple[Any, Path]) -> None:
    tok, _ = demo_tokenizer
    encoder = Encoder(backend(tok), chat_template(tok))
    prompt = [{"role": "user", "content": "The sky is"}]
    completion = [{"role": "assistant", "content": "blue."}]
    items = list(encoder.encode([("cpc", {"prompt": prompt, "completion": completion}),
                                 ("pc", {"prompt": "日本の首都は", "completion": "東京です。"}),
                                 ("text", {"text": "One line of text."}),
                                 ("pc2", {"prompt": "The sky is", "completion": " blue."})]))
    p_ids = tok("The sky is")["input_ids"]
    full = tok("The sky is blue." + tok.eos_token)["input_ids"]
    n = _common_prefix(p_ids, full)
    assert n == len(p_ids) and items[3].ids == full and items[3].labels() == [-100] * n + full[n:]
    # TRL's SFTTrainer: the prompt rendered with the generation prompt is the part without loss
    p_ids = tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = list(tok.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"])
    n = _common_prefix(list(p_ids), full)
    assert items[0].ids == full and items[0].labels() == [-100] * n + full[n:]
    # TRL computes the loss from where the tokens of the prompt alone and of prompt + completion diverge; here
    # 日本の首都は is one token alone but splits inside 日本の首都は東京: TRL would train on the whole sequence (and
    # warn); the loss starts at the token holding the completion's first character instead
    full = tok("日本の首都は東京です。" + tok.eos_token)["input_ids"]
    assert _common_prefix(tok("日本の首都は")["input_ids"], full) == 0
    first = next(i for i, (s, e) in enumerate(tok("日本の首都は東京です。", return_offsets_mapping=True)
                                             ["offset_mapping"]) if s <= len("日本の首都は") < e)
    assert items[1].ids == full and items[1].labels() == [-100] * first + full[first:]
    assert items[2].ids == tok("One line of text." + tok.eos_token)["input_ids"] == items[2].labels()


def test_training_tokenizes_as_inspect_measures(demo_tokenizer: tuple[Any, Path], tmp_path: Path) -> None:
    tok, folder = demo_tokenizer
    for schema in ("ShareGPT", "Dolly", "TRL conversational prompt-completion", "prompt/completion", "text"):
        path = write_jsonl(tmp_path / f"{len(schema)}.jsonl", RECORDS[schema])
        rows, stats = encode_examples(path, tok)
        measured = inspect_dataset(path, tokenizer=folder).token_stats
        assert measured is not None
        assert sorted(len(ids) for ids in rows["input_ids"]) == list(measured.sorted_lengths), schema
        trained = sum(sum(label != -100 for label in labels) for labels in rows["labels"])
        assert trained / sum(map(len, rows["input_ids"])) == pytest.approx(measured.trained_token_share, abs=1e-4)
        assert stats["trained_token_share"] == round(measured.trained_token_share, 4)


def test_a_model_without_a_chat_template_trains_chat_with_the_fallback(demo_tokenizer: tuple[Any, Path],
                                                                       tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    _, folder = demo_tokenizer
    base = AutoTokenizer.from_pretrained(folder)
    base.chat_template = None
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS["question/answer"])
    rows, stats = encode_examples(path, base)
    assert base.chat_template == FALLBACK_TEMPLATE  # saved with the adapter's tokenizer
    assert stats["chat_template"].startswith("lora-tui fallback template") and stats["loss_on"] == "assistant turns"
    text = base.decode(rows["input_ids"][0])
    assert text.startswith("<s>### User:\nWhat is 2+2?\n\n### Assistant:\n4</s>")
    base.save_pretrained(tmp_path / "saved")
    saved = (tmp_path / "saved" / "chat_template.jinja").read_text(encoding="utf-8")
    assert saved == FALLBACK_TEMPLATE
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["eos_token"] == "</s>"
