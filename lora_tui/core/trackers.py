"""Experiment trackers (`--report-to`): which package each of the Trainer's integrations needs, checked without
importing it, so a run that asks for a tracker that is not installed is refused before it starts.

Nothing is sent anywhere unless a run asks: `report_to` is `none` by default (`core.plan.TrainingPlan`), and the
training process passes it to the Trainer as it is.
"""

from __future__ import annotations

import importlib.util

from lora_tui.errors import UserError
from lora_tui.i18n import _

PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
    "trackio": (("trackio",), "trackio"),
}
"""Tracker -> (the modules any of which serves the Trainer's integration, the package to install)."""

TENSORBOARD_DIR = "tensorboard"
"""Where a run's TensorBoard event files go, inside the run directory."""


def missing_package(report_to: str) -> str | None:
    """The package to install for `report_to`, or None when it is installed (or no tracker is asked for)."""
    modules, package = PACKAGES.get(report_to, ((), ""))
    if not modules:
        return None
    for module in modules:
        try:
            if importlib.util.find_spec(module) is not None:
                return None
        except (ImportError, ValueError):  # a broken or half-installed package counts as missing
            continue
    return package


def check_tracker(report_to: str) -> None:
    """UserError in one line when the tracker's package is missing."""
    package = missing_package(report_to)
    if package is not None:
        raise UserError(_("--report-to {tracker}: the {package} package is not installed; install it "
                          "(`pip install {package}`) or use --report-to none").format(tracker=report_to,
                                                                                      package=package))
