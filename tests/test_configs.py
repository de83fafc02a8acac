"""The shipped digits config reaches its documented accuracy on the five standard splits."""

from __future__ import annotations

import statistics
from pathlib import Path

from ml_math_nn.runs.options import load_config
from ml_math_nn.runs.training import run_training

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits-deep.toml"


def test_deep_digits_config_beats_0_985_on_seeds_0_to_4(tmp_path: Path) -> None:
    """Two hidden layers on the stratified 80/20 splits of seeds 0..4: mean test accuracy >= 0.985."""
    config = load_config(CONFIG)
    assert len(config.hidden) >= 2 and config.test_size == 0.2
    accuracies = []
    for seed in range(5):
        result = run_training(config.merged({"seed": seed}), tmp_path / str(seed), report=lambda _: None)
        accuracies.append(result.summary["final"]["test_acc"])
    assert statistics.mean(accuracies) >= 0.985, accuracies
