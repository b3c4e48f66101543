"""Generic text for the demo model: a deterministic, generated English/Japanese corpus (no downloads).

The demo base model is pre-trained briefly on this text when it is built, so that it is a real (if tiny)
language model that already knows the chat format; LoRA fine-tuning on the sample chats then has something to
adapt and its loss visibly falls. The corpus is generated from templates with a fixed seed, so every build of
the demo model sees exactly the same text.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

_EN_SUBJECTS = ("The cat", "A student", "My friend", "The teacher", "The engineer", "A small dog", "The farmer",
                "Our neighbour", "The old man", "A child", "The doctor", "The train", "The river", "The city")
_EN_VERBS = ("sees", "likes", "reads", "finds", "builds", "visits", "carries", "paints", "cleans", "opens",
             "follows", "remembers", "writes", "watches")
_EN_OBJECTS = ("a red book", "the old bridge", "a warm cup of tea", "the blue door", "a long letter",
               "the quiet park", "a new computer", "the morning news", "a bowl of rice", "the tall tree",
               "a paper map", "the last train", "a bright lamp", "the wooden chair")
_EN_TIMES = ("every morning", "on Sunday", "after lunch", "in the evening", "before school", "at night",
             "in spring", "during the rain", "once a week", "today")

_JA_SUBJECTS = ("猫", "学生", "友達", "先生", "エンジニア", "子供", "医者", "母", "父", "隣の人")
_JA_OBJECTS = ("本", "手紙", "お茶", "地図", "ご飯", "新聞", "写真", "電車", "公園", "花")
_JA_VERBS = ("を読みます", "を見ます", "を書きます", "を買います", "を探します", "が好きです", "を持っています")
_JA_TIMES = ("毎朝", "日曜日に", "昼ご飯の後で", "夜に", "春に", "今日", "週に一回")

_QUESTIONS_EN = (
    ("What is {a} plus {b}?", "{a} plus {b} is {s}."),
    ("What does {subj} do {time}?", "{subj} {verb} {obj} {time}."),
    ("Can you name a colour?", "Sure. Blue is a colour, and so are red and green."),
    ("What day comes after Monday?", "Tuesday comes after Monday."),
)
_QUESTIONS_JA = (
    ("{a}足す{b}はいくつですか？", "{a}足す{b}は{s}です。"),
    ("{jsubj}は{jtime}何をしますか？", "{jsubj}は{jtime}{jobj}{jverb}。"),
    ("こんにちは。", "こんにちは！何かお手伝いできることはありますか？"),
)


def english_sentence(rng: random.Random) -> str:
    """One generated English sentence."""
    return f"{rng.choice(_EN_SUBJECTS)} {rng.choice(_EN_VERBS)} {rng.choice(_EN_OBJECTS)} {rng.choice(_EN_TIMES)}."


def japanese_sentence(rng: random.Random) -> str:
    """One generated Japanese sentence."""
    return f"{rng.choice(_JA_SUBJECTS)}は{rng.choice(_JA_TIMES)}{rng.choice(_JA_OBJECTS)}{rng.choice(_JA_VERBS)}。"


def paragraphs(n: int, *, seed: int = 0) -> Iterator[str]:
    """`n` short paragraphs of mixed English and Japanese generated text."""
    rng = random.Random(seed)
    for _ in range(n):
        make = english_sentence if rng.random() < 0.6 else japanese_sentence
        yield " ".join(make(rng) for _ in range(rng.randint(2, 5)))


def dialogues(n: int, *, seed: int = 1) -> Iterator[list[dict[str, str]]]:
    """`n` generated two-turn chats ({"role", "content"} messages) so the base learns the chat format."""
    rng = random.Random(seed)
    for _ in range(n):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        fill = {
            "a": a, "b": b, "s": a + b,
            "subj": rng.choice(_EN_SUBJECTS), "verb": rng.choice(_EN_VERBS), "obj": rng.choice(_EN_OBJECTS),
            "time": rng.choice(_EN_TIMES), "jsubj": rng.choice(_JA_SUBJECTS), "jobj": rng.choice(_JA_OBJECTS),
            "jverb": rng.choice(_JA_VERBS), "jtime": rng.choice(_JA_TIMES),
        }
        pool = _QUESTIONS_EN if rng.random() < 0.6 else _QUESTIONS_JA
        question, answer = rng.choice(pool)
        yield [
            {"role": "user", "content": question.format(**fill)},
            {"role": "assistant", "content": answer.format(**fill)},
        ]
