"""Keep what a person reads (run.log, the adapters commands) free of library noise."""

from __future__ import annotations


def quiet_libraries() -> None:
    """No per-item progress bars and no deprecation chatter from transformers, TRL, PEFT and datasets."""
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft)\.")
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
