"""AdapterSession on a tiny base: each adapter's own output on a shared base, and every loading error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_tui.core.progress import Progress, ProgressTracker
from lora_tui.errors import UserError
from lora_tui.inference.session import AdapterSession, GenerationSettings, resolve_base
from tests.helpers.adapter_fixtures import build_tiny_base, probe_ids, train_adapter

GREEDY = GenerationSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def session(adapter_pair: tuple[Path, Path]) -> AdapterSession:
    return AdapterSession.for_adapters(list(adapter_pair), device="cpu")


def alone_logits(base: Path, adapter: Path | None, ids: torch.Tensor) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    with torch.inference_mode():
        return model.eval()(input_ids=ids).logits.float()


def test_compare_gives_each_adapters_own_output(session: AdapterSession, tiny_base: Path,
                                                adapter_pair: tuple[Path, Path]) -> None:
    ids = probe_ids(session.base.config.vocab_size)
    names = list(session.adapters)
    assert names == ["chat", "code"]
    base_alone = alone_logits(tiny_base, None, ids)
    # in a mixed order, to show switching has no memory of the previous adapter
    for name, path in [("code", adapter_pair[1]), ("chat", adapter_pair[0]), (None, None), ("code", adapter_pair[1])]:
        got = session.logits(ids, name)
        want = alone_logits(tiny_base, path, ids) if path else base_alone
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # the adapters really change the model, and differently
    assert (session.logits(ids, "chat") - base_alone).abs().max() > 1e-3
    assert (session.logits(ids, "chat") - session.logits(ids, "code")).abs().max() > 1e-3


def test_answers_are_deterministic_and_streamed(session: AdapterSession) -> None:
    pieces: list[str] = []
    first = session.answer("hello world", "chat", GREEDY, on_text=pieces.append)
    assert first == session.answer("hello world", "chat", GREEDY)
    assert "".join(pieces).strip() == first.strip()
    assert first.strip() != ""


def test_generation_progress_counts_each_token_and_a_cancel_stops_at_the_next(session: AdapterSession) -> None:
    import threading

    events: list[Progress] = []
    settings = GenerationSettings(max_new_tokens=12)
    tracker = ProgressTracker(events.append, min_interval=0)
    full = session.answer("hello world", "chat", settings, tracker=tracker)
    counts = [e.done for e in events]
    assert counts[0] == 0 and counts == sorted(counts) and 0 < counts[-1] <= 12
    # one event a token (min_interval 0), then the count generate returned: nothing skipped or counted twice
    assert counts[:-1] == list(range(len(counts) - 1)) and counts[-1] == counts[-2]
    assert full == session.answer("hello world", "chat", settings)  # counting changes nothing in the answer
    assert {e.stage for e in events} == {"generating the chat's answer"} and events[0].total == 12
    assert all(e.at_most for e in events) and "at most" in events[-2].describe()

    cancel = threading.Event()

    def stop_after_three(event: Progress) -> None:
        if event.done >= 3:
            cancel.set()

    stopped = session.answer("hello world", "chat", settings,
                             tracker=ProgressTracker(stop_after_three, cancel, min_interval=0))
    assert full.startswith(stopped) and len(stopped) < len(full)  # the same answer, cut after its third token


def test_loading_tells_the_base_then_each_adapter(adapter_pair: tuple[Path, Path]) -> None:
    events: list[Progress] = []
    AdapterSession.for_adapters(list(adapter_pair), device="cpu", tracker=ProgressTracker(events.append))
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages[0].startswith("loading base model ") and stages[0].endswith(" on cpu")
    assert stages[1:] == ["loading adapter chat onto the base", "loading adapter code onto the base"]


def test_base_answer_matches_plain_base_model(session: AdapterSession, tiny_base: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_base)
    text = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=False)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    want = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert session.answer("hello", None, GREEDY) == want


def test_generation_settings_validate() -> None:
    with pytest.raises(UserError, match="--max-new-tokens"):
        GenerationSettings(max_new_tokens=0)
    with pytest.raises(UserError, match="--temperature"):
        GenerationSettings(temperature=-1)


# ---- errors -------------------------------------------------------------------------------------------


def copy_adapter(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_base_model(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    ad = copy_adapter(adapter_pair[0], tmp_path / "ad")
    cfg = json.loads((ad / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someorg/not-downloaded-model"
    (ad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"adapter .*ad: base model 'someorg/not-downloaded-model' .* not available "
                                        r"offline.*--base"):
        resolve_base(ad)


def test_other_architecture(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    wide = build_tiny_base(tmp_path / "wide", hidden=96)
    with pytest.raises(UserError, match=r"adapter .*chat: `model.layers.0.self_attn.q_proj` has input size 64 "
                                        r"in the adapter but 96 in base"):
        AdapterSession.for_adapters([adapter_pair[0]], base=str(wide), device="cpu")
    deep_base = build_tiny_base(tmp_path / "deep", layers=3)
    deep = train_adapter(deep_base, tmp_path / "deep-ad", state=None, loss_log=False)
    session = AdapterSession.for_adapters([adapter_pair[0]], device="cpu")
    with pytest.raises(UserError, match=r"`model.layers.2.self_attn.q_proj`, which base .* does not have"):
        session.add(deep)
    # the refused adapter left the session intact
    assert list(session.adapters) == ["chat"] and session.answer("hi", "chat", GREEDY) is not None


def test_corrupt_adapter_files(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    ad = copy_adapter(adapter_pair[0], tmp_path / "trunc")
    weights = ad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(UserError, match=r"trunc/adapter_model.safetensors: truncated"):
        AdapterSession.for_adapters([ad], device="cpu")
    ad2 = copy_adapter(adapter_pair[0], tmp_path / "noconfig")
    (ad2 / "adapter_config.json").unlink()
    with pytest.raises(UserError, match=r"noconfig: no adapter_config.json \(the weights are there"):
        AdapterSession.for_adapters([ad2], device="cpu")


def test_tokenizer_mismatch(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    ad = copy_adapter(adapter_pair[0], tmp_path / "bigtok")
    tok = AutoTokenizer.from_pretrained(ad)
    tok.add_tokens([f"<new_{i}>" for i in range(50)])
    tok.save_pretrained(ad)
    with pytest.raises(UserError, match=r"bigtok: its tokenizer has \d+ tokens but base .* embeds only \d+"):
        AdapterSession.for_adapters([ad], device="cpu")


def test_compare_refuses_different_bases(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    other_base = build_tiny_base(tmp_path / "other-base", seed=5)
    other = train_adapter(other_base, tmp_path / "other", state=None, loss_log=False)
    with pytest.raises(UserError, match=r"different base models .*base.* vs .*other-base"):
        AdapterSession.for_adapters([adapter_pair[0], other], device="cpu")
