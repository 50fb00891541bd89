"""scripts/bench_gap.py's split of the gap's bootstrap variance into examples and models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_gap.py"


@pytest.fixture(scope="module")
def gap():
    spec = importlib.util.spec_from_file_location("bench_gap", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_share_separates_the_two_stages(gap):
    rng = np.random.default_rng(0)
    models = np.repeat(rng.normal(0, 1.0, 25), 8)  # one value per model draw, 8 resamples each
    examples = rng.normal(0, 1.0, 200)  # fresh at every resample
    assert gap.examples_share(models, 25) == pytest.approx(0.0, abs=1e-12)
    assert gap.examples_share(examples, 25) == pytest.approx(1.0, abs=0.2)
    both = gap.examples_share(models + examples, 25)
    assert 0.3 < both < 0.7, "equal variances: about half from each stage"
    assert np.isnan(gap.examples_share(np.zeros(200), 25))
