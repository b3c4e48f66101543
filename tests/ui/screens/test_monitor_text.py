"""The monitor's words without a screen: the status lines of a run of several machines (its world, each machine's
and each GPU's peak memory, a rank that died), the progress line and the summary; English and Japanese."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lora_tui import i18n
from lora_tui.cells import width
from lora_tui.core.run_files import MetricsRecord, RankMemory
from lora_tui.core.run_world import World
from lora_tui.ui.screens.monitor_text import (
    RunOutcome,
    error_parts,
    status_head,
    step_text,
    styled,
    summary_brief,
    summary_text,
)
from tests.helpers.japanese import english_words

GIB = 1024**3
RANKS = [RankMemory(rank=n * 2 + g, node=n, local_rank=g, device="cuda", peak_bytes=int((4.5 + n + g / 10) * GIB),
                    total_bytes=80 * GIB) for n in range(2) for g in range(2)]
PEER = ("RuntimeError: [pair.cc:553] Connection closed by peer [127.0.0.1]:23473. This is typically caused by a remote "
        "worker crashing. | node 1's last lines (node-1.log): step 3/24  loss 6.1 / Killed")
"""The failed status of a run whose node 1 died (`train.distributed.peer_failure`)."""


@pytest.fixture
def japanese() -> Iterator[None]:
    i18n.missing.clear()
    i18n.set_language("ja")
    yield
    i18n.set_language("en")


def test_the_status_says_the_world_and_every_machines_and_gpus_peak_memory() -> None:
    head = status_head("runs/two", "running", pid=42, world=World(4, 2), ranks=RANKS, memory="estimated 5.00 GiB")
    assert head.plain.splitlines() == [
        "Run runs/two  running  pid 42  world size 4 (2 nodes x 2)",
        "memory: estimated 5.00 GiB",
        "  node 0: 9.1 GiB peak allocated on 2 GPUs (GPU0 4.5/80.0 GiB, GPU1 4.6/80.0 GiB)",
        "  node 1: 11.1 GiB peak allocated on 2 GPUs (GPU0 5.5/80.0 GiB, GPU1 5.6/80.0 GiB)"]
    brief = status_head("runs/two", "finished", pid=42, world=World(4, 2), ranks=RANKS, brief=True)
    assert brief.plain.splitlines() == [
        "Run runs/two  finished  world size 4 (2 nodes x 2)",  # no pid once it has ended
        "  peak allocated by node: node 0 9.1 GiB, node 1 11.1 GiB"]
    one = status_head("runs/one", "finished", world=World(1, 1), ranks=None)
    assert one.plain == "Run runs/one  finished"  # an older run, or one of one process: nothing more


def test_a_rank_that_died_is_named_on_its_own_line() -> None:
    assert error_parts(PEER)[1] == "node 1's last lines (node-1.log): step 3/24  loss 6.1 / Killed"
    assert error_parts(None) == [] and error_parts("ValueError: bad") == ["ValueError: bad"]
    lines = status_head("runs/two", "failed", error=PEER, world=World(2, 2)).plain.splitlines()
    assert lines[0] == "Run runs/two  failed  world size 2 (2 nodes x 1)"
    assert lines[1].startswith("RuntimeError: [pair.cc:553]") and lines[2].startswith("node 1's last lines")
    long = PEER.replace("worker crashing.", "worker crashing. " + "more words " * 30)
    short = status_head("runs/two", "failed", error=long, brief=True, cells=78).plain.splitlines()
    assert width(short[1]) == 78 and short[1].endswith("…") and short[2] == lines[2]  # a line each on a short screen
    assert width(status_head("runs/two", "failed", error=long, brief=True).plain.splitlines()[1]) == 150
    from lora_tui.ui.screens.monitor_text import details_text

    details = details_text(long, RANKS).plain.splitlines()  # what `d` shows above the advice on a short screen
    assert details[:2] == error_parts(long) and details[2].startswith("node 0: 9.1 GiB peak allocated on 2 GPUs")
    assert details_text(None, None).plain == ""
    head = status_head("runs/two", "failed", error=PEER)
    assert {span.style for span in head.spans if head.plain[span.start:span.end].startswith("node 1")} == {"red"}


def test_the_progress_line_and_the_summary_in_english() -> None:
    last = MetricsRecord(step=37, epoch=1.62, tokens_per_second=1234.4, padding_share=0.12)
    assert step_text(37, 69, last, "running", 62.0).plain == ("step 37/69 · epoch 1.62 · 1,234 tok/s · padding 12% · "
                                                             "1m02s · ETA 54s")
    outcome = RunOutcome(state="stopped", steps=1, elapsed="2m05s", final_loss=1.5, best_loss=1.25,
                         best_eval=(1, 1.75), adapter="runs/a", adapter_from="step 1, the last one",
                         checkpoint="checkpoints/checkpoint-1")
    assert summary_text(outcome).plain.splitlines() == [
        "Run stopped after 1 step in 2m05s", "final loss 1.5000 · best loss 1.2500 · best eval 1.7500 at step 1",
        "Adapter: runs/a (step 1, the last one)",
        "o: open it on the Adapters screen, to read it, ask it questions beside the base model and merge it",
        "Last checkpoint: checkpoints/checkpoint-1 (r resumes from it)"]
    assert summary_brief(outcome).plain == ("Run stopped · 1 step · final loss 1.5000 · best eval 1.7500 at step 1 · "
                                            "o: open the adapter · r: resume")


def test_a_styled_part_keeps_its_style_wherever_the_translation_puts_it() -> None:
    text = styled("{state} の実行 {run}", "bold", state=("完了", "bold cyan"), run="runs/a")
    assert text.plain == "完了 の実行 runs/a"
    assert [(text.plain[s.start:s.end], s.style) for s in text.spans] == [("完了", "bold cyan"), (" の実行 ", "bold"),
                                                                          ("runs/a", "bold")]


def test_the_status_and_the_summary_in_japanese(japanese: None) -> None:
    head = status_head("runs/two", "failed", error=PEER, world=World(4, 2), ranks=RANKS,
                       memory="見積もり 5.00 GiB").plain.splitlines()
    assert head[0] == "実行 runs/two  失敗  ワールドサイズ 4（2 ノード × 2 プロセス）"
    assert head[-2] == "  ノード 0: GPU 2 台で確保済みのピーク計 9.1 GiB（GPU0 4.5/80.0 GiB、GPU1 4.6/80.0 GiB）"
    brief = status_head("runs/two", "running", world=World(4, 2), ranks=RANKS, brief=True).plain.splitlines()
    assert brief[1] == "  ノードごとの確保済みのピーク: ノード 0 9.1 GiB、ノード 1 11.1 GiB"
    last = MetricsRecord(step=37, epoch=1.62, tokens_per_second=1234.4, padding_share=0.12)
    assert step_text(37, 69, last, "running", 62.0).plain == ("ステップ 37/69 · エポック 1.62 · 1,234 tok/s · "
                                                             "パディング 12% · 1m02s · 残り 54s")
    outcome = RunOutcome(state="finished", steps=40, elapsed="2m05s", final_loss=1.5, best_loss=1.25,
                         best_eval=(40, 1.75), adapter="runs/a")
    full = summary_text(outcome).plain
    assert full.splitlines()[0] == "実行: 完了（40 ステップ、所要 2m05s）"
    assert "最終損失 1.5000 · 最良の損失 1.2500 · 最良の評価損失 1.7500（ステップ 40）" in full
    assert summary_brief(outcome).plain == ("実行: 完了 · 40 ステップ · 最終損失 1.5000 · "
                                            "最良の評価損失 1.7500（ステップ 40） · o: アダプターを開く")
    shown = "\n".join([*head[:1], *head[3:], *brief, full])  # the error's lines are torch's and the run's own
    assert english_words(shown) == [] and i18n.missing == set()


def test_the_starting_note_and_the_advice_in_japanese(japanese: None) -> None:
    from lora_tui.core.plan import TrainingPlan
    from lora_tui.core.symptoms import diagnose
    from lora_tui.ui.screens.monitor_text import advice_brief, advice_text, describe_changes, waiting_note

    notes = [waiting_note(building, "cache", brief=brief).plain for building in (True, False)
             for brief in (True, False)]
    assert notes[1].startswith("開始中: 学習プロセスが torch、Transformers とモデルを読み込みます。その前に cache に")
    plan = TrainingPlan(eval_split=0.05)
    evals = {10: 1.6, 15: 1.5, 20: 1.6, 25: 1.7, 30: 1.8}
    records = [MetricsRecord(step=i, loss=2.0 - 0.05 * i, eval_loss=evals.get(i), learning_rate=5e-5, grad_norm=0.7)
               for i in range(1, 31)]
    symptoms = diagnose(records, plan=plan)
    full, brief = advice_text(symptoms, plan).plain, advice_brief(symptoms, plan).plain
    assert "  解決策（ガイドの範囲外）: 早期終了 off -> 3: " in full and "（a: これで新しい実行を作る）" in full
    assert "  ほかの解決策: ドロップアウト 0.05 -> 0.1（ガイド） / " in full
    assert brief.startswith("⚠ ") and " · a: 早期終了 off -> 3（ガイドの範囲外）" in brief
    assert describe_changes({"max_grad_norm": 0.5}, None) == "max_grad_norm 0.5"  # a field without a label: its name
    assert english_words("\n".join([*notes, full, brief])) == [] and i18n.missing == set()
