"""The Textual app: a wizard from hardware to a launched run, a run monitor and a runs list.

Start it with `lora_tui.ui.launch.run_tui` (what `lora-tui` with no subcommand does); build it for tests with
`lora_tui.ui.app.make_app`, passing fakes for the hardware probe and the run launcher.
"""
