"""The report's plots (unlearnkit.report.plots): PNG files, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.report.plots import plot_epsilons


def test_plot_epsilons_writes_a_png(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "sub" / "eps.png"
    out = plot_epsilons(np.clip(rng.exponential(2.0, 200), 0, 50), 512, path)
    assert out == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in path.parent.iterdir()] == ["eps.png"]  # no temp file left


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: plot_epsilons(np.array([1.0, np.nan]), 16, "x.png"), "epsilons: contains NaN"),
        (lambda: plot_epsilons(np.ones((2, 2)), 16, "x.png"), "epsilons: expected a non-empty 1-D"),
        (lambda: plot_epsilons(np.ones(3), 1, "x.png"), "num_models: need at least 2"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
