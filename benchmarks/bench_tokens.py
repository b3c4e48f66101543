"""How fast token statistics are: rendering through the chat template, tokenizing, finding the trained spans,
compared with the tokenizer's own batch encode of the same rendered texts.

Usage: python benchmarks/bench_tokens.py [--quick] [--chats 100000] [--repeat 3]
Builds a byte-level BPE tokenizer (vocabulary 4096, the demo model's recipe, with the `tokenizers` library only)
and the demo model's chat template, generates short chats (one or two exchanges, some with a system turn), and
times:

- stats: `TokenCounter` over the normalised chats, what `inspect --model`, the wizard and `train` run
  (render each chat with the template, encode, map the generation spans to tokens, summarise);
- encode: `Tokenizer.encode_batch` of the same rendered texts, handed over ready-made.

The target is stats / encode <= 1.5 in wall time (the rendering overlaps the encoding: one batch encodes on a
helper thread while the next renders); the CPU-time ratio is printed too, since on a machine whose cores are
busy with other work the overlap cannot help and the wall time only shows the contention. The figure for a
template without `{% generation %}` markers (each assistant turn found by rendering the conversation up to it)
is printed too, for information. `--quick` (what `make test` runs): 5,000 chats, the same code path in a few
seconds, no speed target; it exits non-zero if the statistics are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_tui.core.dataset.encode import Failed  # noqa: E402
from lora_tui.core.dataset.tokens import TokenCounter  # noqa: E402

QUICK_CHATS = 5_000
"""Chats generated with `--quick`."""
TARGET_RATIO = 1.5
"""Stats time / batch-encode time must not exceed this (full mode)."""
PLAIN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""The demo template's text without generation markers (the assistant's turns are found by prefix rendering)."""


def build_tokenizer(folder: Path, template: str) -> Path:
    """tokenizer.json (BPE trained on the demo corpus), tokenizer_config.json and chat_template.jinja."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from lora_tui.train import corpus
    from lora_tui.train.demo import SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = list(corpus.paragraphs(1500, seed=10))
    texts += [m["content"] for chat in corpus.dialogues(6000, seed=11) for m in chat]
    tok.train_from_iterator(texts, trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    return folder / "tokenizer.json"


def measure(tokenizer_file: Path, chats: list[dict]) -> tuple[float, float, int, float]:
    """(stats seconds, batch-encode seconds, tokens counted, stats / encode CPU time) for the chats."""
    counter = TokenCounter(tokenizer_file, "bench")
    encoder = counter.encoder()
    texts = [encoder.render(None, chat).text for chat in chats]
    start, cpu = time.perf_counter(), time.process_time()
    encodings = counter.tokenizer.encode_batch(texts, add_special_tokens=False)
    encode_s, encode_cpu = time.perf_counter() - start, time.process_time() - cpu
    expected = sum(len(e.ids) for e in encodings)
    del encodings, texts
    start, cpu = time.perf_counter(), time.process_time()
    for item in encoder.encode((None, chat) for chat in chats):
        if isinstance(item, Failed):
            raise SystemExit(f"a chat failed to render: {item.problem}")
        counter.add(item, "")
    stats = counter.stats(1024)
    stats_s, stats_cpu = time.perf_counter() - start, time.process_time() - cpu
    total = round(stats.mean * stats.count) if stats else 0
    if total != expected or stats is None or not 0 < stats.trained_token_share < 1:
        raise SystemExit(f"token statistics are wrong: {total} tokens counted, {expected} encoded; {stats}")
    return stats_s, encode_s, total, stats_cpu / encode_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CHATS:,} chats: a smoke run, seconds")
    parser.add_argument("--chats", type=int, help=f"chats generated (100,000; {QUICK_CHATS:,} with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per figure, the median is printed (3; 1 with --quick)")
    args = parser.parse_args()
    n = args.chats or (QUICK_CHATS if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    from lora_tui.train import corpus
    from lora_tui.train.demo import CHAT_TEMPLATE

    chats = [{"messages": chat} for chat in corpus.dialogues(n, seed=3)]
    print(f"{n:,} chats, TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', '(unset)')}, "
          f"{os.cpu_count()} CPUs, median of {repeat} run(s)")
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for label, template in (("demo template ({% generation %} markers)", CHAT_TEMPLATE),
                                ("template without markers", PLAIN_TEMPLATE)):
            tokenizer_file = build_tokenizer(Path(tmp) / label.split()[0], template)
            runs = [measure(tokenizer_file, chats) for _ in range(repeat)]
            stats_s = statistics.median(r[0] for r in runs)
            encode_s = statistics.median(r[1] for r in runs)
            total = runs[0][2]
            ratio = statistics.median(r[0] / r[1] for r in runs)
            cpu_ratio = statistics.median(r[3] for r in runs)
            print(f"{label}: stats {stats_s:.2f} s ({n / stats_s:,.0f} chats/s, {total:,} tokens), "
                  f"batch encode {encode_s:.2f} s; ratio {ratio:.2f} (CPU time {cpu_ratio:.2f})")
            if template is CHAT_TEMPLATE and not args.quick:
                met = ratio <= TARGET_RATIO
                print(f"target ratio <= {TARGET_RATIO}: {'met' if met else 'NOT met'}")
            if args.quick:
                break
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
