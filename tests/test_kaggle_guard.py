"""The notebook's time guard: projections, and stopping a run that cannot fit."""

from __future__ import annotations

import pytest

from unlearnkit.kaggle.runtime.guard import TimeBudgetExceeded, check_budget, project


def test_projection_adds_remaining_runs_at_the_median_pace():
    # 3 runs of 10 s (one slow warm-up of 30 s is ignored by the median), 60 s elapsed.
    proj = project([30.0, 10.0, 10.0], runs_total=10, elapsed_s=60.0, budget_s=1000.0)
    assert proj.seconds_per_run == 10.0
    assert proj.projected_s == pytest.approx(60.0 + 7 * 10.0)
    assert proj.over_s < 0
    assert "under the budget" in proj.message()


def test_no_verdict_before_the_first_runs():
    assert check_budget([100.0, 100.0], runs_total=512, elapsed_s=200, budget_s=10,
                        min_runs=3) is None


def test_guard_stops_a_run_that_would_overrun_and_says_by_how_much():
    # 512 runs at 60 s would take 8.5 h; the budget is 7.5 h.
    with pytest.raises(TimeBudgetExceeded) as err:
        check_budget([60.0, 60.0, 60.0], runs_total=512, elapsed_s=200.0,
                     budget_s=7.5 * 3600, min_runs=3)
    msg = str(err.value)
    assert "over the budget of 7.50 h" in msg
    over = 200.0 + 509 * 60.0 - 7.5 * 3600
    assert f"{over / 3600:.2f} h" in msg
    assert "About 449 runs fit" in msg  # (27000 - (200 - 180)) // 60


def test_guard_passes_a_run_that_fits():
    proj = check_budget([50.0] * 3, runs_total=512, elapsed_s=180.0, budget_s=7.5 * 3600)
    assert proj is not None and proj.over_s < 0


def test_guard_decides_at_the_last_run_even_below_min_runs():
    with pytest.raises(TimeBudgetExceeded):
        check_budget([5.0], runs_total=1, elapsed_s=20.0, budget_s=10.0, min_runs=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        project([], 10, 0.0, 1.0)
    with pytest.raises(ValueError, match="planned"):
        project([1.0, 1.0], 1, 0.0, 1.0)
