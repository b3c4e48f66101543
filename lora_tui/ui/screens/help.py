"""F1: what each LoRA setting does, in plain words, with the guide's figures."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

HELP_TEXT = """\
# LoRA settings, briefly

LoRA leaves the model's weights frozen and learns a small correction for chosen layers: for a layer with a
weight W of shape (out x in), it learns B (out x r) and A (r x in) and adds `(alpha / r) * B @ A` to W.
Only A and B are trained, so the trainable parameters per layer are `r x (in + out)`.

**Example (Gemma 3 1B, `q_proj`).** The layer maps 1152 -> 1024 (4 query heads x head size 256; the guide's
1152 -> 1152 is wrong). Frozen: 1,179,648 weights. r = 16 adds 16 x (1152 + 1024) = 34,816 (2.95%);
r = 32 adds 69,632 (5.90%).

## r (rank) `--lora-r`
The width of the correction. Small (4-8): least memory and fastest, but it can only learn simple changes
(style, tone; tight memory). Middle (16-32): the usual choice. Large (64-128): more capacity for complex tasks
and big datasets, at the cost of memory and time. Parameters grow linearly with r.

## alpha `--lora-alpha`
Scales the correction by alpha / r. alpha = r (scaling 1.0) is conservative and stable; alpha = 2r (2.0) is the
guide's standard; alpha = 4r (4.0) is aggressive: bigger changes, so watch the learning rate. In
`adapter_config.json` the key is `lora_alpha` (not `alpha`, as the guide shows). With rsLoRA the scaling is
alpha / sqrt(r).

## dropout `--lora-dropout`
Randomly zeroes part of the LoRA branch's input while training. 0 learns fastest but overfits more easily;
0.05-0.1 is the common light regularisation; 0.2-0.3 fights overfitting hard and may limit learning.

## target modules `--target-modules`
Which layers get a correction. Minimal `q_proj, v_proj`: least memory. Standard `q_proj, k_proj, v_proj,
o_proj`: all of attention, the guide's recommendation. Maximum adds the MLP's `gate_proj, up_proj, down_proj`:
the most capacity, and the MLP matters for style and tone. `all-linear` targets every linear layer but the head.

## learning rate `--learning-rate`
The guide's starting points by task: chat 5e-5, domain knowledge 3e-5, code 2e-5 (structured output wants
stable steps), style 1e-4 (a small change learned quickly). Smaller datasets tolerate a higher rate
(1e-4 under 1K examples), larger ones want a lower one (2e-5 over 10K).

## batch size and accumulation `--batch-size`, `--gradient-accumulation-steps`
The batch is how many examples go through the GPU at once; accumulation adds up that many batches before each
update. Their product is the effective batch: the guide keeps it at 16 on every GPU size (1 x 16 under 8 GB,
2 x 8 at 8-16 GB, 4 x 4 above 16 GB), trading memory for time without changing what is learned.

## When things go wrong
Loss not falling: raise the learning rate (e.g. 5e-5 -> 1e-4), alpha (32 -> 64) or r (16 -> 32).
Overfitting: more dropout (0.05 -> 0.1), a lower rate (5e-5 -> 3e-5), a lower r (16 -> 8).
Out of memory: batch 1 (with more accumulation), r 8, only q/v, gradient checkpointing.
Slow convergence: less warmup (0.1), weight decay 0.01, a larger r (32, alpha 64).
The monitor watches for these and offers the change as a new run (key a).
"""
"""The help text (Markdown)."""


class HelpScreen(ModalScreen[None]):
    """The LoRA parameters explained; Escape or F1 closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Close the help", id="help-close"),
        Binding("f1", "close", "Close", show=False, id="help-close-f1"),
    ]

    def compose(self) -> ComposeResult:
        """The help text in a scrolling pane."""
        with VerticalScroll(id="help-pane"):
            yield Markdown(HELP_TEXT, id="help-text")
        yield Footer()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
