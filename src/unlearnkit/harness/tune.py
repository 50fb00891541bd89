"""Tune a method against the competition's score: an optuna study, resumable in SQLite.

Each trial draws the method's settings from the space declared beside its config fields
(:mod:`unlearnkit.harness.tune_space`), runs it N times from the cached original
(:func:`unlearnkit.harness.pipeline.ensure_runs`: a setting already run costs nothing) and
returns its final score against the cached references. The time rule reads the first
run (timed alone) and then the mean of the N: above ``time_fraction`` of one retrain
(reference 0's time, as everywhere in the kit) the trial is pruned, with the reason in
its user attributes; a trial that raises is recorded as failed, with its error, and the
study goes on.

The study lives in optuna's RDB storage (SQLite under ``data/studies/`` by default):
Ctrl-C or a crash loses at most the running trial (heartbeats mark a dead process's
trial failed), a rerun tops the study up to ``--trials``, and two processes can share it.
It records its benchmark, method and N and refuses to mix in another's trials.

Against overfitting to the references: the best settings and the defaults are run again
with other seeds (N..2N-1) and scored against the other N retrained models (the retrain
oracle's seeds N..2N-1, already cached), all with paired 95% intervals.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..benchmarks import Benchmark, stable_hash
from ..metrics import intervals
from ..metrics.model_sets import Outputs
from . import tune_space
from .context import RETRAIN, Context, bench_folder
from .pipeline import (
    Plan,
    check_plan,
    check_request,
    ensure_runs,
    load_entries,
    note,
    one_pool,
    prepare_references,
)
from .scoring_core import TIME_RULE, References, score_sets, seconds_per_run

STUDIES_DIR = Path("data") / "studies"
RESAMPLES, MODEL_DRAWS = intervals.RESAMPLES, intervals.MODEL_DRAWS  # of the final intervals
HEARTBEAT_S, GRACE_S = 30, 120  # a trial silent for GRACE_S is a dead process's: failed
META = ("benchmark", "benchmark_key", "method", "num_models")  # a study's identity


@dataclass
class TuneRequest:
    """What ``unlearnkit tune`` was asked for."""

    bench: Benchmark
    method: str
    trials: int = 20
    time_fraction: float = TIME_RULE
    seed: int = 0
    study: str | None = None
    storage: str | None = None
    space: list[str] = field(default_factory=list)  # --space items
    fixed: dict = field(default_factory=dict)  # --set values (not searched)
    timeout: float | None = None  # seconds after which no new trial starts

    @property
    def study_name(self) -> str:
        return self.study or f"{self.bench.name}-{self.method}"


# ---------------------------------------------------------------- checks and storage


def check(req: TuneRequest, plan: Plan):
    """Every check that needs no data: numbers, the method, its fixed values and the
    space. Returns ``(defaults config, space)``."""
    check_plan(plan)
    if req.trials < 1:
        raise ValueError(f"--trials must be >= 1, got {req.trials}")
    if not req.time_fraction > 0:
        raise ValueError(f"--time-fraction must be > 0 (0.2: the competition's 20% of a "
                         f"retrain), got {req.time_fraction}")
    if req.timeout is not None and not req.timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {req.timeout}")
    cfg = check_request(req.bench, [req.method], req.fixed)[req.method]
    return cfg, tune_space.resolve(type(cfg), req.space, req.fixed)


def storage_url(req: TuneRequest) -> str:
    """``--storage``, else SQLite at ``data/studies/<bench>-<method>.db``."""
    if req.storage:
        return req.storage
    path = (STUDIES_DIR / f"{req.bench.name}-{req.method}.db").resolve()
    return f"sqlite:///{path}"


def open_storage(url: str):
    """optuna's RDB storage at ``url`` (an SQLite file's folder made, the file checked
    first: :func:`unlearnkit.paths.check_storage`); a clear error when it cannot be opened."""
    import optuna

    from ..paths import check_storage, sqlite_file

    check_storage(url)
    if sqlite_file(url) is not None:
        sqlite_file(url).parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except Exception as err:  # sqlalchemy's many kinds: bad dialect, path, permissions
        raise ValueError(f"cannot open the study storage {url!r}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}; give a database "
                         "URL such as sqlite:////abs/path/study.db (its folder must exist), "
                         "or leave --storage out for data/studies/") from None


def study_meta(req: TuneRequest) -> dict:
    return {"benchmark": req.bench.name, "benchmark_key": req.bench.key(),
            "method": req.method, "num_models": req.bench.num_models}


def open_study(req: TuneRequest, storage):
    """The study (created, or loaded to resume); refused when made for another
    benchmark, method or N."""
    import optuna

    study = optuna.create_study(study_name=req.study_name, storage=storage,
                                direction="maximize", load_if_exists=True)
    meta, have = study_meta(req), study.user_attrs
    if not have:
        for k, v in meta.items():
            study.set_user_attr(k, v)
        return study
    wrong = {k: (have.get(k), meta[k]) for k in META if have.get(k) != meta[k]}
    if wrong:
        told = ", ".join(f"{k} {a!r} (asked: {b!r})" for k, (a, b) in wrong.items())
        raise ValueError(f"study {req.study_name!r} was made for another setting: {told}; "
                         "its trials cannot be mixed "
                         "with these. Give another --study NAME (or --storage)")
    return study


def sampler(req: TuneRequest, done: int):
    """TPE, seeded by ``--seed`` and the trials already done (a resumed study does not
    replay the first trials' random draws)."""
    import optuna

    startup = max(2, min(10, req.trials // 3))
    return optuna.samplers.TPESampler(seed=req.seed + done, n_startup_trials=startup)


# ---------------------------------------------------------------- the objective


class Objective:
    """One trial: settings from the space, N runs (cached), the time rule, the score."""

    def __init__(self, req: TuneRequest, ctx: Context, refs: References, plan: Plan,
                 space: dict):
        self.req, self.ctx, self.refs, self.plan, self.space = req, ctx, refs, plan, space
        self.kinds = tune_space.kinds(self._cls())

    def _cls(self):
        from ..methods import get_method

        return get_method(self.req.method).config

    def __call__(self, trial) -> float:
        import optuna

        try:
            return self._score(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
            raise

    def config(self, values: dict):
        from ..methods import resolve_config

        return resolve_config(self.req.method, {**self.req.bench.method_overrides.get(
            self.req.method, {}), **self.req.fixed, **values})

    def _score(self, trial) -> float:
        values = {k: tune_space.suggest(trial, k, sp, self.kinds[k])
                  for k, sp in self.space.items()}
        trial.set_user_attr("config", values)
        cfg = self.config(values)
        trial.set_user_attr("config_hash", stable_hash(cfg.to_dict()))
        n = self.req.bench.num_models
        first = runs_of(self.ctx, self.plan, self.req.method, cfg, [0])
        self._time_rule(trial, first, "its first run")
        runs = runs_of(self.ctx, self.plan, self.req.method, cfg, list(range(n)))
        self._time_rule(trial, runs, f"its {n} runs (mean)")
        s = self.refs.point(runs)
        trial.set_user_attr("forget_quality", s.forget_quality.score)
        for k, v in self.refs.ratios(s).items():
            trial.set_user_attr(k, v)
        return float(s.score)

    def _time_rule(self, trial, runs: list[Outputs], what: str) -> None:
        import optuna

        seconds = seconds_per_run(runs)
        frac = seconds / self.refs.retrain_seconds
        trial.set_user_attr("seconds_per_run", seconds)
        trial.set_user_attr("time_fraction_of_retrain", frac)
        if frac > self.req.time_fraction:
            reason = (f"over the time rule: {what} took {seconds:.2f} s = {100 * frac:.0f}% of "
                      f"one retrain ({self.refs.retrain_seconds:.2f} s); the limit is "
                      f"{100 * self.req.time_fraction:.0f}%")
            trial.set_user_attr("pruned", reason)
            raise optuna.TrialPruned(reason)


def runs_of(ctx: Context, plan: Plan, method: str, cfg, seeds: list[int]) -> list[Outputs]:
    """The method's runs for ``seeds`` (run when not cached); raises when one failed."""
    errors = ensure_runs(ctx, plan, method, cfg, seeds)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(seeds)} runs failed; first: {errors[0]}")
    return load_entries([ctx.run_path(method, cfg.to_dict(), s) for s in seeds])


# ---------------------------------------------------------------- the loop


def counted(study) -> int:
    """Finished trials, those that count towards ``--trials``: complete, pruned, and failed
    with an error of their own (not an interrupted one, nor a dead process's). A trial
    waiting or running (maybe another process's, maybe a dead one's) is not finished."""
    return sum(finished(t) for t in study.get_trials(deepcopy=False))


def finished(trial) -> bool:
    """Whether ``trial`` ran to an end: complete, pruned, or failed with its own error."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def fail_stale(study) -> None:
    """Mark failed the running trials whose heartbeat is older than the grace period (a
    killed process's), so that they are run again rather than waited for."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def enqueue_defaults(study, point: dict) -> None:
    """Queue the defaults' trial (the score before tuning) unless one finished or waits:
    a defaults trial cut short by Ctrl-C or a crash is queued again."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False):
        mine = t.user_attrs.get("defaults") or (t.number == 0 and "defaults" not in t.user_attrs)
        if mine and (finished(t) or t.state == TrialState.WAITING):
            return
    study.enqueue_trial(point, user_attrs={"defaults": True})


def queue_defaults_if_inside(study, defaults, space: dict) -> bool:
    """:func:`enqueue_defaults` when every searched field's default lies inside its range;
    else say which do not and queue nothing (optuna would sample those fields, and a
    trial labelled 'defaults' would not be the defaults). The held-out re-scoring compares
    the best with the true defaults either way."""
    point = tune_space.default_point(defaults, space)
    outside = sorted(set(space) - set(point))
    if outside:
        note("the defaults of " + ", ".join(f"{k}={getattr(defaults, k)}" for k in outside)
             + " lie outside the searched ranges: no trial scores the defaults (the "
             "held-out re-scoring still compares the best with them)")
        return False
    enqueue_defaults(study, point)
    return True


class _NoInterruptTraceback(logging.Filter):
    """Drop optuna's two 'trial failed' records of a Ctrl-C (the first with a traceback of
    80 lines; the command line says the one line that matters)."""

    interrupted: str | None = None  # "Trial <n> failed" of the interrupted trial

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        text = str(record.msg)
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted = " ".join(text.split()[:3])
            return False
        if self.interrupted and text.startswith(self.interrupted):
            self.interrupted = None
            return False
        return True


def _quiet_interrupts() -> None:
    """Install :class:`_NoInterruptTraceback` on optuna's trial loop (once)."""
    log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _NoInterruptTraceback) for f in log.filters):
        log.addFilter(_NoInterruptTraceback())


def best_trial(study):
    """The complete trial of the highest score (None when none completed)."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    return max(done, key=lambda t: t.value) if done else None


def optimize(study, objective: Objective, req: TuneRequest, progress: bool) -> int:
    """Run trials until the study holds ``req.trials`` (or ``--timeout`` passes); returns
    how many this process ran."""
    import optuna
    from tqdm.auto import tqdm

    started, ran = time.time(), 0
    fail_stale(study)
    done = counted(study)
    bar = tqdm(total=req.trials, initial=min(done, req.trials), desc=f"tune {req.method}",
               unit="trial", disable=not progress)
    try:
        while counted(study) < req.trials:
            if req.timeout is not None and time.time() - started > req.timeout:
                note(f"--timeout {req.timeout:g} s passed: no new trial started; "
                     f"{counted(study)} of {req.trials} done (run again to go on)")
                break
            study.sampler = sampler(req, len(study.trials))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(objective, n_trials=1, catch=(Exception,))
            ran += 1
            best = best_trial(study)
            bar.n = min(counted(study), req.trials)
            bar.set_postfix_str(f"best {best.value:.4f} (#{best.number})" if best else "best -")
            bar.refresh()
    finally:
        bar.close()
    return ran


# ---------------------------------------------------------------- rescoring with intervals


def paired_scores(refs: References, named: dict[str, list[Outputs]],
                  workers: int = 1) -> dict:
    """Every set's F and score against ``refs`` with 95% intervals from the scoring core,
    and ``tuned_minus_defaults`` (its interval excluding 0: ``moved``); the tuned and
    default sets also get their run time as a fraction of one retrain."""
    scores = score_sets(refs, named, timed=("tuned", "defaults"), workers=workers,
                        resamples=RESAMPLES, model_draws=MODEL_DRAWS)
    out = {k: {key: scores.intervals[k][key] for key in ("forget_quality", "score")}
           for k in named}
    for k, t in scores.times.items():
        out[k]["time_fraction_of_retrain"] = t["time_fraction_of_retrain"]
    out["tuned_minus_defaults"] = scores.difference("tuned", "defaults")
    return out


def disagreement(tuned: dict, held_out: dict) -> dict:
    """Whether the tuned score and its held-out re-score differ beyond their intervals:
    |a - b| against the combined half-width sqrt(h_a^2 + h_b^2) (independent estimates)."""
    a, b = tuned["score"], held_out["score"]
    ha, hb = (a["high"] - a["low"]) / 2, (b["high"] - b["low"]) / 2
    limit = math.sqrt(ha ** 2 + hb ** 2)
    return {"difference": a["value"] - b["value"], "combined_half_width": limit,
            "disagree": bool(abs(a["value"] - b["value"]) > limit)}


def rescore(req: TuneRequest, ctx: Context, sets: dict, plan: Plan, tuned, defaults) -> dict:
    """The tuned settings and the defaults against the tuning references (seeds 0..N-1,
    runs 0..N-1) and against held-out ones (references N..2N-1, runs N..2N-1)."""
    n, m = req.bench.num_models, req.method
    seeds, other = list(range(n)), list(range(n, 2 * n))
    tuning = paired_scores(References(ctx, sets["refs"]), {
        "tuned": runs_of(ctx, plan, m, tuned, seeds),
        "defaults": runs_of(ctx, plan, m, defaults, seeds),
        "oracle_retrain": sets["retrain"], "oracle_original": sets["original"]}, plan.workers)
    held_refs = References(ctx, sets["retrain"], seconds_per_run(sets["refs"][:1]))
    held = paired_scores(held_refs, {
        "tuned": runs_of(ctx, plan, m, tuned, other),
        "defaults": runs_of(ctx, plan, m, defaults, other),
        "oracle_retrain": sets["refs"], "oracle_original": sets["original"]}, plan.workers)
    return {"tuning": tuning, "held_out": held,
            "disagreement": disagreement(tuning["tuned"], held["tuned"])}


# ---------------------------------------------------------------- the whole command


def references_cached(bench: Benchmark, cache_dir) -> int:
    """How many retrained models of this benchmark are cached (any data folder)."""
    return len(list(bench_folder(bench, cache_dir).glob(f"*/models/{RETRAIN}/*.npz")))


def run_tune(req: TuneRequest, plan: Plan) -> dict:
    """Check, build the references if needed, run the study, re-score; a summary dict
    (``study`` holds the optuna study, for the report's table and plots)."""
    import optuna

    started = time.time()
    defaults, space = check(req, plan)
    url = storage_url(req)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the bar says it all
    _quiet_interrupts()
    study = open_study(req, open_storage(url))  # refused mixes fail before any training
    n = req.bench.num_models
    have = references_cached(req.bench, plan.cache_dir)
    if have < 2 * n:
        note(f"the references are not cached yet ({have} of {2 * n} retrained models, plus "
             f"the original and its {n} oracle models): building them first, once")
    with one_pool(plan) as plan:
        ctx, sets = prepare_references(req.bench, plan)
        refs = References(ctx, sets["refs"])
        quiet = dataclasses.replace(plan, progress=False)
        objective = Objective(req, ctx, refs, quiet, space)
        queue_defaults_if_inside(study, defaults, space)  # the score before tuning
        ran = optimize(study, objective, req, plan.progress)
        best = best_trial(study)
        summary = {
            "benchmark": req.bench.name, "method": req.method, "num_models": n,
            "study": req.study_name, "storage": url, "seed": req.seed,
            "time_fraction": req.time_fraction, "retrain_seconds": refs.retrain_seconds,
            "space": {k: v.describe() for k, v in space.items()}, "fixed": req.fixed,
            "defaults": _public(defaults.to_dict()), "trials": trial_counts(study, ran),
            "best": None, "study_obj": study,
        }
        if best is not None:
            tuned = objective.config(best.user_attrs.get("config", best.params))
            summary["best"] = {"number": best.number, "value": best.value,
                               "settings": best.user_attrs.get("config", best.params),
                               "hyperparameters": _public(tuned.to_dict()),
                               "seconds_per_run": best.user_attrs.get("seconds_per_run"),
                               "time_fraction_of_retrain": best.user_attrs.get(
                                   "time_fraction_of_retrain")}
            summary["rescored"] = rescore(req, ctx, sets, plan, tuned, defaults)
    summary["wall_seconds"] = time.time() - started
    return summary


def _public(hp: dict) -> dict:
    """A config's fields without the display switch ``progress``."""
    return {k: v for k, v in hp.items() if k != "progress"}


def trial_counts(study, ran: int) -> dict:
    from collections import Counter

    states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return {"total": len(study.trials), "ran_now": ran, **dict(states)}
