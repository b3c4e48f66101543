"""F1: what each LoRA setting does, in plain words, with the guide's figures and where the guide is wrong."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

from lora_tui.i18n import N_, _
from lora_tui.ui.screens.base import translate_bindings

INTRO = N_("""\
# LoRA settings, briefly

LoRA leaves the model's weights frozen and learns a small correction for chosen layers: for a layer with a
weight W of shape (out x in), it learns B (out x r) and A (r x in) and adds `(alpha / r) * B @ A` to W.
Only A and B are trained, so the trainable parameters per layer are `r x (in + out)`.

**Example (Gemma 3 1B, `q_proj`).** The layer maps 1152 -> 1024 (4 query heads x head size 256; the guide's
1152 -> 1152 is wrong). Frozen: 1,179,648 weights. r = 16 adds 16 x (1152 + 1024) = 34,816 (2.95%);
r = 32 adds 69,632 (5.90%).

## advice (the Advisor's switch, `--advice`)
Which advice fills the settings you leave alone. **The guide's tables** (the default) apply the guide exactly.
**Current LoRA practice** keeps the guide's r, alpha and dropout and takes a learning rate of about 2e-4 (scaled
for r and data), all linear projections and 1-3 epochs. Either way, each reason names its exact source (a guide
table row, a worked example, the guide's script, or lora-tui's own default) and shows the other advice's value
where they differ.
""")

SECTIONS: tuple[tuple[str, str], ...] = (
    ("lora_r", N_("""\
## r (rank) `--lora-r`
The width of the correction. Small (4-8): least memory and fastest, but it can only learn simple changes
(style, tone; tight memory). Middle (16-32): the usual choice. Large (64-128): more capacity for complex tasks
and big datasets, at the cost of memory and time. Parameters grow linearly with r. With a model and a GPU
size, the guide's VRAM row is advisory: the memory estimate decides and the reason gives both figures.
""")),
    ("lora_alpha", N_("""\
## alpha `--lora-alpha`
Scales the correction by alpha / r. alpha = r (scaling 1.0) is conservative and stable; alpha = 2r (2.0) is the
guide's standard; alpha = 4r (4.0) is aggressive: bigger changes, so watch the learning rate. With rsLoRA the
scaling is alpha / sqrt(r).
""")),
    ("lora_dropout", N_("""\
## dropout `--lora-dropout`
Randomly zeroes part of the LoRA branch's input while training. 0 learns fastest but overfits more easily;
0.05-0.1 is the common light regularisation; 0.2-0.3 fights overfitting hard and may limit learning.
""")),
    ("target_modules", N_("""\
## target modules `--target-modules`
Which layers get a correction. Minimal `q_proj, v_proj`: least memory. Standard `q_proj, k_proj, v_proj,
o_proj`: all of attention, the guide's recommendation. Maximum adds the MLP's `gate_proj, up_proj, down_proj`:
the most capacity, and the MLP matters for style and tone. `all-linear` targets every linear layer but the head.
""")),
    ("learning_rate", N_("""\
## learning rate `--learning-rate`
The guide's starting points by task: chat 5e-5, domain knowledge 3e-5, code 2e-5 (structured output wants
stable steps), style 1e-4 (a small change learned quickly). By data size: 1e-4 under 1K examples (which
applies even with a task, unless you set a rate), 5e-5 at 1K-10K, 2e-5 over 10K. Current practice: about 2e-4.
""")),
    ("num_train_epochs", N_("""\
## epochs `--epochs`
Passes over the data. The guide's worked examples use 3 (dialogue), 5 (code) and 2 (lightweight); current
practice uses 1-3, since more passes over the same data mostly memorise it.
""")),
    ("per_device_train_batch_size", N_("""\
## batch size and accumulation `--batch-size`, `--gradient-accumulation-steps`
The batch is how many examples go through the GPU at once; accumulation adds up that many batches before each
update. Their product is the effective batch: the guide keeps it at 16 on every GPU size (1 x 16 under 8 GB,
2 x 8 at 8-16 GB, 4 x 4 above 16 GB), trading memory for time without changing what is learned.
""")),
    ("warmup_ratio", N_("""\
## warmup `--warmup-ratio`
The share of the steps over which the learning rate ramps up from 0. lora-tui starts at 0.1.
""")),
)
"""The per-parameter sections, each with the TrainingPlan field whose errata follow it."""

TROUBLE = N_("""\
## When things go wrong
Loss not falling: raise the learning rate (e.g. 5e-5 -> 1e-4), alpha (32 -> 64) or r (16 -> 32).
Overfitting: more dropout (0.05 -> 0.1), a lower rate (5e-5 -> 3e-5), a lower r (16 -> 8).
Out of memory: batch 1 (with more accumulation), r 8, only q/v, gradient checkpointing.
Slow convergence: less warmup (0.1), weight decay 0.01, a larger r (32, alpha 64).
The monitor watches for these and offers the change as a new run (key a).
""")


def help_text() -> str:
    """The help (Markdown): each parameter's section followed by where the guide is wrong or out of date about
    it (presets/practice.toml's `[[guide_errata]]`, the same table the README lists)."""
    from lora_tui.core.tables import practice

    errata = practice().errata
    parts = [_(INTRO)]
    for setting, text in SECTIONS:
        parts.append(_(text))
        for e in (e for e in errata if e.setting == setting):
            parts.append(_("*Where the guide is wrong or out of date: {title}.* The guide: {guide}. "
                           "In truth: {truth}\n").format(title=_(e.title), guide=_(e.guide), truth=_(e.truth)))
    parts.append(_(TROUBLE))
    return "\n".join(parts)


class HelpScreen(ModalScreen[None]):
    """The LoRA parameters explained; Escape or F1 closes it."""

    BINDINGS = [
        Binding("escape", "close", N_("Close"), tooltip=N_("Close the help"), id="help-close"),
        Binding("f1", "close", N_("Close"), show=False, id="help-close-f1"),
    ]

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    async def relocalize(self) -> None:
        """Show the help in the current language."""
        translate_bindings(self)
        await self.recompose()

    def compose(self) -> ComposeResult:
        """The help text in a scrolling pane."""
        with VerticalScroll(id="help-pane"):
            yield Markdown(help_text(), id="help-text")
        yield Footer()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
