"""`lora-tui recommend` and `lora-tui plan` with the run's processes (--num-processes, --nnodes, --distributed, the
flags train has): ddp or fsdp by resolve's rule with its reason and both per-GPU figures, in English and Japanese;
their JSON gains the strategy and is the same in both languages."""

from __future__ import annotations

import json
import re

import pytest

from lora_tui import i18n
from lora_tui.cli import main
from lora_tui.cli.flags import PLANNING_ADDR
from lora_tui.core.memory import plan_estimate
from lora_tui.core.memory_sharded import per_gpu, per_gpu_text, sharded
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.resolve import PlanInputs, resolve
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.japanese import english_words

MODEL = "qwen3-14b"
GB = 10**9
TWO = ["--model", MODEL, "--vram-gb", "24", "--num-processes", "2"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _flat(text: str) -> str:
    """Human output with its wrapped lines joined (the reasons are filled to the terminal's width, which differs
    between a terminal and a test worker): a break between two Japanese characters joins without a space."""
    return re.sub(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])", "", " ".join(text.split()))


def _resolved(**given: object):  # type: ignore[no-untyped-def]
    return resolve({"model": MODEL, **given}, PlanInputs(vram_bytes=24 * GB, inventory=load_inventory(MODEL)))


def test_recommend_takes_resolves_strategy_with_its_reason_and_figures(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_run(capsys, "recommend", *TWO, "--json"))
    resolved = _resolved(num_processes=2)
    assert data["values"]["distributed"] == resolved.plan.distributed == "fsdp"
    assert data["reasons"]["distributed"] == resolved.reasons["distributed"]
    assert data["reasons"]["distributed"].startswith("fsdp: in 16-bit, DDP needs 34.23 GiB of 22.35 GiB on every "
                                                     "GPU and will not fit; FSDP over 2 processes needs ")
    for name, value in data["values"].items():  # the same plan `lora-tui train` would resolve
        assert value == getattr(resolved.plan, name), name
    assert data["values"]["load_in_4bit"] is False and data["values"]["gradient_accumulation_steps"] == 2
    assert data["citations"]["distributed"] == {"kind": "lora-tui", "where": "lora-tui's own rule: the memory estimate"}
    assert data["citations"]["gradient_accumulation_steps"]["where"] == (
        "lora-tui's own rule: the effective batch kept over every process")
    assert data["inputs"]["num_processes"] == 2 and data["inputs"]["nnodes"] == 1
    out = _flat(_run(capsys, "recommend", *TWO))
    assert "--distributed fsdp [lora-tui] fsdp: in 16-bit, DDP needs 34.23 GiB of 22.35 GiB" in out
    assert "4 / 2 processes = 2, so the effective batch stays batch x 4" in out


def test_recommend_without_process_flags_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_run(capsys, "recommend", "--model", MODEL, "--vram-gb", "24", "--json"))
    assert "distributed" not in data["values"] and data["values"]["load_in_4bit"] is True


def test_recommend_over_machines_and_a_given_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    nodes = json.loads(_run(capsys, "recommend", "--model", MODEL, "--vram-gb", "24", "--nnodes", "2", "--json"))
    assert nodes["values"]["distributed"] == "fsdp" and nodes["inputs"]["nnodes"] == 2
    assert "4 / 2 processes (2 machines x 1) = 2" in nodes["reasons"]["gradient_accumulation_steps"]
    assert PLANNING_ADDR not in json.dumps(nodes)
    given = json.loads(_run(capsys, "recommend", *TWO, "--distributed", "ddp", "--json"))
    assert given["values"]["distributed"] == "ddp" and given["citations"]["distributed"]["kind"] == "your choice"
    assert given["values"]["load_in_4bit"] is True  # QLoRA fits one GPU: DDP as set needs no warning
    assert given["reasons"]["distributed"] == "ddp: as set (--distributed)"
    assert "distributed" not in _resolved(num_processes=2, distributed="ddp").reasons
    one = json.loads(_run(capsys, "recommend", "--model", MODEL, "--vram-gb", "24", "--num-processes", "1", "--json"))
    assert one["reasons"]["distributed"] == "ddp: one process, nothing to shard"


@pytest.mark.parametrize(("command", "argv", "message"), [
    ("recommend", ["--num-processes", "0"], "`num_processes` (--num-processes) must be a positive integer, got 0"),
    ("plan", ["--model", MODEL, "--distributed", "fsdp"], "`distributed` (--distributed) fsdp shards the weights"),
    ("plan", ["--model", MODEL, "--distributed", "zero"], "`distributed` (--distributed) must be one of ddp, fsdp"),
])
def test_a_bad_process_flag_is_one_line_naming_it(capsys: pytest.CaptureFixture[str], command: str,
                                                  argv: list[str], message: str) -> None:
    assert main([command, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_plan_shows_the_per_gpu_memory_under_the_chosen_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    inv = load_inventory(MODEL)
    whole = plan_estimate(inv, TrainingPlan(model=MODEL, num_processes=2), 24 * GB)
    fsdp = sharded(whole, 2, inv.num_layers)
    data = json.loads(_run(capsys, "plan", *TWO, "--json"))
    memory = data["memory"]
    assert memory["strategy"]["distributed"] == "fsdp" and memory["strategy"]["processes"] == 2
    assert memory["strategy"]["reason"].startswith("fsdp: DDP needs 32.51 GiB of 22.35 GiB on every GPU")
    assert memory["total_bytes"] == fsdp.total_bytes and memory["verdict"] == "fits" and "fit_steps" not in memory
    assert memory["per_gpu"] == per_gpu(whole, 2, inv.num_layers)
    out = _run(capsys, "plan", *TWO)
    assert f"  strategy over 2 processes: {memory['strategy']['reason']}\n" in out
    assert f"  {per_gpu_text(memory['per_gpu'])}\n" in out and "Decoder layers gathered whole (FSDP)" in out
    ddp = json.loads(_run(capsys, "plan", *TWO, "--distributed", "ddp", "--json"))["memory"]
    assert ddp["total_bytes"] == whole.total_bytes and ddp["verdict"] == "will_not_fit" and ddp["fit_steps"]
    assert ddp["strategy"]["reason"].startswith("ddp as you set it, but DDP needs 32.51 GiB")
    one = _run(capsys, "plan", "--model", MODEL, "--vram-gb", "24")
    assert "strategy" not in one and "Per-GPU memory" not in one


@pytest.mark.parametrize("command", ["recommend", "plan"])
def test_the_strategy_in_japanese_and_the_same_json(capsys: pytest.CaptureFixture[str], command: str) -> None:
    out = _run(capsys, "--lang", "ja", command, *TWO)
    if command == "recommend":
        assert "fsdp: 16 ビットでは DDP は各 GPU で 22.35 GiB のうち 34.23 GiB が必要で収まりません" in _flat(out)
        assert "全プロセスで実効バッチを保つ" not in out  # citations show their kind, the rule is in the JSON
    else:
        assert "  2 プロセスでの分散方式: fsdp: DDP は各 GPU で 22.35 GiB のうち 32.51 GiB が必要で" in out
        assert "  GPU ごとのメモリ: ddp 32.51 GiB（収まらない、各 GPU にベース全体）" in out
    assert english_words(out) == []
    assert i18n.missing == set()
    assert _run(capsys, "--lang", "ja", command, *TWO, "--json") == _run(capsys, command, *TWO, "--json")
