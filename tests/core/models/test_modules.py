"""core.modules: presets, loading from config.json (subprocess builder, cache), PEFT target resolution."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lora_tui.core.models import modules
from lora_tui.core.models.modules import (
    LinearKind,
    ModelInventory,
    check_targets,
    demo_config,
    is_available_offline,
    list_presets,
    load_inventory,
    resolve_targets,
)
from lora_tui.errors import UserError

# (preset, total params, q_proj in -> out, k_proj in -> out): published totals, shapes from the configs
PRESETS = [
    ("google/gemma-3-1b-it", 999_885_952, (1152, 1024), (1152, 256)),
    ("meta-llama/Llama-3.2-1B", 1_235_814_400, (2048, 2048), (2048, 512)),
    ("meta-llama/Llama-3.2-3B-Instruct", 3_212_749_824, (3072, 3072), (3072, 1024)),
    ("meta-llama/Llama-3.1-8B", 8_030_261_248, (4096, 4096), (4096, 1024)),
    ("Qwen/Qwen2.5-0.5B-Instruct", 494_032_768, (896, 896), (896, 128)),
    ("Qwen/Qwen2.5-1.5B", 1_543_714_304, (1536, 1536), (1536, 256)),
    ("Qwen/Qwen2.5-7B", 7_615_616_512, (3584, 3584), (3584, 512)),
    ("Qwen/Qwen3-0.6B", 596_049_920, (1024, 2048), (1024, 1024)),
    ("Qwen/Qwen3-1.7B", 1_720_574_976, (2048, 2048), (2048, 1024)),
    ("Qwen/Qwen3-4B", 4_022_468_096, (2560, 4096), (2560, 1024)),
    ("Qwen/Qwen3-8B", 8_190_735_360, (4096, 4096), (4096, 1024)),
    ("mistralai/Mistral-7B-v0.3", 7_248_023_552, (4096, 4096), (4096, 1024)),
    ("HuggingFaceTB/SmolLM2-135M", 134_515_008, (576, 576), (576, 192)),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", 361_821_120, (960, 960), (960, 320)),
    ("HuggingFaceTB/SmolLM2-1.7B", 1_711_376_384, (2048, 2048), (2048, 2048)),
]


@pytest.mark.parametrize("model,total,q,k", PRESETS, ids=[p[0] for p in PRESETS])
def test_preset_totals_and_shapes(model: str, total: int, q: tuple[int, int], k: tuple[int, int]) -> None:
    inv = load_inventory(model)
    assert inv.total_params == total
    assert (inv.kind("q_proj").in_features, inv.kind("q_proj").out_features) == q
    assert (inv.kind("k_proj").in_features, inv.kind("k_proj").out_features) == k
    assert inv.kind("q_proj").count == inv.num_layers


@pytest.mark.parametrize("name", ["gemma-3-1b-it", "GOOGLE/GEMMA-3-1B-IT", " google/gemma-3-1b-it ",
                                  "google/gemma-3-1b-pt"])
def test_preset_names_are_case_insensitive_and_accept_hub_ids(name: str) -> None:
    inv = load_inventory(name)
    assert inv.model_id == "gemma-3-1b-it"
    assert inv.extra["hub_id"] == "google/gemma-3-1b-it"


def test_phi3_has_fused_projections_only() -> None:
    inv = load_inventory("microsoft/Phi-3-mini-4k-instruct")
    assert inv.total_params == 3_821_079_552
    assert (inv.kind("qkv_proj").in_features, inv.kind("qkv_proj").out_features) == (3072, 9216)
    assert inv.kind("gate_up_proj").out_features == 16384
    assert inv.kind("q_proj") is None


def test_gemma_3_4b_includes_the_vision_tower() -> None:
    inv = load_inventory("google/gemma-3-4b-it")
    assert inv.total_params == 4_300_079_472
    assert inv.architecture == "Gemma3ForConditionalGeneration"
    q_kinds = [k for k in inv.linears if k.name == "q_proj"]
    assert sorted((k.group, k.in_features, k.out_features, k.count) for k in q_kinds) == [
        ("attention", 2560, 2048, 34), ("vision", 1152, 1152, 27)]


def test_demo_config_is_exactly_the_agreed_one() -> None:
    cfg = demo_config()
    assert cfg["hidden_size"] == 256 and cfg["num_hidden_layers"] == 4 and cfg["vocab_size"] == 4096
    assert cfg["tie_word_embeddings"] is True and cfg["torch_dtype"] == "float32" and cfg["head_dim"] == 32
    assert len(cfg) == 18
    inv = load_inventory("demo")
    assert inv.total_params == 4_065_536 and inv.num_layers == 4


def test_list_presets_covers_every_requested_family_smallest_first() -> None:
    presets = list_presets()
    hub_ids = {p.hub_id for p in presets}
    assert {"google/gemma-3-1b-it", "google/gemma-3-4b-it", "microsoft/Phi-3-mini-4k-instruct",
            "Qwen/Qwen3-8B", "HuggingFaceTB/SmolLM2-1.7B", "mistralai/Mistral-7B-v0.3"} <= hub_ids
    assert len(presets) == 26
    assert [p.params for p in presets] == sorted(p.params for p in presets)
    assert all(p.display_name and p.family for p in presets)


def _inv() -> ModelInventory:
    kinds = (
        LinearKind("q_proj", 64, 64, 2, group="attention", path="model.layers.*.self_attn.q_proj"),
        LinearKind("v_proj", 64, 16, 2, group="attention", path="model.layers.*.self_attn.v_proj"),
        LinearKind("q_proj", 32, 32, 3, group="vision", path="vision_tower.layers.*.attn.q_proj"),
        LinearKind("down_proj", 96, 64, 2, group="mlp", path="model.layers.*.mlp.down_proj"),
        LinearKind("lm_head", 64, 100, 1, group="output", path="lm_head"),
        LinearKind("gate_up_proj", 64, 64, 2, group="experts", layer_type="parameter", experts=4,
                   path="model.layers.*.mlp.experts.gate_up_proj"),
    )
    return ModelInventory("toy", "llama", 2, 64, 100, 4, 2, 16, 96, 50_000, kinds)


@pytest.mark.parametrize("targets,names,unmatched", [
    (["q_proj"], ["attention:q_proj", "vision:q_proj"], []),
    (["self_attn.q_proj"], ["attention:q_proj"], []),
    (["model.layers.*.self_attn.v_proj"], ["attention:v_proj"], []),
    (["q_proj", "nope", "mlp"], ["attention:q_proj", "vision:q_proj"], ["nope", "mlp"]),
    (["proj"], [], ["proj"]),  # suffix match is on whole path components, as in PEFT
    (["gate_up_proj"], [], ["gate_up_proj"]),  # fused expert parameters are not modules
    (["all-linear"], ["attention:q_proj", "attention:v_proj", "vision:q_proj", "mlp:down_proj"], []),
    (["ALL-LINEAR"], ["attention:q_proj", "attention:v_proj", "vision:q_proj", "mlp:down_proj"], []),
])
def test_resolve_targets_follows_peft(targets: list[str], names: list[str], unmatched: list[str]) -> None:
    kinds, missing = resolve_targets(_inv(), targets)
    assert [f"{k.group}:{k.name}" for k in kinds] == names
    assert missing == unmatched


def test_per_layer_targets_and_mixed_all_linear_are_user_errors() -> None:
    with pytest.raises(UserError, match="single layer"):
        resolve_targets(_inv(), ["layers.0.self_attn.q_proj"])
    with pytest.raises(UserError, match="cannot be combined"):
        resolve_targets(_inv(), ["all-linear", "q_proj"])


def test_check_targets_lists_the_models_module_names() -> None:
    with pytest.raises(UserError) as err:
        check_targets(load_inventory("gemma-3-1b-it"), ["q_proj", "query"])
    assert "query matches no module of gemma-3-1b-it" in str(err.value)
    assert "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head" in str(err.value)


def test_linear_kind_counts_and_validation() -> None:
    k = LinearKind("c_attn", 64, 192, 3, bias=True, layer_type="conv1d")
    assert k.original_params == 3 * (64 * 192 + 192)
    assert k.lora_params(8) == 3 * 8 * (64 + 192)
    experts = LinearKind("down_proj", 32, 64, 2, layer_type="parameter", experts=4)
    assert experts.original_params == 2 * 4 * 32 * 64 and experts.lora_params(4) == 2 * 4 * 4 * 96
    with pytest.raises(ValueError, match="`count`"):
        LinearKind("q", 1, 1, 0)
    with pytest.raises(ValueError, match="`layer_type`"):
        LinearKind("q", 1, 1, 1, layer_type="conv2d")


def test_inventory_round_trips_through_json() -> None:
    inv = load_inventory("Qwen/Qwen2.5-0.5B")
    again = ModelInventory.from_dict(json.loads(json.dumps(inv.to_dict())))
    assert again == inv


def test_unknown_model_offline_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not a preset, not a local directory with config.json"):
        load_inventory("someone/unknown-model")
    with pytest.raises(UserError, match="not a preset"):
        load_inventory("definitely-not-a-model")


def test_directory_without_config_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no config.json"):
        load_inventory(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="cannot read config.json"):
        load_inventory(str(tmp_path))


_TINY_QWEN2 = {"model_type": "qwen2", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 48,
               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
"""A config both loading tests use, so the second one is served from the session's inventory cache."""


def test_local_directory_builds_once_in_a_subprocess_and_caches(tmp_path: Path) -> None:
    cfg = _TINY_QWEN2
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    inv = load_inventory(str(tmp_path))
    assert inv.kind("q_proj").bias is True and inv.kind("k_proj").out_features == 16
    cached = modules.cache_dir() / "inventories" / f"{modules.config_key(cfg)}.json"
    assert cached.is_file()
    # from the cache: a corrupted builder would not be called again
    assert load_inventory(str(tmp_path)) == inv


def test_hf_cache_snapshot_is_used_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = tmp_path / "models--acme--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(_TINY_QWEN2), encoding="utf-8")
    inv = load_inventory("acme/tiny")
    assert inv.num_layers == 2 and inv.model_id == "acme/tiny"
    assert is_available_offline("acme/tiny")[0] is False
    (snap / "model.safetensors").write_bytes(b"")
    ok, why = is_available_offline("acme/tiny")
    assert ok and "Hugging Face cache" in why


def test_is_available_offline_for_demo_and_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert is_available_offline("demo")[0] is False
    built = tmp_path / "demo-model"
    built.mkdir()
    (built / "config.json").write_text("{}", encoding="utf-8")
    (built / "model.safetensors").write_bytes(b"")
    assert is_available_offline("demo")[0] is True
    ok, why = is_available_offline("gemma-3-1b-it")
    assert not ok and "google/gemma-3-1b-it is not in the Hugging Face cache" in why


def test_a_config_transformers_cannot_build_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "no_such_arch"}), encoding="utf-8")
    with pytest.raises(UserError, match=r"transformers cannot build it from its config.json \(ValueError") as exc:
        load_inventory(str(bad))
    # one short line: the builder's first sentence, not transformers' list of every known model type
    assert str(exc.value).endswith("(ValueError: Unrecognized model identifier: no_such_arch).")


def test_a_corrupt_cached_inventory_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {**_TINY_QWEN2, "vocab_size": 301}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    cached = modules.cache_dir() / "inventories" / f"{modules.config_key(cfg)}.json"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text('{"model_type": "qwen2", "num_la', encoding="utf-8")  # a write cut short
    built = load_inventory("Qwen/Qwen2.5-0.5B").to_dict()  # stands in for the builder's output
    calls: list[list[str]] = []

    def fake_builder(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, json.dumps(built) + "\n", "")

    monkeypatch.setattr(modules.subprocess, "run", fake_builder)
    inv = load_inventory(str(tmp_path))
    assert len(calls) == 1 and inv.kind("k_proj").out_features == 128
    assert ModelInventory.from_dict(json.loads(cached.read_text(encoding="utf-8")), model_id=inv.model_id) == inv
    assert not list(cached.parent.glob("*.tmp")) and not list(cached.parent.glob("*.config.json"))


def test_an_unwritable_cache_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not-a-dir").write_text("", encoding="utf-8")
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "not-a-dir"))
    (tmp_path / "config.json").write_text(json.dumps(_TINY_QWEN2), encoding="utf-8")
    with pytest.raises(UserError, match=r"cannot write to the cache directory .*not-a-dir/inventories .*; set "
                       "LORA_TUI_CACHE to a writable directory"):
        load_inventory(str(tmp_path))


def test_building_an_inventory_tells_its_progress_and_a_cached_one_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time as _time

    cfg = {**_TINY_QWEN2, "vocab_size": 303}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    built = load_inventory("Qwen/Qwen2.5-0.5B").to_dict()

    def slow_builder(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        _time.sleep(1.2)  # the heartbeat re-tells the stage every 0.5 s meanwhile
        return subprocess.CompletedProcess(cmd, 0, json.dumps(built) + "\n", "")

    monkeypatch.setattr(modules.subprocess, "run", slow_builder)
    events: list[Any] = []
    load_inventory(str(tmp_path), progress=events.append)
    assert events[0].stage.startswith(f"building the module tree of {tmp_path} on the meta device")
    assert events[0].total is None and len(events) >= 3 and events[-1].final
    assert max(e.elapsed for e in events if not e.final) >= 0.5
    events.clear()
    load_inventory(str(tmp_path), progress=events.append)
    assert events == []
