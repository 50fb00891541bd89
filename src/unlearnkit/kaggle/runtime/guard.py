"""The notebook's time guard: stop early when the runs cannot finish inside the budget.

Kaggle kills a notebook after 8 hours and then there is no submission at all. After the
first few runs the guard projects the whole notebook's wall time (time spent so far plus
the remaining runs at the typical seconds per run) and raises at once when the projection
exceeds the budget, saying by how much and how many runs would fit. Pure Python (no
torch) so that it is unit-testable and cheap to inline into the notebook.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


class TimeBudgetExceeded(RuntimeError):
    """Raised when the projected wall time of the notebook exceeds its budget."""


@dataclass(frozen=True)
class Projection:
    """Where the notebook stands after ``runs_done`` of ``runs_total`` unlearning runs."""

    runs_done: int
    runs_total: int
    elapsed_s: float
    """Wall time since the notebook started (loading included)."""
    seconds_per_run: float
    """Median time of one run so far (the median ignores a slow first, warm-up run)."""
    budget_s: float

    @property
    def projected_s(self) -> float:
        """Elapsed time plus the remaining runs at ``seconds_per_run``."""
        return self.elapsed_s + (self.runs_total - self.runs_done) * self.seconds_per_run

    @property
    def over_s(self) -> float:
        """Seconds by which the projection exceeds the budget (negative: to spare)."""
        return self.projected_s - self.budget_s

    @property
    def runs_that_fit(self) -> int:
        """How many runs in total would fit in the budget at this pace."""
        if self.seconds_per_run <= 0:
            return self.runs_total
        spare = self.budget_s - (self.elapsed_s - self.runs_done * self.seconds_per_run)
        return max(0, int(spare // self.seconds_per_run))

    def message(self) -> str:
        """One line a person reads: pace, projection, budget, and the margin."""
        verdict = "over" if self.over_s > 0 else "under"
        return (
            f"{self.runs_done}/{self.runs_total} runs, {self.seconds_per_run:.1f} s per run: "
            f"projected {_hours(self.projected_s)} for the whole notebook, "
            f"{_hours(abs(self.over_s))} {verdict} the budget of {_hours(self.budget_s)}"
        )


def _hours(seconds: float) -> str:
    """``"1.25 h (4500 s)"``: readable at both scales."""
    return f"{seconds / 3600:.2f} h ({seconds:.0f} s)"


def project(run_seconds: list[float], runs_total: int, elapsed_s: float,
            budget_s: float) -> Projection:
    """The projection from the times of the runs done so far (at least one)."""
    if not run_seconds:
        raise ValueError("project() needs the time of at least one finished run")
    if runs_total < len(run_seconds):
        raise ValueError(f"{len(run_seconds)} runs done but only {runs_total} planned")
    return Projection(
        runs_done=len(run_seconds),
        runs_total=runs_total,
        elapsed_s=float(elapsed_s),
        seconds_per_run=float(statistics.median(run_seconds)),
        budget_s=float(budget_s),
    )


def check_budget(run_seconds: list[float], runs_total: int, elapsed_s: float,
                 budget_s: float, *, min_runs: int = 3) -> Projection | None:
    """Raise :class:`TimeBudgetExceeded` when the projection exceeds ``budget_s``.

    Returns ``None`` (no verdict) until ``min_runs`` runs are done, else the projection.
    Call it after every run: the first verdict comes after ``min_runs`` runs, and later
    calls catch a method that slows down.
    """
    if len(run_seconds) < max(1, min_runs) and len(run_seconds) < runs_total:
        return None
    proj = project(run_seconds, runs_total, elapsed_s, budget_s)
    if proj.over_s > 0:
        raise TimeBudgetExceeded(
            f"time guard: {proj.message()}. Stopping now rather than running out of time. "
            f"About {proj.runs_that_fit} runs fit at this pace: lower NUM_CHECKPOINTS, "
            f"make the method faster, or raise TIME_BUDGET_HOURS (Kaggle stops at 8 h)."
        )
    return proj
