"""Projecting the notebook's time from the measured device onto other cards.

The time guard (:mod:`.guard`) projects the whole notebook on the card it runs on; this
module rescales a measured time per run to another card by the ratio of their FP32
throughputs. The table holds approximate peak FP32 (non-tensor-core) TFLOPS as printed
on NVIDIA's spec sheets (boost clocks; PCIe parts where Kaggle offers them): a rough
guide, not a measurement. The projection assumes a run's time is compute-bound and
scales with that peak; it ignores memory bandwidth, the TF32 tensor cores that A100 and
newer cards use for convolutions by default (they make those cards faster than the ratio
says), and a T4's power limit (it makes a T4 slower). Pure Python, inlined into the
notebook.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    name: str
    tflops: float
    """Approximate peak FP32 TFLOPS (spec sheet)."""
    source: str


CARDS = {
    "p100": Card("Tesla P100 PCIe 16 GB", 9.3, "NVIDIA Tesla P100 datasheet"),
    "t4": Card("Tesla T4", 8.1, "NVIDIA T4 datasheet"),
    "v100": Card("Tesla V100 PCIe", 14.0, "NVIDIA V100 datasheet (SXM2: 15.7)"),
    "a100": Card("A100", 19.5, "NVIDIA A100 datasheet"),
    "h100": Card("H100 SXM", 67.0, "NVIDIA H100 datasheet (PCIe: 51)"),
    "h200": Card("H200 SXM", 67.0, "NVIDIA H200 datasheet"),
}
KAGGLE_CARDS = ("p100", "t4")


def card_key(device_name: str) -> str | None:
    """The table's key of a CUDA device name (``"Tesla T4"`` -> ``"t4"``), or ``None``."""
    name = device_name.lower()
    for key in CARDS:
        if key in name:
            return key
    return None


def check_card(key: str) -> Card:
    """The card ``key`` names; a one-line ``ValueError`` listing the known ones otherwise."""
    if key not in CARDS:
        raise ValueError(f"unknown card {key!r}; choose one of: {', '.join(CARDS)} (or cpu)")
    return CARDS[key]


def scale(seconds: float, from_tflops: float, to_tflops: float) -> float:
    """``seconds`` measured at ``from_tflops``, rescaled to a card of ``to_tflops``."""
    if from_tflops <= 0 or to_tflops <= 0:
        raise ValueError("throughputs must be > 0")
    return seconds * from_tflops / to_tflops


def other_cards_line(seconds_per_run: float, runs: int, from_key: str | None,
                     to_keys=KAGGLE_CARDS) -> str | None:
    """``"on a Tesla T4: ~1.2 h for 512 runs; ..."`` from a card in the table, else ``None``."""
    if from_key not in CARDS:
        return None
    src = CARDS[from_key].tflops
    parts = [f"{CARDS[k].name} ~{scale(seconds_per_run, src, CARDS[k].tflops) * runs / 3600:.2f} h"
             for k in to_keys if k != from_key]
    if not parts:
        return None
    return (f"the {runs} runs on other cards (FP32 spec-sheet ratio from the "
            f"{CARDS[from_key].name}; approximate): " + ", ".join(parts))
