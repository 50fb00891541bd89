"""Every plot of a local evaluation (PNG): where the forget quality was lost.

Epsilons per forget example against the score's buckets, the worst-forgotten examples'
two confidence distributions, and the accuracies of the method beside both oracles.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_path
from ..metrics.competition import bucket_edges, max_epsilon

if TYPE_CHECKING:
    from . import EvalResult


def write_plots(result: EvalResult, out: Path) -> None:
    """Epsilon histogram, worst examples, accuracies of a scored method (PNG)."""
    eps = result.method.forget_quality.epsilons
    plot_epsilons(eps, result.summary["num_models"], out / "epsilons.png")
    plot_worst_examples(result.method.confs, result.ref_confs, eps, out / "worst_examples.png")
    plot_accuracies(result.summary, out / "accuracies.png")


def _pyplot():
    """matplotlib's pyplot on the non-interactive backend (imported only when plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_worst_examples(u: np.ndarray, r: np.ndarray, eps: np.ndarray, path: Path,
                        count: int = 6) -> None:
    """For the examples with the largest epsilon: unlearned vs retrained confidences."""
    plt = _pyplot()
    worst = np.argsort(-eps, kind="stable")[:count]
    cols = min(3, len(worst))
    rows = math.ceil(len(worst) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, i in zip(axes.flat, worst):
        bins = np.histogram_bin_edges(np.concatenate([u[:, i], r[:, i]]), bins=20)
        ax.hist(r[:, i], bins=bins, alpha=0.6, label="retrained")
        ax.hist(u[:, i], bins=bins, alpha=0.6, label="unlearned")
        ax.set_title(f"forget example {i}: eps = {eps[i]:.2f}", fontsize=9)
        ax.set_xlabel("logit-scaled confidence", fontsize=8)
    for ax in list(axes.flat)[len(worst):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Worst-forgotten examples: the two distributions over N models")
    _save_figure(fig, path)


def plot_accuracies(summary: dict, path: Path) -> None:
    """Retain / test / forget accuracy of the method, both oracles and the references."""
    plt = _pyplot()
    rows = {"references": summary["references"],
            "oracle: retrain": summary["oracles"]["retrain"],
            "oracle: original": summary["oracles"]["original"],
            summary["method"]: summary.get("accuracy", {})}
    keys = ["retain", "test", "forget"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(rows)
    lowest = 1.0
    for j, (name, acc) in enumerate(rows.items()):
        vals = [acc.get(k if k in acc else f"{k}_acc", np.nan) for k in keys]
        ax.bar(np.arange(3) + j * width, vals, width, label=name)
        lowest = min(lowest, np.nanmin(vals) if not np.all(np.isnan(vals)) else 1.0)
    ax.set_xticks(np.arange(3) + width * (len(rows) - 1) / 2, keys)
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)  # zoomed: the differences are what matter
    ax.set_ylabel("accuracy (mean over N models)")
    ax.legend(fontsize=8, loc="lower left")
    _save_figure(fig, path)


def plot_epsilons(epsilons, num_models: int, path, title: str | None = None):
    """Write a PNG histogram of per-example epsilons with the score buckets marked.

    Dotted lines mark the bucket edges (0, 0.5, ..., max_eps); a bucket's points are
    written above it. The file is written to a temporary name and renamed into place.
    """
    plt = _pyplot()
    eps = np.asarray(epsilons, dtype=np.float64)
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError(f"epsilons: expected a non-empty 1-D array, got shape {eps.shape}")
    if not np.isfinite(eps).all():
        raise ValueError("epsilons: contains NaN or inf")
    if int(num_models) < 2:
        raise ValueError(f"num_models: need at least 2, got {num_models}")
    edges = bucket_edges(num_models)
    top = float(edges[-1]) + 1.0  # epsilons beyond are drawn in the last bin
    zero = int((eps >= edges[-1]).sum())
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.hist(np.minimum(eps, top - 0.125), bins=np.arange(0, top + 0.125, 0.25),
                color="tab:blue", alpha=0.8)
        for k, e in enumerate(edges):
            ax.axvline(e, color="gray", linestyle=":", linewidth=1)
            if k < len(edges) - 1:
                label = "1" if k == 0 else f"$2^{{-{k}}}$"
                ax.text(e + 0.25, 1.0, label, transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=8, color="gray")
        ax.axvline(edges[-1], color="tab:red", linewidth=1.5,
                   label=f"max_eps = {max_epsilon(num_models)}: {zero} examples at or past it "
                         "(0 points)")
        ax.set_xlim(0, top)
        ax.set_xlabel(f"per-example epsilon (last bin: >= {top - 0.25:g}, cap 50)")
        ax.set_ylabel("forget examples")
        ax.set_title(title or f"epsilons of {eps.size} forget examples, N = {num_models} models",
                     pad=16)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return os.fspath(path)
