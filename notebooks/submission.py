# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
# The configuration: the only cell to edit (unlearnkit submission notebook; see below).
METHOD = "retrain_head_tuned"  # the kit's best on the competition's network (docs/leaderboards.md)
HYPERPARAMETERS = {}  # overrides of the method's published defaults, e.g. {"lr": 1e-4}
# a mixture splits the checkpoints between methods (checkpoint i runs one, by share), e.g.
# METHOD, HYPERPARAMETERS = "mixture", {"shares": {"reinit_lowgrad": 0.5, "perturb_finetune": 0.5}}
NUM_CHECKPOINTS = 512  # unlearning runs, one checkpoint each (the competition wants 512)
TIME_BUDGET_HOURS = 7.5  # the whole notebook's budget; Kaggle stops it at 8 hours
GUARD_AFTER_RUNS = 3  # the time guard's first projection comes after this many runs
LOADER = "device"  # "device": batches indexed on the GPU; "contract": the starter's DataLoader

# %% [markdown]
# # NeurIPS 2023 Machine Unlearning: an unlearnkit submission
#
# Runs one registered unlearning method `NUM_CHECKPOINTS` times (512 for the competition),
# each run from the original model (kept in memory, never trained), with its own seed and
# fresh loaders, and zips the checkpoints into `submission.zip`, as the official starter does.
#
# This notebook is built by `make notebook` from `notebooks/submission.py` in the unlearnkit
# repository; the kit's source is inlined below, so it needs no internet, no dataset and
# installs nothing. **Edit only the first cell** (or rebuild with
# `unlearnkit build-notebook --method NAME --set key=value`).
#
# Local runs: `UNLEARNKIT_INPUT_DIR`, `UNLEARNKIT_WORK_DIR`, `UNLEARNKIT_OUTPUT_DIR` and
# `UNLEARNKIT_NUM_CHECKPOINTS` override the Kaggle folders and the number of checkpoints.

# %% [markdown]
# ## The kit, inlined
# A zip of the `unlearnkit` modules this notebook uses (and the method configs), base64-encoded.
# It is unpacked to a temporary folder that goes first on `sys.path`.

# %% jupyter={"source_hidden": true}
import time  # noqa: E402

NOTEBOOK_START = time.time()  # the time guard counts the whole notebook, loading included
KIT_ZIP_BASE64 = """
"""

import base64  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import zipfile  # noqa: E402

if KIT_ZIP_BASE64.strip():  # empty only in the unbuilt source: then the installed kit is used
    KIT_DIR = tempfile.mkdtemp(prefix="unlearnkit-")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(KIT_ZIP_BASE64.split())))) as kit:
        kit.extractall(KIT_DIR)
    sys.path.insert(0, f"{KIT_DIR}/src")
    for _name in [m for m in sys.modules if m == "unlearnkit" or m.startswith("unlearnkit.")]:
        del sys.modules[_name]  # an installed unlearnkit must not shadow the inlined one

import unlearnkit  # noqa: E402

print(f"unlearnkit {unlearnkit.__version__} from {unlearnkit.__file__}")

# %% [markdown]
# ## Settings and checks
# Everything that can be wrong is checked here, before any long work: the first cell's numbers,
# the method and its hyperparameters, then (unless this is Kaggle's empty commit run) the GPU,
# every CSV (each row's image_id, age_group and person_id), every image file and the original
# model's architecture. The images are decoded next; an unreadable one stops there, named.

# %%
import copy  # noqa: E402
import random  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from unlearnkit.kaggle.runtime import checkpoints as ck  # noqa: E402
from unlearnkit.kaggle.runtime import dataset as ds  # noqa: E402
from unlearnkit.kaggle.runtime.budget import card_key, other_cards_line  # noqa: E402
from unlearnkit.kaggle.runtime.feed import check_loader, choose_feed  # noqa: E402
from unlearnkit.kaggle.runtime.guard import check_budget  # noqa: E402
from unlearnkit.kaggle.runtime.settings import (  # noqa: E402
    Settings,
    check_config,
    check_method,
    on_kaggle,
    pick_device,
)
from unlearnkit.kaggle.runtime.writer import CheckpointWriter  # noqa: E402
from unlearnkit.methods import run_method  # noqa: E402
from unlearnkit.models import load_checkpoint  # noqa: E402

check_config(NUM_CHECKPOINTS, TIME_BUDGET_HOURS, GUARD_AFTER_RUNS)  # the first cell, as edited
check_loader(LOADER)
SETTINGS = Settings.from_env(NUM_CHECKPOINTS, TIME_BUDGET_HOURS, guard_after_runs=GUARD_AFTER_RUNS)
CONFIG = check_method(METHOD, HYPERPARAMETERS)  # resolved and checked once, used by every run
print(f"method {METHOD}: {CONFIG}")
print(f"torch {torch.__version__}; {SETTINGS}")

EMPTY_RUN = SETTINGS.empty_run
if EMPTY_RUN:  # Kaggle's public copy: the real data is only there when the submission is scored
    ck.write_empty_zip(SETTINGS.zip_path)
    print(f"empty.txt found: wrote an empty {SETTINGS.zip_path}; nothing more to do")

# %%
if not EMPTY_RUN:
    DEVICE = pick_device(on_kaggle())
    TABLES = ds.validate_input(SETTINGS.input_dir, SETTINGS.original_path)
    print(f"device {DEVICE}; " + ", ".join(f"{k}: {len(t)} images" for k, t in TABLES.items()))

# %% [markdown]
# ## Data
# Every image is decoded once into memory (the data, not any result). With
# `LOADER = "device"` the uint8 images and their fields are kept on the GPU and each run
# gets fresh loaders that batch by indexing there; with `"contract"` (or when the data
# would not fit in the GPU's memory) fresh `DataLoader(ds, batch_size=64)` loaders of dict
# items. Both yield the same dict batches in the same seeded order.

# %%
if not EMPTY_RUN:
    DATASETS = ds.load_datasets(TABLES)
    FEED = choose_feed(DATASETS, DEVICE, LOADER)
    print(FEED.reason)

# %% [markdown]
# ## Unlearning
# The competition's `unlearning(net, retain_loader, forget_loader, val_loader)`, here with the
# run's seed: it changes `net` in place with the chosen method.


# %%
def unlearning(net, retain_loader, forget_loader, val_loader, seed):
    """Unlearn the forget set from ``net`` in place with METHOD and its resolved CONFIG."""
    run_method(METHOD, net, retain_loader, forget_loader, val_loader, seed=seed, cfg=CONFIG,
               scenario_kind="sample")


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and GPU): a run depends on its seed alone."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


if not EMPTY_RUN:
    ORIGINAL = load_checkpoint(SETTINGS.original_path, "resnet18").to(DEVICE)  # never trained


def original_model():
    """A fresh resnet18 with the original weights: a copy of the one kept in memory."""
    return copy.deepcopy(ORIGINAL)


# %% [markdown]
# ## The runs and the submission
# Run `i` uses seed `i`, a fresh network and fresh loaders; nothing is shared between runs.
# Each checkpoint is saved to the work folder by a background writer while the next run
# computes (atomically: a checkpoint on disk is complete or absent), then copied into
# `submission.zip` under the name `zip submission.zip <work dir>/unlearned_*.pth` would
# give it; the zip appears only once it holds exactly `NUM_CHECKPOINTS` checkpoints. After
# `GUARD_AFTER_RUNS` runs (and after every run from then on) the time guard projects the
# whole notebook's time and stops it at once if the projection exceeds the budget; its
# first projection also says what the runs would take on Kaggle's other cards.

# %%
if not EMPTY_RUN:
    SETTINGS.work_dir.mkdir(parents=True, exist_ok=True)
    ck.clear_checkpoints(SETTINGS.work_dir)
    run_seconds = []
    CARD = card_key(torch.cuda.get_device_name(DEVICE)) if DEVICE.type == "cuda" else None
    with ck.SubmissionZip(SETTINGS.zip_path) as submission:
        with CheckpointWriter(on_written=submission.add) as writer:
            for i in tqdm(range(SETTINGS.num_checkpoints), desc=METHOD):
                run_start = time.time()
                seed_everything(i)
                net = original_model()
                retain_loader, forget_loader, val_loader = FEED.loaders(seed=i)
                unlearning(net, retain_loader, forget_loader, val_loader, seed=i)
                writer.put(net, ck.checkpoint_path(SETTINGS.work_dir, i))  # in the background
                del net, retain_loader, forget_loader, val_loader
                run_seconds.append(time.time() - run_start)
                projection = check_budget(run_seconds, SETTINGS.num_checkpoints,
                                          time.time() - NOTEBOOK_START, SETTINGS.budget_s,
                                          min_runs=GUARD_AFTER_RUNS)
                if projection is not None and len(run_seconds) == GUARD_AFTER_RUNS:
                    print(f"time guard: {projection.message()}")
                    others = other_cards_line(projection.seconds_per_run,
                                              SETTINGS.num_checkpoints, CARD)
                    if others:
                        print(others)
        submission.finish(ck.expect_checkpoints(SETTINGS.work_dir, SETTINGS.num_checkpoints))
    print(f"{len(run_seconds)} runs: median {np.median(run_seconds):.2f} s per run, "
          f"mean {np.mean(run_seconds):.2f} s, total {sum(run_seconds):.1f} s")
    print(f"wrote {SETTINGS.zip_path} with {SETTINGS.num_checkpoints} checkpoints; "
          f"notebook time {(time.time() - NOTEBOOK_START) / 60:.1f} min")
