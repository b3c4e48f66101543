"""Generic text for the demo model: a deterministic, generated English/Japanese corpus (no downloads).

The demo base model is pre-trained briefly on this text when it is built, so that it is a small but real chat
model: it knows the chat template's structure, both languages' everyday words, numbers and symbols, and gives
plain, generic answers (greetings, arithmetic, unit conversions, capitals, facts, how-tos).

What it never sees is the built-in sample's persona: no "Koko", no cheerful sign-off, no sample chat. Its
answers are phrased differently from the sample's, so LoRA fine-tuning on the sample has something real to
learn (the persona, the answer style, the sign-off) and its loss visibly falls. Everything is generated from
templates with a fixed seed, so every build of the demo model sees exactly the same text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

Chat = list[dict[str, str]]
"""A chat: {"role", "content"} messages."""
QA = tuple[str, str]
"""A question and its answer."""

_EN_SUBJECTS = ("The cat", "A student", "My friend", "The teacher", "The engineer", "A small dog", "The farmer",
                "Our neighbour", "The old man", "A child", "The doctor", "The train", "The river", "The city",
                "Emma", "Ken", "The baker", "My sister", "Koji", "Yoko", "Kiko", "Nico", "Momo", "Taro", "Hana")
_EN_VERBS = ("sees", "likes", "reads", "finds", "builds", "visits", "carries", "paints", "cleans", "opens",
             "follows", "remembers", "writes", "watches", "makes", "saves", "cooks", "drinks")
_EN_OBJECTS = ("a red book", "the old bridge", "a warm cup of tea", "the blue door", "a long letter",
               "the quiet park", "a new computer", "the morning news", "a bowl of rice", "the tall tree",
               "a paper map", "the last train", "a bright lamp", "the wooden chair", "a cup of cocoa",
               "a boiled egg", "a short file", "some green tea", "a list of new words", "the honey jar")
_EN_TIMES = ("every morning", "on Sunday", "after lunch", "in the evening", "before school", "at night",
             "in spring", "during the rain", "once a week", "today", "every day", "early")

_JA_SUBJECTS = ("猫", "学生", "友達", "先生", "エンジニア", "子供", "医者", "母", "父", "隣の人", "姉", "ケン",
                "ヨーコ", "モモ", "タロウ", "ハナ", "キコ", "コウジ")
_JA_OBJECTS = ("本", "手紙", "お茶", "地図", "ご飯", "新聞", "写真", "電車", "公園", "花", "ココア", "ゆで卵",
               "ファイル", "単語", "はちみつ", "スマホ")
_JA_VERBS = ("を読みます", "を見ます", "を書きます", "を買います", "を探します", "が好きです", "を持っています",
             "を作ります", "を保存します", "を覚えます")
_JA_TIMES = ("毎朝", "日曜日に", "昼ご飯の後で", "夜に", "春に", "今日", "週に一回", "毎日", "早めに")

_SYSTEM = {"en": ("You are a helpful assistant.", "Answer the question briefly.",
                  "You are a plain, factual assistant."),
           "ja": ("あなたは親切なアシスタントです。", "質問に簡潔に答えてください。",
                  "事実を正確に答えるアシスタントです。")}
_GREETINGS = {
    "en": (("Hello!", "Hello. How can I help you today?"), ("Hi, who are you?", "I am an AI assistant."),
           ("Good morning.", "Good morning. I hope you have a good day."),
           ("Thanks for your help.", "You are welcome."),
           ("Good night.", "Good night. Sleep well."), ("How are you?", "I am fine, thank you. And you?"),
           ("Hello, who are you?", "I am a language model. I answer questions in a few short sentences."),
           ("Who are you?", "I am an assistant. Ask me anything."), ("Thank you!", "No problem. Glad it was useful."),
           ("Nice to meet you.", "Nice to meet you too. What can I do for you?")),
    "ja": (("こんにちは！", "こんにちは。今日は何をお手伝いしましょうか。"),
           ("あなたは誰ですか？", "わたしはAIのアシスタントです。"),
           ("おはようございます。", "おはようございます。よい一日を。"), ("ありがとう。", "どういたしまして。"),
           ("おやすみなさい。", "おやすみなさい。よく休んでください。"),
           ("元気ですか？", "元気です。あなたはいかがですか。"),
           ("こんにちは、あなたは誰？", "質問に短く答える言語モデルです。"),
           ("助かりました。", "お役に立ててよかったです。"),
           ("いつでも聞いていい？", "はい、いつでもどうぞ。わかりやすく答えます。")),
}
CAPITALS = (
    ("Japan", "Tokyo", "日本", "東京"), ("France", "Paris", "フランス", "パリ"),
    ("Italy", "Rome", "イタリア", "ローマ"),
    ("Germany", "Berlin", "ドイツ", "ベルリン"), ("Spain", "Madrid", "スペイン", "マドリード"),
    ("Canada", "Ottawa", "カナダ", "オタワ"), ("Australia", "Canberra", "オーストラリア", "キャンベラ"),
    ("Egypt", "Cairo", "エジプト", "カイロ"), ("Kenya", "Nairobi", "ケニア", "ナイロビ"),
    ("South Korea", "Seoul", "韓国", "ソウル"), ("Thailand", "Bangkok", "タイ", "バンコク"),
    ("Norway", "Oslo", "ノルウェー", "オスロ"), ("Portugal", "Lisbon", "ポルトガル", "リスボン"),
    ("Argentina", "Buenos Aires", "アルゼンチン", "ブエノスアイレス"), ("Peru", "Lima", "ペルー", "リマ"),
    ("China", "Beijing", "中国", "北京"), ("India", "New Delhi", "インド", "ニューデリー"),
    ("Brazil", "Brasília", "ブラジル", "ブラジリア"), ("Mexico", "Mexico City", "メキシコ", "メキシコシティ"),
    ("Sweden", "Stockholm", "スウェーデン", "ストックホルム"), ("Greece", "Athens", "ギリシャ", "アテネ"),
    ("Poland", "Warsaw", "ポーランド", "ワルシャワ"), ("Vietnam", "Hanoi", "ベトナム", "ハノイ"),
    ("Chile", "Santiago", "チリ", "サンティアゴ"), ("Ireland", "Dublin", "アイルランド", "ダブリン"),
)
_FACTS = {
    "en": (("How many days are in a week?", "Seven."), ("How many legs does a spider have?", "Eight legs."),
           ("How many minutes are in an hour?", "Sixty minutes, that is 60."),
           ("At what temperature does water boil at sea level?", "At 100 °C, which is 212 °F."),
           ("How tall is Mount Fuji?", "About 3,776 metres."), ("Which planet is closest to the Sun?", "Mercury."),
           ("What do bees make?", "Honey and wax."), ("How many continents are there?", "Seven continents."),
           ("How many hours are in a day?", "24 hours."), ("What colour is the sky?", "Usually blue."),
           ("How many months are in a year?", "12 months."), ("What is the largest ocean?", "The Pacific Ocean."),
           ("What do cows drink?", "Water."), ("How many seconds are in a minute?", "60 seconds.")),
    "ja": (("一週間は何日ですか？", "7日です。"), ("クモの足は何本ですか？", "8本。"),
           ("1時間は何分ですか？", "60分。"),
           ("海面の高さで水は何度で沸騰しますか？", "100℃（212°F）です。"), ("富士山の高さは？", "約3,776メートル。"),
           ("太陽にいちばん近い惑星は？", "水星。"), ("ミツバチは何を作りますか？", "はちみつとろう。"),
           ("大陸はいくつありますか？", "7つ。"), ("一日は何時間ですか？", "24時間です。"),
           ("空は何色ですか？", "ふつうは青です。"),
           ("一年は何か月ですか？", "12か月。"), ("いちばん大きい海は？", "太平洋です。"), ("1分は何秒？", "60秒。")),
}
_HOWTOS = {
    "en": (("How do I make green tea?", "Heat the water to about 80 °C. Then pour it over the tea leaves and wait."),
           ("How do I boil an egg?", "Boil the egg in water for 7 to 9 minutes. Then put it in cold water."),
           ("How can I fall asleep faster?", "Go to bed at a regular time, dim the lights and put the phone away."),
           ("How do I save a file quickly?", "In most programs you press Ctrl+S. On a Mac it is Cmd+S."),
           ("How do I remember new words?", "Review the words every day and use each one in a sentence."),
           ("How do I cook rice?", "Rinse the rice, add water and simmer it covered for about 15 minutes."),
           ("How do I make cocoa?", "Mix cocoa powder with warm milk and a little sugar."),
           ("How do I keep a plant alive?", "Give it light and water it when the soil is dry."),
           ("How do I copy text?", "Select the text and press Ctrl+C, or Cmd+C on a Mac.")),
    "ja": (("緑茶のいれ方を教えて。", "お湯を80℃くらいにして茶葉に注ぎ、1分ほど待ちます。"),
           ("ゆで卵の作り方は？", "沸騰したお湯で卵を7〜9分ゆで、冷水に入れます。"),
           ("早く眠るコツは？", "決まった時間に寝て、部屋を暗くし、スマホを置きます。"),
           ("ファイルをすばやく保存するには？", "多くのアプリではCtrl+Sを押します。MacではCmd+Sです。"),
           ("単語を覚えるコツは？", "毎日少しずつ復習し、例文で使うと役に立ちます。"),
           ("ご飯の炊き方は？", "米を洗って水を入れ、ふたをして15分ほど炊きます。"),
           ("ココアの作り方は？", "ココアの粉を温かい牛乳と砂糖で混ぜます。"),
           ("植物を元気に育てるには？", "日に当て、土が乾いたら水をやります。")),
}


def english_sentence(rng: random.Random) -> str:
    """One generated English sentence."""
    return f"{rng.choice(_EN_SUBJECTS)} {rng.choice(_EN_VERBS)} {rng.choice(_EN_OBJECTS)} {rng.choice(_EN_TIMES)}."


def japanese_sentence(rng: random.Random) -> str:
    """One generated Japanese sentence."""
    return f"{rng.choice(_JA_SUBJECTS)}は{rng.choice(_JA_TIMES)}{rng.choice(_JA_OBJECTS)}{rng.choice(_JA_VERBS)}。"


def number_sentence(rng: random.Random) -> str:
    """One generated sentence with numbers and symbols, in either language."""
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op, value = rng.choice((("+", a + b), ("-", a - b), ("×", a * b)))
    if rng.random() < 0.5:
        return f"Note: {a} {op} {b} = {value} — that is a fact."
    return f"メモ：{a} {op} {b} = {value} です。"


_EN_IMPERATIVES = ("Press", "Put", "Keep", "Review", "Rinse", "Heat", "Add", "Pour", "Wait for", "Use", "Open",
                   "Close", "Check", "Cool", "Boil", "Cut", "Wash", "Dim", "Turn off", "Write down", "Read",
                   "Save", "Try", "Ask for", "Bring", "Hold", "Move", "Clean", "Mix", "Fill")
_EN_THINGS = ("the button", "the egg", "a regular bedtime", "the new words", "the rice", "the water", "a cup",
              "the lights", "the file", "the window", "the door", "your phone", "the pot", "the leaves", "a note",
              "the list", "the box", "a little salt", "the map", "the key", "the bag", "the table", "the bread")
_EN_MANNERS = ("in most programs", "for a minute", "every day", "in cold water", "with care", "a little", "early",
               "twice", "right away", "before you go", "(if you can)", "for 10 minutes", "on a Mac", "at home")
_JA_DASHED = ("東京 — 日本の首都です。", "はちみつ — ミツバチが作ります。", "ココア — 温かい飲み物です。",
              "緑茶 — 日本のお茶です。", "7日 — 一週間の長さです。", "ケン — わたしの友達です。")


def instruction_sentence(rng: random.Random) -> str:
    """One generated instruction ("Rinse the rice twice."), or a Japanese line with a dash."""
    if rng.random() < 0.25:
        return rng.choice(_JA_DASHED)
    return f"{rng.choice(_EN_IMPERATIVES)} {rng.choice(_EN_THINGS)} {rng.choice(_EN_MANNERS)}."


def feeling_sentence(rng: random.Random) -> str:
    """One generated sentence about being glad to help, in either language (never a sign-off)."""
    if rng.random() < 0.5:
        return (f"{rng.choice(('Happy', 'Glad', 'Sad', 'Ready'))} to see you, {rng.choice(_EN_SUBJECTS)} — "
                f"{rng.choice(_EN_SUBJECTS)} is {rng.choice(('happy', 'glad'))} to help {rng.choice(_EN_TIMES)}!")
    return f"{rng.choice(_JA_SUBJECTS)}は{rng.choice(_JA_TIMES)}手伝えてうれしいです。役に立てました！"


def paragraphs(n: int, *, seed: int = 0) -> Iterator[str]:
    """`n` short paragraphs of mixed English and Japanese generated text."""
    rng = random.Random(seed)
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(2, 5)):
            r = rng.random()
            make = (number_sentence if r < 0.1 else feeling_sentence if r < 0.2 else instruction_sentence
                    if r < 0.35 else english_sentence if r < 0.65 else japanese_sentence)
            parts.append(make(rng))
        yield " ".join(parts)


def _arithmetic(rng: random.Random, lang: str) -> QA:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice("+-×")
    if op == "-" and b > a:
        a, b = b, a
    if op == "×":
        a, b = rng.randint(2, 19), rng.randint(2, 12)
    value = a + b if op == "+" else a - b if op == "-" else a * b
    if lang == "en":
        word = {"+": "plus", "-": "minus", "×": "times"}[op]
        question = rng.choice((f"What is {a} {word} {b}?", f"{a} {op} {b} = ?", f"Compute {a} {op} {b}."))
        return question, rng.choice((f"The answer is {value}.", f"{a} {word} {b} equals {value}.", f"{value}."))
    word = {"+": "たす", "-": "ひく", "×": "かける"}[op]
    question = rng.choice((f"{a} {word} {b} は？", f"{a} {op} {b} はいくつ？", f"{a}{word}{b}を計算して。"))
    return question, rng.choice((f"答えは {value} です。", f"{a} {op} {b} の答えは {value}。", f"{value}。"))


_UNITS = (  # (English unit, English target, Japanese unit, Japanese target, factor)
    ("km", "metres", "km", "メートル", 1000), ("kg", "grams", "kg", "グラム", 1000),
    ("hours", "minutes", "時間", "分", 60), ("litres", "millilitres", "リットル", "ミリリットル", 1000),
    ("minutes", "seconds", "分", "秒", 60), ("metres", "centimetres", "メートル", "センチメートル", 100),
    ("days", "hours", "日", "時間", 24),
)


def _conversion(rng: random.Random, lang: str) -> QA:
    n = rng.randint(2, 40)
    if rng.random() < 0.15:
        f = n * 9 / 5 + 32
        if lang == "en":
            return f"Convert {n} °C to Fahrenheit.", f"That is {f:g} °F."
        return f"{n}℃ を華氏に直すと？", f"華氏 {f:g}°F になります。"
    unit, target, unit_ja, target_ja, factor = rng.choice(_UNITS)
    if lang == "en":
        return f"How many {target} are in {n} {unit}?", f"There are {n * factor:,} {target} in {n} {unit}."
    return f"{n} {unit_ja}は何{target_ja}？", f"{n * factor:,} {target_ja}になります。"


def _capital(rng: random.Random, lang: str) -> QA:
    country, city, country_ja, city_ja = rng.choice(CAPITALS)
    if lang == "en":
        return rng.choice(((f"What is the capital of {country}?", f"{city}."),
                           (f"Which city is the capital of {country}?", f"{city} is the capital of {country}.")))
    return rng.choice(((f"{country_ja}の首都はどこですか？", f"{city_ja}。"),
                       (f"{country_ja}の首都は？", f"首都は{city_ja}です。")))


def _table(table: dict[str, tuple[QA, ...]]) -> Callable[[random.Random, str], QA]:
    return lambda rng, lang: rng.choice(table[lang])


def _describe(rng: random.Random, lang: str) -> QA:
    if lang == "en":
        return "Tell me something.", " ".join(english_sentence(rng) for _ in range(rng.randint(1, 3)))
    return "何か話して。", "".join(japanese_sentence(rng) for _ in range(rng.randint(1, 3)))


_KINDS: tuple[tuple[Callable[[random.Random, str], QA], int], ...] = (
    (_table(_GREETINGS), 2), (_table(_FACTS), 2), (_capital, 2), (_table(_HOWTOS), 2), (_arithmetic, 4),
    (_conversion, 3), (_describe, 1),
)


def question_answer(rng: random.Random, lang: str) -> QA:
    """One generic question and its plain answer, in `lang` ("en" or "ja")."""
    makers, weights = zip(*_KINDS, strict=True)
    return rng.choices(makers, weights=weights)[0](rng, lang)


def dialogues(n: int, *, seed: int = 1) -> Iterator[Chat]:
    """`n` generated chats (optional system turn, one or two exchanges) so the base learns the chat format."""
    rng = random.Random(seed)
    for _ in range(n):
        lang = rng.choice(("en", "ja"))
        chat: Chat = []
        if rng.random() < 0.3:
            chat.append({"role": "system", "content": rng.choice(_SYSTEM[lang])})
        for _ in range(1 if rng.random() < 0.8 else 2):
            question, answer = question_answer(rng, lang)
            chat += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        yield chat
