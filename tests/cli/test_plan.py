"""`lora-tui plan` end to end: table, totals, scaling, memory, JSON, and user errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from lora_tui.cli import main
from lora_tui.core.hardware import detect as hardware

SEVEN = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hardware detection sees no GPU unless a test passes --vram-gb."""
    monkeypatch.setattr(hardware, "detect_hardware", lambda: SimpleNamespace(usable_vram_bytes=None))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gemma_reference_numbers_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "--model", "google/gemma-3-1b-it", "--lora-r", "16", "--target-modules", SEVEN)
    assert data["trainable_params"] == 13_045_760
    assert data["total_params"] == 999_885_952 + 13_045_760
    assert data["base_params"] == 999_885_952
    q = data["modules"][0]
    assert (q["name"], q["in_features"], q["out_features"], q["count"]) == ("q_proj", 1152, 1024, 26)
    assert data["lora_alpha"] == 32 and data["lora_alpha_default"] is True and data["scaling_label"] == "standard"
    memory = data["memory"]
    assert memory["total_bytes"] == sum(p["bytes"] for p in memory["parts"])
    assert {p["key"] for p in memory["parts"]} >= {"weights", "trainable", "activations", "logits", "overhead"}
    assert memory["verdict"] == "unknown" and "fit_steps" not in memory


def test_human_output_has_table_totals_scaling_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--model", "gemma-3-1b-it", "--lora-r", "16", "--lora-alpha", "16",
                 "--target-modules", "q_proj,v_proj", "--vram-gb", "24"]) == 0
    out = capsys.readouterr().out
    assert "q_proj  1152 -> 1024      26  30,670,848    905,216  2.95%" in out
    assert "v_proj  1152 -> 256       26   7,667,712    585,728  7.64%" in out
    assert "total                         38,338,560  1,490,944  3.89%" in out
    assert "Trainable: 1,490,944 of 1,001,376,896 parameters (0.149%; base model 999,885,952)" in out
    assert "scaling alpha / r = 1 (conservative)" in out and "default" not in out.splitlines()[1]
    assert "Adapter file: 6.0 MB fp32, 3.0 MB bf16" in out
    assert "of 24.0 GB (--vram-gb): fits" in out


def test_advice_practice_defaults_the_targets_to_all_linear_projections(capsys: pytest.CaptureFixture[str]) -> None:
    names = [m["name"] for m in _json(capsys, "--model", "smollm2-135m", "--advice", "practice")["modules"]]
    assert names == SEVEN.split(",")
    guide = [m["name"] for m in _json(capsys, "--model", "smollm2-135m")["modules"]]
    assert guide == ["q_proj", "k_proj", "v_proj", "o_proj"]
    given = _json(capsys, "--model", "smollm2-135m", "--advice", "practice", "--target-modules", "q_proj,v_proj")
    assert [m["name"] for m in given["modules"]] == ["q_proj", "v_proj"]  # a given list wins


def test_vram_label_says_where_the_figure_came_from(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert _json(capsys, "--model", "demo", "--vram-gb", "12")["memory"]["vram_source"] == "--vram-gb"
    monkeypatch.setattr(hardware, "detect_hardware", lambda: SimpleNamespace(usable_vram_bytes=8 * 10**9))
    assert main(["plan", "--model", "demo"]) == 0
    out = capsys.readouterr().out
    assert "of 8.0 GB (detected GPU)" in out and "--vram-gb" not in out


def test_alpha_defaults_to_two_r_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--model", "demo", "--lora-r", "8"]) == 0
    assert "alpha=16 (default: 2 x r, the guide's standard)" in capsys.readouterr().out


def test_will_not_fit_shows_the_fit_steps(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "--model", "Llama-3.1-8B", "--lora-r", "32", "--target-modules", "all-linear",
                 "--batch-size", "8", "--max-seq-length", "2048", "--vram-gb", "16")
    memory = data["memory"]
    assert memory["verdict"] == "will_not_fit" and memory["vram_bytes"] == 16_000_000_000
    steps = memory["fit_steps"]  # 15 GiB of bf16 weights: no 16-bit plan fits, 4-bit with a smaller batch does
    assert [s["kind"] for s in steps] == ["tried", "four_bit", "remedy"]
    assert steps[0]["changes"] == {} and "those cuts are undone" in steps[0]["description"]
    assert steps[1]["changes"] == {"load_in_4bit": True}
    assert steps[1]["description"].startswith("does not fit in 16-bit; fits with --load-in-4bit at ")
    assert "--batch-size 8 -> 2, --gradient-accumulation-steps 8 -> 32" in steps[2]["description"]
    assert steps[2]["total_bytes"] < memory["total_bytes"] and steps[2]["verdict"] != "will_not_fit"


def test_all_linear_on_phi3_uses_fused_layers(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "--model", "microsoft/Phi-3-mini-4k-instruct", "--lora-r", "8",
                 "--target-modules", "all-linear")
    assert [m["name"] for m in data["modules"]] == ["o_proj", "qkv_proj", "gate_up_proj", "down_proj"]
    assert data["trainable_params"] == 32 * 8 * ((3072 + 3072) + (3072 + 9216) + (3072 + 16384) + (8192 + 3072))


def test_dora_and_rslora_flags(capsys: pytest.CaptureFixture[str]) -> None:
    plain = _json(capsys, "--model", "demo", "--lora-r", "4", "--target-modules", "q_proj")
    dora = _json(capsys, "--model", "demo", "--lora-r", "4", "--target-modules", "q_proj", "--use-dora",
                 "--use-rslora")
    assert dora["trainable_params"] - plain["trainable_params"] == 4 * 256
    assert dora["scaling"] == pytest.approx(8 / 2) and dora["use_rslora"] is True


def test_list_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--list-models"]) == 0
    out = capsys.readouterr().out
    assert "gemma-3-1b-it" in out and "google/gemma-3-1b-it" in out and "999,885,952" in out
    data = _json(capsys, "--list-models")
    assert len(data) == 26 and {"name", "hub_id", "display_name", "params", "family", "notes"} <= set(data[0])


@pytest.mark.parametrize("argv,message", [
    (["--model", "gemma-3-1b-it", "--target-modules", "q_proj,query"],
     "--target-modules: query matches no module of gemma-3-1b-it. Its modules: q_proj, k_proj"),
    (["--model", "microsoft/phi-3-mini-4k-instruct"], "q_proj, k_proj, v_proj match no module"),
    (["--model", "nobody/nothing"], "not a preset, not a local directory with config.json"),
    (["--lora-r", "8"], "--model is required"),
    (["--model", "demo", "--lora-r", "0"], "`lora_r` (--lora-r) must be a positive integer, got 0"),
    (["--model", "demo", "--lora-alpha", "-1"], "`lora_alpha` (--lora-alpha) must be > 0, got -1"),
    (["--model", "demo", "--target-modules", " , "],
     "`target_modules` (--target-modules) must name at least one module"),
    (["--model", "demo", "--vram-gb", "0"], "argument --vram-gb: must be a positive, finite number of GB, got 0"),
    (["--model", "demo", "--vram-gb", "nan"], "argument --vram-gb: must be a positive, finite number of GB, got nan"),
    (["--model", "demo", "--vram-gb", "inf"], "argument --vram-gb: must be a positive, finite number of GB, got inf"),
    (["--model", "demo", "--lora-alpha", "nan"], "`lora_alpha` (--lora-alpha) must be > 0, got nan"),
    (["--model", "demo", "--lora-alpha", "inf"], "`lora_alpha` (--lora-alpha) must be > 0, got inf"),
    (["--model", "demo", "--dtype", "int3"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_console_entry_point_runs_without_the_ml_stack() -> None:
    code = ("import sys; from lora_tui.cli import main; rc = main(['plan', '--model', 'qwen3-8b', '--lora-r', '8',"
            " '--vram-gb', '24', '--json']); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'textual') if m in sys.modules)); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert '"trainable_params": 7667712' in proc.stdout
