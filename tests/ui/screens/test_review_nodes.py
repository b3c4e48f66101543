"""The Review step's machines and processes: the node settings as fields (with inline errors that stop a launch),
the command of every machine exactly as `lora-tui train --dry-run` prints it, and a launch on a node other than 0
that starts this node's processes the way `lora-tui train` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Collapsible, Input, Static

from lora_tui import i18n
from lora_tui.core import distributed, launcher, run_setup, runs
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.japanese import english_words, plain, screen_texts


def _text(app, selector: str) -> str:
    return plain(app.screen.query_one(selector, Static).content).strip()


def _app(tmp_path: Path, **kwargs: Any):
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(SAMPLE_DATA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:120]),
                    encoding="utf-8")
    return make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), runs_root=tmp_path / "runs",
                    gpu_interval=0, plan=TrainingPlan(data=str(data), output=str(tmp_path / "runs" / "r")),
                    **({"launcher": fakes.FakeLauncher()} | kwargs))


async def _to_review(pilot) -> None:
    await waits.settle(pilot)
    for _ in range(4):
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
    assert type(pilot.app.screen).__name__ == "ReviewScreen"


async def _type(pilot, name: str, text: str) -> Input:
    field = pilot.app.screen.query_one(f"#node-{name}", Input)
    field.value = text
    await pilot.pause()
    return field


async def _two_nodes(pilot, rank: int = 0) -> None:
    await _type(pilot, "nnodes", "2")
    await _type(pilot, "master_addr", "10.0.0.1")
    await _type(pilot, "node_rank", str(rank))
    assert _text(pilot.app, "#error") == ""


async def test_one_machine_keeps_the_section_folded_and_shows_the_one_command(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_review(pilot)
        section = app.screen.query_one("#review-nodes", Collapsible)
        assert section.collapsed and section.title == "Machines and processes: 1 x 1 (ddp)"
        assert _text(app, "#review-cmd-label") == "Equivalent command (ctrl+y copies it):"
        assert _text(app, "#review-cmd") == app.state.plan.command_line(defaults=TrainingPlan(), keep=("output",))
        assert {name: app.screen.query_one(f"#node-{name}", Input).value for name in
                ("nnodes", "num_processes", "node_rank", "master_addr", "master_port", "distributed")} == {
            "nnodes": "1", "num_processes": "1", "node_rank": "0", "master_addr": "", "master_port": "29500",
            "distributed": "ddp"}
        assert _text(app, "#why-distributed") == "ddp: one process, nothing to shard"


async def test_several_machines_show_every_nodes_command_as_the_dry_run_prints_it(tmp_path: Path) -> None:
    from lora_tui.cli.train import render_dry_run

    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_review(pilot)
        machines = await _type(pilot, "nnodes", "2")
        assert "`master_addr` is needed with nnodes 2" in _text(app, "#error")  # a field, not a flag
        assert app.screen.query_one("#node-master_addr", Input).has_class("-invalid") and app.state.plan.nnodes == 1
        await _type(pilot, "master_addr", "10.0.0.1")
        await _type(pilot, "num_processes", "2")
        plan = app.state.plan
        assert (plan.nnodes, plan.num_processes, plan.master_addr) == (2, 2, "10.0.0.1") and not machines.has_class(
            "-invalid")
        assert app.state.sources["gradient_accumulation_steps"].startswith("recommended (/4 processes")
        summary = [line.strip() for line in _text(app, "#review-summary").splitlines()]
        assert "gradient_accumulation_steps 2  (recommended)" in summary  # the source tag, not "(/4 processes)"
        assert app.screen.query_one("#review-nodes", Collapsible).title == "Machines and processes: 2 x 2 (ddp)"
        assert _text(app, "#why-distributed") == "ddp: no GPU here, and fsdp shards a model only across CUDA GPUs"
        assert _text(app, "#review-cmd-label").startswith("Commands, one per machine (start node 0 first")
        shown = _text(app, "#review-cmd").split("\n\n")
        dry_run = render_dry_run(launcher.check_for_launch(app.state.resolved, dry_run=True))
        printed = [line.strip() for line in dry_run.splitlines() if line.startswith("  node ")]
        assert shown == printed and len(shown) == 2
        first = shown[0].removeprefix("node 0: ")
        assert first.startswith("lora-tui train --model demo --data ") and "--node-rank" not in first
        assert shown[1] == f"node 1: {first} --node-rank 1"
        await _type(pilot, "node_rank", "1")  # the commands are the same on every machine
        assert _text(app, "#review-cmd").split("\n\n") == printed
        assert "node 1 writes only its log here (node-1.log)" in _text(app, "#output-status")


@pytest.mark.parametrize(("name", "text", "error"), [
    ("master_port", "70000", "`master_port` must be a positive integer, got 70000 (at most 65,535 is accepted)"),
    ("master_port", "port", "`master_port`: 'port' is not a whole number"),
    ("node_rank", "2", "`node_rank` must be a whole number from 0 to nnodes - 1 (1), got 2"),
    ("distributed", "zero", "`distributed` must be one of ddp, fsdp, got 'zero'"),
])
async def test_a_bad_node_setting_is_an_inline_error_and_nothing_launches(tmp_path: Path, name: str, text: str,
                                                                          error: str) -> None:
    fake = fakes.FakeLauncher()
    app = _app(tmp_path, launcher=fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_review(pilot)
        await _two_nodes(pilot)
        before = app.state.plan
        field = await _type(pilot, name, text)
        assert error in _text(app, "#error") and "--" not in _text(app, "#error")
        assert field.has_class("-invalid") and app.state.plan == before  # the plan keeps the last good values
        await pilot.press("ctrl+l")
        await waits.settle(pilot)
        assert fake.calls == [] and type(app.screen).__name__ == "ReviewScreen"
        assert error in _text(app, "#error")
        assert not (tmp_path / "runs" / "r").exists()


async def test_launching_node_1_starts_its_processes_as_the_cli_does(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[Path, TrainingPlan, list[str]]] = []

    class Proc:
        pid = 4242

    def start_node(run_dir: Path, plan: TrainingPlan, command: list[str]) -> Proc:
        started.append((run_dir, plan, command))
        return Proc()

    monkeypatch.setattr(run_setup, "start_node", start_node)
    app = _app(tmp_path, launcher=launcher.launch_run)  # the real launcher, as `lora-tui train` goes
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_review(pilot)
        await _two_nodes(pilot, rank=1)
        await _type(pilot, "master_port", "29511")
        await pilot.press("ctrl+l")
        await waits.settle(pilot)
        await waits.wait_until(pilot, lambda: started, what="node 1's start")
        assert type(app.screen).__name__ == "ReviewScreen"  # node 0 shows the run, not this node
        notes = [n.message for n in app._notifications]
    run_dir, plan, command = started[0]
    assert run_dir == (tmp_path / "runs" / "r").resolve() and plan.node_rank == 1 and plan.master_port == 29511
    assert command == distributed.worker_command(run_dir, plan)
    assert command[3:8] == ["--nnodes=2", "--node_rank=1", "--nproc_per_node=1", "--master_addr=10.0.0.1",
                            "--master_port=29511"]
    assert not (run_dir / runs.RUN_FILE).exists() and not (run_dir / runs.STATUS_FILE).exists()  # node 0's files
    assert any(n.startswith("Node 1 started (pid 4242); its processes log to ") and "node-1.log" in n for n in notes)


async def test_the_node_section_is_japanese(tmp_path: Path) -> None:
    i18n.set_language("ja")
    try:
        app = _app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await _to_review(pilot)
            await _two_nodes(pilot)
            app.screen.query_one("#review-nodes", Collapsible).collapsed = False
            await pilot.pause()
            texts = screen_texts(app.screen, skip=("review-cmd", "output", "runfile", "review-summary"))
            found = {k: english_words(v) for k, v in texts.items() if english_words(v)}
            assert found == {}
            assert "マシンとプロセス: 2 x 1（ddp）" in texts.values()
            assert _text(app, "#review-cmd").startswith("ノード 0: lora-tui train ")
    finally:
        i18n.set_language("en")
