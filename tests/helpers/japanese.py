"""What a Japanese screen or command may still show in English: names, and the messages of modules a later part
translates. `english_words(text)` returns the rest, so a new English message fails the test that shows it."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from lora_tui.core.plan import BATCHING, TrainingPlan

NAMES = {
    "LoRA", "QLoRA", "DoRA", "rsLoRA", "GPU", "GPUs", "CPU", "RAM", "VRAM", "NVML", "CUDA", "MIG", "MPS", "NVIDIA",
    "GeForce", "RTX", "Apple", "JSON", "JSONL", "CSV", "TSV", "Parquet", "Arrow", "TOML", "PEFT", "TRL", "MLP",
    "Transformers", "Unsloth", "LLaMA-Factory", "axolotl", "AdamW", "Attention", "Gemma", "Koko", "Happy", "help",
    "GB", "GiB", "MB", "MiB", "KB", "fp32", "bf16", "fp16", "NF4", "B", "K", "lora-tui", "demo", "sample",
    "chat", "domain", "code", "style", "guide", "practice", "standard", "minimal", "maximum", "conservative",
    "aggressive", "low", "high", "best", "last", "none", "auto", "fused", "full", "on", "off", "all-linear",
    "cuda", "cpu", "mps", "ok", "r", "alpha", "dropout", "in", "out", "x", "sqrt", "lr", "Escape", "Enter",
    "ctrl", "tab", "shift", "LLaMA", "Factory", "llama", "smollm", "qwen", "Qwen", "gemma", "Phi",
    "jsonl", "toml", "runs", "cache", "Test", "TUI", "hub", "id", "monitor", "config", "json", "safetensors",
    "plain", "text", "messages", "prompt", "input", "response", "system", "tokenizer", "chatml",
    "proj", "e", "q", "k", "v", "o", "p", "c", "f", "d", "g", "l", "n", "s", "t", "y", "b", "i", "a",
    "sweep", "tokens", "schema", "train", "KiB", "CC", "esc", "LoraConfig", "all", "assistant", "user", "DIR",
    "FILE", "N", "M", "LM", "torch", "m", "W", "ddp", "fsdp", "DDP", "FSDP", "pid", "tool", "null",
    "FlashAttention", "Compute", "Capability", "nvidia-smi",
}
"""Words that are names (libraries, units, formats, keys, flag values) and stay as they are."""

SETTINGS = set(TrainingPlan.field_names()) | set(BATCHING)
"""Setting names (lora_r, learning_rate, ...) and the batching choices are names too."""

LEFT_FOR_LATER = (
    # Textual's own command palette entries
    r"Search for commands…",
)
"""Messages shown by modules another part translates (each names its module)."""

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")


def plain(content: object) -> str:
    """A widget's content (a string, rich Text or a rich renderable such as a Table) as plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, Text):
        return content.plain
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


def screen_texts(screen: Any, *, skip: Sequence[str] = ()) -> dict[str, str]:
    """What each shown widget of a screen reads (labels, content, table headers and cells, placeholders, the
    footer's bindings, the header), keyed by the widget's id or type; widgets with an id in `skip` (they show
    data, not messages) are left out."""
    from textual.widgets import Button, Collapsible, DataTable, Input, Markdown, Static
    from textual.widgets._toggle_button import ToggleButton

    out: dict[str, str] = {"header": f"{screen.app.title} {screen.app.sub_title}"}
    for i, w in enumerate(screen.query("*")):
        if not w.display or any(a.id in skip for a in w.ancestors_with_self):
            continue
        if any(isinstance(a, Markdown) for a in w.ancestors):  # read as the Markdown's source
            continue
        key = f"{w.id or type(w).__name__}#{i}"
        if isinstance(w, (Button, ToggleButton)):
            out[key] = plain(w.label)
        elif isinstance(w, Collapsible):
            out[key] = w.title
        elif isinstance(w, Static):
            out[key] = plain(w.content)
        elif isinstance(w, DataTable):
            cells = [plain(c.label) for c in w.columns.values()]
            cells += [plain(v) for r in range(w.row_count) for v in w.get_row_at(r)]
            out[key] = "\n".join(cells)
        elif isinstance(w, Input):
            out[key] = w.placeholder
        elif isinstance(w, Markdown):
            out[key] = w.source
    out["footer"] = "\n".join(b.binding.description for b in screen.active_bindings.values()
                              if b.binding.show and b.binding.description)
    return out


def english_words(text: str, *, left_for_later: tuple[str, ...] = LEFT_FOR_LATER) -> list[str]:
    """Words of `text` that read as English: not a name, a setting, a flag, a path, or a model id."""
    for pattern in left_for_later:
        text = re.sub(pattern, " ", text)
    text = re.sub(r"--[\w-]+|\S*[/\\]\S*|\S+\.(jsonl|json|toml|py|log)\b|\S*_\S*|\S*\d\S*|`[^`]*`", " ", text)
    words = []
    for word in _WORD.findall(text):
        if word in NAMES or word.lower() in NAMES or word in SETTINGS:
            continue
        words.append(word)
    return words
