"""scripts/diagnose.py's class-removal view: the own class's logit, the others'
logsumexp and the confidence, checked against the metric's own confidence."""

from __future__ import annotations

import re

import numpy as np
import pytest
from script_modules import load_script

from unlearnkit.metrics.competition import logit_scaled_confidence


@pytest.fixture(scope="module")
def diagnose():
    return load_script("diagnose")


def test_the_parts_add_up_to_the_metrics_confidence(diagnose):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7, 10)) * 3  # [N, S, K]
    labels = np.full(7, 3)
    parts = diagnose.class_logit_parts(logits, labels)
    confs = np.stack([logit_scaled_confidence(z, labels) for z in logits])  # [N, S]
    assert parts["confidence"] == pytest.approx(np.median(confs), abs=1e-6)
    assert parts["std across models"] == pytest.approx(np.median(confs.std(axis=0)), abs=1e-6)
    assert parts["own logit"] == pytest.approx(np.median(logits[:, :, 3]))


def test_a_pinned_removed_logit_shows_as_such(diagnose):
    logits = np.zeros((4, 6, 10))
    logits[:, :, 3] = -50.0
    parts = diagnose.class_logit_parts(logits, np.full(6, 3))
    assert parts["own logit"] == -50.0
    assert parts["others (logsumexp)"] == pytest.approx(np.log(9))
    assert parts["std across models"] == 0.0


def test_the_decomposition_line_reads_a_retrain_as_a_retrain(diagnose):
    rng = np.random.default_rng(0)
    level = rng.normal(0, 2, size=60)
    refs, retrains = level + rng.normal(size=(32, 60)), level + rng.normal(size=(32, 60))
    per_example = lambda line: float(re.search(r"per example ([0-9.]+)", line).group(1))  # noqa: E731
    line = diagnose.decompose(retrains, refs)
    assert per_example(line) < 0.2  # nearly all of the measured part is sampling noise
    assert float(re.search(r"and spread 1 ([0-9.]+)", line).group(1)) > 0.9
    shuffled = diagnose.decompose(level[::-1] + rng.normal(size=(32, 60)), refs)
    assert per_example(shuffled) > 1.0
