"""One base model in memory with any number of adapters on it: answers with and without each adapter.

The base is loaded once; the first adapter wraps it in a PeftModel, later ones are added with `load_adapter`
and chosen with `set_adapter` (the guide's "managing several adapters"). The base model's own answer is
produced with the adapter disabled (`with model.disable_adapter():`), so no second copy of the base is needed.

A `core.progress.ProgressTracker` handed in is told each wait: loading the base and each adapter (elapsed time)
and generating (tokens of the limit, time left at most); its cancel request ends a generation at the next token
(the answer so far is returned).

Heavy: imports torch, transformers and peft. Import this module lazily.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList, TextStreamer

from lora_tui.core import adapters as core_adapters
from lora_tui.core import runs
from lora_tui.core.plan import load_run_file
from lora_tui.core.progress import ProgressTracker
from lora_tui.errors import UserError
from lora_tui.i18n import _
from lora_tui.train.quiet import quiet_libraries

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
"""Files that mean a directory carries its own tokenizer."""
_LORA_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$")
"""A saved LoRA matrix key: the module path and which matrix (A: r x in, B: out x r)."""
TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
"""Merge/inference dtype names to torch dtypes."""


@dataclass
class GenerationSettings:
    """How answers are generated."""

    max_new_tokens: int = 128
    """Most tokens generated per answer."""
    temperature: float = 0.0
    """0 means greedy (deterministic); above 0 samples with this temperature and a fixed seed."""
    system: str | None = None
    """Optional system message put before each prompt."""
    seed: int = 0
    """Seed set before each sampled answer, so runs repeat."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens <= 0:
            raise UserError(_("--max-new-tokens must be a positive integer, got {value}").format(
                value=self.max_new_tokens))
        if not (0 <= self.temperature <= 5):
            raise UserError(_("--temperature must be in [0, 5], got {value}").format(value=self.temperature))


# ---- finding the base model -----------------------------------------------------------------------------


def _local_model_dir(name: str, relative_to: Path) -> Path | None:
    for candidate in (Path(name).expanduser(), relative_to / name):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    return None


def _run_model(adapter: Path) -> str | None:
    """`model` from the run file of the run this adapter belongs to (e.g. `demo`)."""
    for candidate in (adapter, adapter.parent, adapter.parent.parent):
        if (candidate / runs.RUN_FILE).is_file():
            try:
                settings, _sources = load_run_file(candidate / runs.RUN_FILE)
            except UserError:
                return None
            model = settings.get("model")
            return model if isinstance(model, str) else None
    return None


def trained_in_4bit(adapter: str | Path) -> bool:
    """Whether the run this adapter belongs to loaded its base in 4-bit (`load_in_4bit` in its run file)."""
    a = Path(adapter)
    for candidate in (a, a.parent, a.parent.parent):
        if (candidate / runs.RUN_FILE).is_file():
            try:
                settings, _sources = load_run_file(candidate / runs.RUN_FILE)
            except UserError:
                return False
            return settings.get("load_in_4bit") is True
    return False


def _demo_dir() -> Path:
    from lora_tui.train.demo import ensure_demo_model

    return Path(ensure_demo_model())


def _hub_cache_dir(name: str) -> Path | None:
    if name.count("/") != 1 or os.path.isabs(name):
        return None
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        return None
    return path if (path / "config.json").is_file() else None


def resolve_base(adapter: str | Path, base: str | None = None) -> Path:
    """The local directory of the adapter's base model: --base, the config's path, the run's model, the cache.

    UserError naming the adapter and the base when none of them is available offline.
    """
    a = Path(adapter)
    names = [base] if base else []
    if not base:
        config = core_adapters.read_adapter_config(a)
        names += [n for n in (config.get("base_model_name_or_path"), _run_model(a)) if n]
    for name in names:
        found = _local_model_dir(name, a)
        if found is None and name == "demo":
            found = _demo_dir()
        if found is None:
            found = _hub_cache_dir(name)
        if found is not None:
            return found
    if not names:
        raise UserError(_("adapter {adapter}: its adapter_config.json names no base model; pass --base PATH").format(
            adapter=a))
    flag = "--base" if base else "base_model_name_or_path"
    raise UserError(_("adapter {adapter}: base model {base} ({flag}) is not available offline (not a local "
                      "directory, not in the Hugging Face cache); download it or pass --base PATH").format(
                          adapter=a, base=repr(names[0]), flag=flag))


def _has_tokenizer(path: Path) -> bool:
    return any((path / f).is_file() for f in TOKENIZER_FILES)


def pick_device(device: str = "auto") -> str:
    """`auto` -> cuda when available, else mps, else cpu; explicit names are checked."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(_("--device cuda: no CUDA GPU is available; use --device cpu"))
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError(_("--device mps: no Apple GPU (MPS) is available; use --device cpu"))
    return device


class _CallbackStreamer(TextStreamer):
    """TextStreamer that hands each finished piece of text to a callback instead of printing it."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_text(text)


class _CountTokens(StoppingCriteria):
    """Tells the tracker each generated token; stops the generation when a cancel was asked for."""

    def __init__(self, tracker: ProgressTracker, prompt_tokens: int) -> None:
        self.tracker, self.prompt_tokens = tracker, prompt_tokens

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        self.tracker.advance(done=int(input_ids.shape[1]) - self.prompt_tokens)
        stop = self.tracker.cancel.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class AdapterSession:
    """A base model loaded once, with named adapters loaded onto it."""

    def __init__(self, base_dir: str | Path, *, device: str = "auto", dtype: str | None = None,
                 four_bit: bool = False, tracker: ProgressTracker | None = None) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.device = pick_device(device)
        dtype = dtype or ("bf16" if self.device == "cuda" and torch.cuda.is_bf16_supported() else "fp32")
        self.dtype = dtype
        self.four_bit = four_bit
        """The base is loaded in 4-bit NF4, as a QLoRA adapter was trained (bitsandbytes places it itself)."""
        quiet_libraries()
        if tracker is not None:
            stage = _("loading base model {name} ({dtype}, 4-bit) on {device}") if four_bit else \
                _("loading base model {name} ({dtype}) on {device}")
            tracker.stage(stage.format(name=self.base_dir.name, dtype=dtype, device=self.device))
        try:
            if four_bit:
                from lora_tui.train.quant import FourBitUnavailable, load_four_bit_for_inference

                try:
                    base = load_four_bit_for_inference(str(self.base_dir), dtype)
                except FourBitUnavailable as exc:
                    raise UserError(str(exc)) from None
            else:
                base = AutoModelForCausalLM.from_pretrained(self.base_dir, dtype=TORCH_DTYPES[dtype])
        except (OSError, ValueError) as exc:
            raise UserError(_("base model {path}: cannot be loaded ({error})").format(
                path=self.base_dir, error=_first_line(exc))) from None
        self.base: Any = (base if four_bit else base.to(self.device)).eval()
        self.model: Any = None
        self.adapters: dict[str, Path] = {}
        self.tokenizers: dict[str | None, Any] = {}
        if _has_tokenizer(self.base_dir):
            self.tokenizers[None] = AutoTokenizer.from_pretrained(self.base_dir)

    @classmethod
    def for_adapters(cls, paths: Sequence[str | Path], *, base: str | None = None, device: str = "auto",
                     dtype: str | None = None, tracker: ProgressTracker | None = None) -> AdapterSession:
        """Load the shared base of `paths` once and every adapter onto it (UserError if bases differ)."""
        bases = [(Path(p), resolve_base(p, base)) for p in paths]
        first_path, first_base = bases[0]
        for path, other in bases[1:]:
            if other != first_base:
                raise UserError(_("adapters {first} and {other} have different base models ({first_base} vs "
                                  "{other_base}); compare adapters of one base at a time").format(
                                      first=first_path, other=path, first_base=first_base, other_base=other))
        four_bit = {trained_in_4bit(p) for p in paths}
        if len(four_bit) > 1:
            raise UserError(_("these adapters were trained on the base in different precisions (4-bit and 16-bit); "
                              "compare adapters trained the same way, or try each on its own"))
        session = cls(first_base, device=device, dtype=dtype, four_bit=four_bit.pop(), tracker=tracker)
        for adapter in paths:
            session.add(adapter, tracker=tracker)
        return session

    # ---- adapters -------------------------------------------------------------------------------------

    def add(self, path: str | Path, name: str | None = None, *, tracker: ProgressTracker | None = None) -> str:
        """Load an adapter onto the base; returns its name. UserError for damaged or mismatched adapters."""
        p = Path(path).resolve()
        for existing, existing_path in self.adapters.items():
            if existing_path == p:
                return existing
        name = name or _unique_name(p, self.adapters)
        if tracker is not None:
            tracker.stage(_("loading adapter {name} onto the base").format(name=p.name))
        header = self._check_files(p)
        tokenizer = AutoTokenizer.from_pretrained(p) if _has_tokenizer(p) else self.tokenizers.get(None)
        if tokenizer is None:
            raise UserError(_("adapter {adapter}: no tokenizer in the adapter or in base {base}").format(
                adapter=p, base=self.base_dir))
        self._check_tokenizer(p, tokenizer)
        self._check_shapes(p, header)
        try:
            if self.model is None:
                self.model = PeftModel.from_pretrained(self.base, p, adapter_name=name, is_trainable=False)
            else:
                self.model.load_adapter(p, adapter_name=name, is_trainable=False)
        except RuntimeError as exc:
            if "size mismatch" in str(exc):
                raise UserError(_("adapter {adapter}: made for a different architecture than base {base} ({error}); "
                                  "load it with the base it was trained on (--base)").format(
                                      adapter=p, base=self.base_dir, error=_mismatch_line(exc))) from None
            raise
        except ValueError as exc:
            if "not found in the base model" in str(exc) or "Target modules" in str(exc):
                raise UserError(_("adapter {adapter}: its target modules do not exist in base {base}; load it with "
                                  "the base it was trained on (--base)").format(
                                      adapter=p, base=self.base_dir)) from None
            raise
        (self.model if self.four_bit else self.model.to(self.device)).eval()
        self.adapters[name] = p
        self.tokenizers[name] = tokenizer
        return name

    def _check_files(self, p: Path) -> dict[str, Any]:
        core_adapters.read_adapter_config(p)
        weights = p / core_adapters.WEIGHTS_FILE
        if not weights.is_file():
            raise UserError(_("adapter {adapter}: {file} is missing (an interrupted save?); use a complete checkpoint "
                              "or save the adapter again").format(adapter=p, file=core_adapters.WEIGHTS_FILE))
        return core_adapters.read_safetensors_header(weights)

    def _check_tokenizer(self, p: Path, tokenizer: Any) -> None:
        rows = self.base.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > rows:
            raise UserError(_("adapter {adapter}: its tokenizer has {tokens} tokens but base {base} embeds only "
                              "{rows}; it was trained with another tokenizer: use its base (--base)").format(
                                  adapter=p, tokens=len(tokenizer), base=self.base_dir, rows=rows))

    def _check_shapes(self, p: Path, header: dict[str, Any]) -> None:
        """Every LoRA matrix in the file must fit a module of the base: else another architecture.

        Checked from the safetensors header before PEFT touches the model, so a refused adapter leaves the
        loaded base and the other adapters as they were.
        """
        for key, meta in header.items():
            m = _LORA_KEY.match(key)
            if not m:
                continue
            module_path, which = m.groups()
            try:
                module = self.base.get_submodule(module_path)
            except AttributeError:
                raise UserError(_("adapter {adapter}: has weights for `{module}`, which base {base} does not have; it "
                                  "was trained on another architecture: use its base (--base)").format(
                                      adapter=p, module=module_path, base=self.base_dir)) from None
            weight = getattr(module, "weight", None)
            if weight is None or weight.ndim != 2:
                continue
            out_f, in_f = weight.shape
            if hasattr(module, "in_features") and hasattr(module, "out_features"):  # 4-bit weights are packed
                in_f, out_f = module.in_features, module.out_features
            if type(module).__name__ == "Conv1D":  # GPT-2 style: weight is (in, out)
                in_f, out_f = out_f, in_f
            shape = meta.get("shape", [])
            got = shape[1] if which == "A" else shape[0]
            want = in_f if which == "A" else out_f
            if got != want:
                message = _("adapter {adapter}: `{module}` has input size {got} in the adapter but {want} in base "
                            "{base}; it was trained on another architecture: use its base (--base)") if which == "A" \
                    else _("adapter {adapter}: `{module}` has output size {got} in the adapter but {want} in base "
                           "{base}; it was trained on another architecture: use its base (--base)")
                raise UserError(message.format(adapter=p, module=module_path, got=got, want=want, base=self.base_dir))

    # ---- answers --------------------------------------------------------------------------------------

    def tokenizer_for(self, adapter: str | None) -> Any:
        """The adapter's tokenizer; for the base, the base's own or else the first adapter's."""
        if adapter in self.tokenizers:
            return self.tokenizers[adapter]
        return next(iter(self.tokenizers.values()))

    def encode(self, prompt: str, adapter: str | None, system: str | None = None) -> dict[str, Any]:
        """Token ids of the prompt through the chat template (plain text when the tokenizer has none)."""
        tok = self.tokenizer_for(adapter)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
        else:
            enc = tok("\n".join(m["content"] for m in messages), return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def answer(self, prompt: str, adapter: str | None, settings: GenerationSettings | None = None,
               on_text: Callable[[str], None] | None = None, tracker: ProgressTracker | None = None) -> str:
        """Generate one answer; `adapter=None` is the base model alone. `on_text` receives text as it comes;
        `tracker` counts the tokens, and its cancel request ends the answer early (what came so far is returned)."""
        settings = settings or GenerationSettings()
        tok = self.tokenizer_for(adapter)
        inputs = self.encode(prompt, adapter, settings.system)
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.temperature > 0,
                                  "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None
                                  else tok.eos_token_id}
        if settings.temperature > 0:
            kwargs["temperature"] = settings.temperature
            torch.manual_seed(settings.seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if on_text is not None:
            kwargs["streamer"] = _CallbackStreamer(tok, on_text)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        if tracker is not None:
            stage = _("generating the base model's answer") if adapter is None else \
                _("generating the {adapter}'s answer").format(adapter=adapter)
            tracker.stage(stage, settings.max_new_tokens, "tokens", at_most=True)
            kwargs["stopping_criteria"] = StoppingCriteriaList([_CountTokens(tracker, prompt_tokens)])
        with torch.inference_mode(), self._using(adapter):
            out = self._model_for(adapter).generate(**inputs, **kwargs)
        if tracker is not None:
            tracker.advance(done=int(out.shape[1]) - prompt_tokens)
        return tok.decode(out[0, prompt_tokens:], skip_special_tokens=True)

    def logits(self, input_ids: Any, adapter: str | None) -> Any:
        """Logits of a probe batch with the adapter (or the base alone when None)."""
        with torch.inference_mode(), self._using(adapter):
            return self._model_for(adapter)(input_ids=input_ids.to(self.device)).logits.float().cpu()

    def _model_for(self, adapter: str | None) -> Any:
        return self.base if self.model is None else self.model

    def _using(self, adapter: str | None) -> Any:
        """Context in which the model answers as `adapter` (None: adapters disabled)."""
        import contextlib

        if self.model is None:
            if adapter is not None:
                raise KeyError(adapter)
            return contextlib.nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        if adapter not in self.adapters:
            raise KeyError(adapter)
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()


def _unique_name(path: Path, taken: dict[str, Path]) -> str:
    base = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.name) or "adapter"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _mismatch_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if "size mismatch" in line:
            return line.strip().removeprefix("size mismatch for ")[:240]
    return _first_line(exc)
