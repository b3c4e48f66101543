"""Token statistics rendered through the chat template: trained spans, lengths against max_seq_length, the
recommendation made from them, and the preview (a word-level tokenizer, so every count can be checked by eye)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lora_tui.core.data_rules import seq_length as _seq_length
from lora_tui.core.dataset.encode import Encoder
from lora_tui.core.dataset.preview import preview
from lora_tui.core.dataset.report import inspect_dataset, truncation_warning
from lora_tui.core.dataset.template import FALLBACK_TEMPLATE, ChatTemplate, load_template, marked_source
from lora_tui.core.dataset.tokens import TokenCounter, summarise
from lora_tui.train.demo import CHAT_TEMPLATE
from tests.helpers.dataset_files import word_tokenizer, write_jsonl

DEMO_TEMPLATE = CHAT_TEMPLATE
"""The demo model's chat template (it marks the assistant's text with {% generation %})."""


def chat(user: str, assistant: str, *more: str) -> dict[str, Any]:
    turns = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    for i, content in enumerate(more):
        turns.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return {"messages": turns}


def test_the_template_renders_with_spans_and_special_tokens(tmp_path: Path) -> None:
    template = load_template(word_tokenizer(tmp_path))
    assert (template.bos_token, template.eos_token, template.name) == ("<s>", "</s>", "chat template "
                                                                                      "(chat_template.jinja)")
    text, spans = template.render(chat("a b", "c")["messages"])
    assert text == "<s><|user|>\na b</s>\n<|assistant|>\nc</s>\n"
    assert [text[s:e] for s, e in spans] == ["c</s>"]
    prompt, _ = template.render([{"role": "user", "content": "a"}], add_generation_prompt=True)
    assert prompt == "<s><|user|>\na</s>\n<|assistant|>\n"


@pytest.mark.parametrize(("source", "expected"), [
    ("x\n{% generation %}\ny{% endgeneration %}\nz", "x\n\ufdd0y\ufdd1z"),  # trim_blocks after both tags
    ("x  {%- generation -%}  y  {%- endgeneration -%}  z", "x\ufdd0y\ufdd1z"),
    ("x\n    {% generation %}y{% endgeneration %}", "x\n\ufdd0y\ufdd1"),  # lstrip_blocks before the tag
])
def test_generation_tags_keep_their_whitespace_control(source: str, expected: str) -> None:
    from lora_tui.core.dataset.template import _compile

    template, context = _compile(source)
    assert "".join(template.root_render_func(context({}))) == expected
    assert "generation" not in marked_source(source)


def test_token_stats_count_what_training_trains_on(tmp_path: Path) -> None:
    tok = word_tokenizer(tmp_path / "tok")
    path = write_jsonl(tmp_path / "d.jsonl", [chat("a b", "c"), chat("a", "b c d e f"), chat("a b c d", "e")])
    report = inspect_dataset(path, tokenizer=tok, max_seq_length=9)
    stats = report.token_stats
    assert stats is not None
    # <s> <|user|> a b </s> <|assistant|> c </s> = 8; 11; 10 tokens; trained: the answers and their </s>
    assert (stats.count, stats.median, stats.p95, stats.max, stats.over_max) == (3, 10, 11, 11, 2)
    assert stats.first_over == f"{path}:2" and stats.template == "chat template (chat_template.jinja)"
    assert stats.trained_token_share == pytest.approx((2 + 6 + 2) / (8 + 11 + 10))
    data = report.to_dict()["token_stats"]
    assert {k: data[k] for k in ("median", "p95", "max", "over_max", "max_seq_length")} == {
        "median": 10, "p95": 11, "max": 11, "over_max": 2, "max_seq_length": 9}
    assert data["trained_token_share"] == round(10 / 29, 4)
    again = report.at(10).token_stats
    assert again is not None and (again.over_max, again.first_over, again.max_seq_length) == (1, f"{path}:2", 10)
    assert report.at(11).token_stats.over_max == 0 and truncation_warning(report.at(11)) is None
    assert truncation_warning(report) == (
        f"2 of 3 examples are longer than max_seq_length 9 tokens (the longest: 11; first: {path}:2); training "
        "keeps the first 9 tokens of each and cuts the rest: raise --max-seq-length to keep them whole")


def test_every_shape_is_encoded_as_training_will(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok_file = word_tokenizer(tmp_path)
    encoder = Encoder(Tokenizer.from_file(str(tok_file)), load_template(tok_file), keep_offsets=True)
    examples = [
        ("chat", chat("a", "b", "c", "d")),
        ("cpc", {"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]}),
        ("pc", {"prompt": "a b", "completion": " c"}),
        ("text", {"text": "a b c"}),
    ]
    out = {item.where: item for item in encoder.encode(examples)}
    trained = {where: [Tokenizer.from_file(str(tok_file)).id_to_token(item.encoding.ids[i])
                       for s, e in item.trained for i in range(s, e)] for where, item in out.items()}
    assert trained == {"chat": ["b", "</s>", "d", "</s>"], "cpc": ["b", "</s>"], "pc": ["c", "</s>"],
                       "text": ["a", "b", "c", "</s>"]}
    assert out["text"].labels() == out["text"].ids
    assert out["pc"].labels()[:2] == [-100, -100]


def test_a_template_without_generation_markers_finds_each_assistant_turn(tmp_path: Path) -> None:
    plain = DEMO_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    tok_file = word_tokenizer(tmp_path, template=plain)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_file))
    item = next(iter(Encoder(tok, load_template(tok_file)).encode([(0, chat("a", "b", "c", "d"))])))
    assert [tok.id_to_token(item.encoding.ids[i]) for s, e in item.trained for i in range(s, e)] == [
        "b", "</s>", "d", "</s>"]


def test_a_base_model_gets_the_fallback_template(tmp_path: Path) -> None:
    tok_file = word_tokenizer(tmp_path / "base", template=None)
    template = load_template(tok_file)
    assert template.is_fallback and template.source == FALLBACK_TEMPLATE
    tool_turn = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]}
    text, spans = template.render([{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, tool_turn,
                                   {"role": "tool", "content": "x"}, {"role": "assistant", "content": "b"}])
    assert text == ('<s>### System:\ns\n\n### User:\na\n\n### Assistant:\n[{"function": {"name": "f"}}]</s>\n\n'
                    "### Tool:\nx\n\n### Assistant:\nb</s>\n\n")
    assert [text[s:e] for s, e in spans] == ['[{"function": {"name": "f"}}]</s>', "b</s>"]
    path = write_jsonl(tmp_path / "d.jsonl", [chat("a", "b")])
    examples, name = preview(path, tok_file, 1)
    assert name.startswith("lora-tui fallback template")
    assert "".join(seg.text for seg in examples[0].segments) == "<s>### User:\na\n\n### Assistant:\nb</s>\n\n"
    assert [seg.text for seg in examples[0].segments if seg.trained] == ["b</s>"]


def test_preview_marks_trained_spans_and_the_cut(tmp_path: Path) -> None:
    tok_file = word_tokenizer(tmp_path / "tok")
    path = write_jsonl(tmp_path / "d.jsonl", [chat("a b", "c d"), {"bad": 1}, chat("a", "b")])
    examples, name = preview(path, tok_file, 5, max_seq_length=7)
    assert [e.where for e in examples] == [f"{path}:1", f"{path}:3"]
    first = examples[0]
    assert (first.tokens, first.trained_tokens) == (9, 3)
    assert [(seg.text, seg.trained, seg.cut) for seg in first.segments] == [
        ("<s><|user|>\na b</s>\n<|assistant|>\n", False, False), ("c", True, False), (" ", False, True),
        ("d</s>", True, True), ("\n", False, True)]
    text_tok = word_tokenizer(tmp_path / "plain", template=None)
    pc = write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "a", "completion": " b"}])
    examples, name = preview(pc, text_tok, 1)
    assert name == "" and [(s.text, s.trained) for s in examples[0].segments] == [("a ", False), ("b</s>", True)]


def test_summarise_bare_lengths() -> None:
    stats = summarise(range(1, 101), "t", 90)
    assert stats is not None and (stats.median, stats.p95, stats.max, stats.over_max) == (50, 95, 100, 10)
    assert stats.over(95) == 5 and summarise([], "t", 10) is None


def _report(lengths: list[int], where: str = "d.jsonl") -> Any:
    stats = summarise(lengths, "t", 1024)
    assert stats is not None
    stats = stats.__class__(**{**{f: getattr(stats, f) for f in stats.__dataclass_fields__},
                               "longest_so_far": tuple((n, f"{where}:{i + 1}") for i, n in enumerate(lengths)
                                                       if n == max(lengths[: i + 1]) and n not in lengths[:i])})

    class Report:
        examples = len(lengths)
        token_stats = stats

    return Report()


class _Inventory:
    def __init__(self, positions: int | None) -> None:
        self.max_position_embeddings = positions


@pytest.mark.parametrize(("lengths", "positions", "value", "words"), [
    ([40] * 19 + [70], None, 128, ["the longest example is 70 tokens (95th percentile 40)",
                                   "rounded up to a multiple of 64: 128", "no example is cut"]),
    ([100] * 95 + [900] * 5, None, 128, ["95% of the examples are at most 100 tokens; the longest (900) is more than "
                                         "twice that", "rounded up to a multiple of 64: 128",
                                         "5 longer example(s) will be cut at the end (first: d.jsonl:96)"]),
    ([3000] * 10, 2048, 2048, ["the longest example is 3,000 tokens", "capped at the model's 2,048 positions",
                               "10 longer example(s) will be cut at the end (first: d.jsonl:1)"]),
    ([10] * 5, None, 64, ["rounded up to a multiple of 64: 64"]),
])
def test_max_seq_length_is_recommended_from_the_measured_lengths(lengths: list[int], positions: int | None,
                                                                 value: int, words: list[str]) -> None:
    got, reason = _seq_length(_report(lengths), _Inventory(positions), 1024)  # type: ignore[arg-type]
    assert got == value and got % 64 == 0 or got == positions
    for word in words:
        assert word in reason


def test_without_token_statistics_the_defaults_table_value_is_kept() -> None:
    class Report:
        examples = 10
        token_stats = None

    got, reason = _seq_length(Report(), None, 1024)  # type: ignore[arg-type]
    assert got == 1024 and "no token statistics" in reason


def test_counter_keeps_four_bytes_per_example(tmp_path: Path) -> None:
    counter = TokenCounter(word_tokenizer(tmp_path), "t")
    items = counter.encoder().encode([(i, chat("a", "b")) for i in range(1000)])
    for item in items:
        counter.add(item, lambda: "x")
    stats = counter.stats(1024)
    assert stats is not None and stats.count == 1000 and stats.sorted_lengths.itemsize == 4
    assert len(stats.longest_so_far) == 1  # every chat is as long as the first


def test_render_failure_is_a_problem_at_its_line(tmp_path: Path) -> None:
    failing = "{% if messages|length > 2 %}{{ raise_exception('only one exchange') }}{% endif %}{{ 'x' }}"
    tok = word_tokenizer(tmp_path / "t", template=failing)
    path = write_jsonl(tmp_path / "d.jsonl", [chat("a", "b"), chat("a", "b", "c", "d")])
    report = inspect_dataset(path, tokenizer=tok)
    assert report.examples == 1
    assert [str(i) for i in report.issues] == [f"{path}:2: the chat template fails on this example: only one "
                                               "exchange"]
    assert ChatTemplate(failing).marks_generation is False


def test_measuring_stays_streaming(tmp_path: Path) -> None:
    """Memory is bounded by a few batches of examples, not by the file: twice the file, about the same peak."""
    import tracemalloc

    tok = word_tokenizer(tmp_path / "tok")
    line = json.dumps(chat("a b c " * 60, "d e f " * 60)) + "\n"
    peaks = []
    for blocks in (20, 60):
        path = tmp_path / f"big{blocks}.jsonl"
        with path.open("w") as fh:
            for _ in range(blocks):
                fh.write(line * 100)
        tracemalloc.start()
        try:
            report = inspect_dataset(path, tokenizer=tok)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.examples == blocks * 100 and report.token_stats is not None
        assert report.token_stats.max == 365
        peaks.append(peak)
    assert peaks[1] < 1.3 * peaks[0], f"peaks {peaks}: memory grows with the file"
    assert peaks[1] < (tmp_path / "big60.jsonl").stat().st_size / 2, peaks
