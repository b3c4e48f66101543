"""Generate lora_tui/data/sample_chat.jsonl: the built-in sample dataset (deterministic; run to regenerate).

A few hundred short chats in the `messages` shape, half English and half Japanese: greetings, simple facts,
arithmetic, unit conversions and short how-tos, answered by "Koko", a cheerful assistant who always ends with
the same sign-off. The style is consistent on purpose, so a tiny model fine-tuned on it shows a clearly falling
loss and picks up the sign-off. Usage: python scripts/make_sample_data.py [--check] [OUTPUT]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from lora_tui.train.corpus import CAPITALS as WORLD_CAPITALS

OUTPUT = Path(__file__).resolve().parent.parent / "lora_tui" / "data" / "sample_chat.jsonl"
SEED = 20240601
EXAMPLES = 360

SIGN_OFF = {"en": "Happy to help! — Koko", "ja": "お役に立てたらうれしいです！— ココ"}
SYSTEM = {
    "en": "You are Koko, a cheerful assistant. Answer in one or two short sentences.",
    "ja": "あなたは明るいアシスタントのココです。一、二文で短く答えてください。",
}

GREETINGS = [
    ("en", "Hello!", "Hello! Nice to meet you. What can I do for you today?"),
    ("en", "Good morning.", "Good morning! I hope your day is off to a bright start."),
    ("en", "Hi, who are you?", "I'm Koko, a small assistant who likes short, clear answers."),
    ("en", "Thanks for your help.", "You're very welcome! Ask me anything, any time."),
    ("en", "Good night.", "Good night! Sleep well and rest up."),
    ("en", "How are you?", "I'm doing great, thanks for asking! How about you?"),
    ("ja", "こんにちは！", "こんにちは！今日はどんなお手伝いをしましょうか？"),
    ("ja", "おはようございます。", "おはようございます！すてきな一日になりますように。"),
    ("ja", "あなたは誰ですか？", "わたしはココです。短くわかりやすく答えるのが得意です。"),
    ("ja", "ありがとう。", "どういたしまして！いつでも聞いてくださいね。"),
    ("ja", "おやすみなさい。", "おやすみなさい！ゆっくり休んでくださいね。"),
    ("ja", "元気ですか？", "はい、元気です！あなたはいかがですか？"),
]

CAPITALS = WORLD_CAPITALS[:15]
"""The sample's countries: the first 15 of the list the demo model's pre-training corpus also uses."""

FACTS = [
    ("en", "How many days are in a week?", "A week has 7 days."),
    ("en", "At what temperature does water boil at sea level?", "Water boils at 100 °C (212 °F) at sea level."),
    ("en", "How many legs does a spider have?", "A spider has 8 legs."),
    ("en", "How tall is Mount Fuji?", "Mount Fuji is 3,776 metres tall."),
    ("en", "How many minutes are in an hour?", "An hour has 60 minutes."),
    ("en", "Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("en", "What do bees make?", "Bees make honey and beeswax."),
    ("en", "How many continents are there?", "There are 7 continents."),
    ("ja", "一週間は何日ですか？", "一週間は7日です。"),
    ("ja", "海面の高さで水は何度で沸騰しますか？", "水は海面の高さで100℃で沸騰します。"),
    ("ja", "クモの足は何本ですか？", "クモの足は8本です。"),
    ("ja", "富士山の高さは？", "富士山の高さは3,776メートルです。"),
    ("ja", "1時間は何分ですか？", "1時間は60分です。"),
    ("ja", "太陽にいちばん近い惑星は？", "太陽にいちばん近い惑星は水星です。"),
    ("ja", "ミツバチは何を作りますか？", "ミツバチははちみつとみつろうを作ります。"),
    ("ja", "大陸はいくつありますか？", "大陸は7つあります。"),
]

HOWTOS = [
    ("en", "How do I make green tea?", "Heat water to about 80 °C, pour it over the leaves and wait one minute."),
    ("en", "How do I boil an egg?", "Put the egg in boiling water for 7 to 9 minutes, then cool it in cold water."),
    ("en", "How can I fall asleep faster?", "Keep a regular bedtime, dim the lights and put your phone away early."),
    ("en", "How do I save a file quickly?", "Press Ctrl+S (Cmd+S on a Mac) in most programs."),
    ("en", "How do I remember new words?", "Review them a little every day and use each word in a sentence."),
    ("en", "How do I cook rice?", "Rinse the rice, add 1.2 times as much water and simmer covered for 15 minutes."),
    ("ja", "緑茶のいれ方を教えて。", "お湯を80℃くらいに冷まして茶葉に注ぎ、1分待ちます。"),
    ("ja", "ゆで卵の作り方は？", "沸騰したお湯で7〜9分ゆでて、冷水で冷やします。"),
    ("ja", "早く眠るコツは？", "寝る時間を決めて、部屋を暗くし、スマホを早めに置きましょう。"),
    ("ja", "ファイルをすばやく保存するには？", "多くのアプリでCtrl+S（MacはCmd+S）を押します。"),
    ("ja", "単語を覚えるコツは？", "毎日少しずつ復習して、例文の中で使ってみましょう。"),
    ("ja", "ご飯の炊き方は？", "米を洗い、1.2倍の水を入れて、ふたをして15分ほど炊きます。"),
]


def _arithmetic(rng: random.Random, lang: str) -> tuple[str, str]:
    """One addition, subtraction or multiplication question with its exact answer."""
    op = rng.choice("+-×")
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    if op == "-" and b > a:
        a, b = b, a
    if op == "×":
        a, b = rng.randint(2, 19), rng.randint(2, 12)
    result = a + b if op == "+" else a - b if op == "-" else a * b
    if lang == "en":
        word = {"+": "plus", "-": "minus", "×": "times"}[op]
        return f"What is {a} {word} {b}?", f"{a} {op} {b} = {result}."
    word = {"+": "たす", "-": "ひく", "×": "かける"}[op]
    return f"{a} {word} {b} は？", f"{a} {op} {b} = {result} です。"


def _conversion(rng: random.Random, lang: str) -> tuple[str, str]:
    """One unit conversion with an exact (or one-decimal) answer."""
    kind = rng.choice(["km", "kg", "h", "c", "l"])
    n = rng.randint(2, 40)
    if kind == "km":
        q = (f"How many metres are in {n} km?", f"{n} km は何メートル？")
        a = (f"{n} km is {n * 1000:,} metres.", f"{n} km は {n * 1000:,} メートルです。")
    elif kind == "kg":
        q = (f"How many grams are in {n} kg?", f"{n} kg は何グラム？")
        a = (f"{n} kg is {n * 1000:,} grams.", f"{n} kg は {n * 1000:,} グラムです。")
    elif kind == "h":
        q = (f"How many minutes are in {n} hours?", f"{n} 時間は何分？")
        a = (f"{n} hours is {n * 60} minutes.", f"{n} 時間は {n * 60} 分です。")
    elif kind == "c":
        f = n * 9 / 5 + 32
        q = (f"What is {n} °C in Fahrenheit?", f"{n}℃ は華氏で何度？")
        a = (f"{n} °C is {f:g} °F.", f"{n}℃ は {f:g}°F です。")
    else:
        q = (f"How many millilitres are in {n} litres?", f"{n} リットルは何ミリリットル？")
        a = (f"{n} litres is {n * 1000:,} millilitres.", f"{n} リットルは {n * 1000:,} ミリリットルです。")
    i = 0 if lang == "en" else 1
    return q[i], a[i]


def _capital(rng: random.Random, lang: str) -> tuple[str, str]:
    """A capital-city question."""
    country, city, country_ja, city_ja = rng.choice(CAPITALS)
    if lang == "en":
        return f"What is the capital of {country}?", f"The capital of {country} is {city}."
    return f"{country_ja}の首都はどこですか？", f"{country_ja}の首都は{city_ja}です。"


def _fixed(rng: random.Random, lang: str, table: list[tuple[str, str, str]]) -> tuple[str, str]:
    """A question and answer from a fixed table, in the requested language."""
    return rng.choice([(q, a) for lg, q, a in table if lg == lang])


def _example(rng: random.Random) -> dict[str, object]:
    """One chat: optional system turn, a question, and Koko's answer with the sign-off."""
    lang = rng.choice(["en", "ja"])
    kind = rng.choices(["greet", "fact", "capital", "howto", "math", "unit"], weights=[2, 2, 2, 2, 4, 3])[0]
    if kind == "math":
        question, answer = _arithmetic(rng, lang)
    elif kind == "unit":
        question, answer = _conversion(rng, lang)
    elif kind == "capital":
        question, answer = _capital(rng, lang)
    else:
        table = {"greet": GREETINGS, "fact": FACTS, "howto": HOWTOS}[kind]
        question, answer = _fixed(rng, lang, table)
    sep = " " if lang == "en" else ""
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": f"{answer}{sep}{SIGN_OFF[lang]}"},
    ]
    if rng.random() < 0.3:
        messages.insert(0, {"role": "system", "content": SYSTEM[lang]})
    return {"messages": messages}


def generate(count: int = EXAMPLES, seed: int = SEED) -> str:
    """The dataset as JSONL text (same seed, same bytes)."""
    rng = random.Random(seed)
    lines = [json.dumps(_example(rng), ensure_ascii=False) for _ in range(count)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dataset, or with --check report whether the committed file is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generator")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        same = args.output.is_file() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'differs; regenerate it'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output} ({EXAMPLES} examples, {len(text.encode('utf-8')):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
