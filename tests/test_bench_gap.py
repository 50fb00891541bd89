"""scripts/bench_gap.py's split of the gap's bootstrap variance into examples and models."""

from __future__ import annotations

import numpy as np
import pytest
from script_modules import load_script


@pytest.fixture(scope="module")
def gap():
    return load_script("bench_gap")


def test_examples_share_separates_the_two_stages(gap):
    rng = np.random.default_rng(0)
    models = np.repeat(rng.normal(0, 1.0, 25), 8)  # one value per model draw, 8 resamples each
    examples = rng.normal(0, 1.0, 200)  # fresh at every resample
    assert gap.examples_share(models, 25) == pytest.approx(0.0, abs=1e-12)
    assert gap.examples_share(examples, 25) == pytest.approx(1.0, abs=0.2)
    both = gap.examples_share(models + examples, 25)
    assert 0.3 < both < 0.7, "equal variances: about half from each stage"
    assert np.isnan(gap.examples_share(np.zeros(200), 25))
