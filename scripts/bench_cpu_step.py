"""Images/s of one CPU training step of a benchmark's network, in the ways torch offers.

Rows, each the scorer's step (Adam, class-weighted cross-entropy, batch 64, 32x32
inputs in 0-255) on one thread: eager NCHW with torch's default (foreach) Adam, eager
channels_last, bf16 autocast, torch's fused Adam, with one-pixel convolutions
(:mod:`unlearnkit.one_pixel_conv`) in NCHW and channels_last, the kit's Adam
(:func:`unlearnkit.fused_adam.adam`: fused, in place on channels_last tensors), and last
(it cannot be undone in a process) the allocator that keeps freed memory
(:mod:`unlearnkit.allocator`): that row is what ``train`` runs on the CPU. Then
``torch.compile`` of the model (NCHW and channels_last) and the fused trainer with K
models.
Random images, warm-up steps (compilation included) excluded from the clock; the
compile rows also print how long compiling took, since a benchmark's jobs pay it once
per process. Ratios are to eager NCHW. Decides what ``train.py`` uses on the CPU.

    python scripts/bench_cpu_step.py --model resnet18 --steps 12
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from unlearnkit.allocator import keep_freed_memory
from unlearnkit.fused_adam import adam
from unlearnkit.one_pixel_conv import use_one_pixel_convs
from unlearnkit.train import init_model

BATCH = 64


def step_fn(net, opt, x, y, autocast: bool):
    """One training step (forward, loss, backward, Adam)."""
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return step


def time_row(model: str, steps: int, warmup: int, *, channels_last=False, compiled=False,
             autocast=False, optimiser="foreach", one_pixel=False,
             keep_memory=False) -> tuple[float, float]:
    """(images/s, seconds of warm-up) for one way of running the step; ``optimiser``:
    torch's "foreach" or "fused" Adam, or the "kit"'s."""
    if keep_memory:
        keep_freed_memory()
    net = init_model(model, 0)
    if one_pixel:
        use_one_pixel_convs(net)
    x = torch.rand(BATCH, 3, 32, 32) * 255
    y = torch.randint(0, 10, (BATCH,))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run_net = torch.compile(net) if compiled else net
    opt = (adam(net.parameters(), lr=1e-3, weight_decay=5e-3) if optimiser == "kit" else
           torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=5e-3,
                            fused=optimiser == "fused" or None))
    step = step_fn(run_net, opt, x, y, autocast)
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - start), warm


def fused_row(model: str, k: int, steps: int, warmup: int) -> float:
    """Images/s (all K models together) of the fused trainer on the CPU."""
    from unlearnkit.fused_training import FusedTrainer
    from unlearnkit.train import TrainConfig

    states = [init_model(model, s).state_dict() for s in range(k)]
    trainer = FusedTrainer(model, states, TrainConfig(epochs=1, lr=1e-3), weight=None,
                           device="cpu", num_classes=10)
    xs = torch.rand(BATCH, k * 3, 32, 32) * 255
    ys = torch.randint(0, 10, (BATCH, k))
    for _ in range(warmup):
        trainer.step(xs, ys)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(xs, ys)
    return steps * BATCH * k / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--steps", type=int, default=12, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fused", default="2", help="comma-separated K for fused rows ('' skips)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [("eager NCHW", {}), ("eager channels_last", {"channels_last": True}),
            ("eager bf16 autocast", {"autocast": True}),
            ("torch fused Adam", {"optimiser": "fused"}),
            ("same, 1-pixel convs", {"optimiser": "fused", "one_pixel": True}),
            ("same, channels_last", {"optimiser": "fused", "one_pixel": True,
                                     "channels_last": True}),
            ("same, kit's Adam", {"optimiser": "kit", "one_pixel": True,
                                  "channels_last": True}),
            ("same, keep freed memory", {"optimiser": "kit", "one_pixel": True,
                                         "channels_last": True, "keep_memory": True})]
    if not args.no_compile:  # after the allocator row: they run with it, as train() would
        rows += [("compile NCHW", {"compiled": True}),
                 ("compile channels_last", {"compiled": True, "channels_last": True})]
    base = None
    print(f"{args.model}, batch {BATCH}, {args.threads} thread(s), torch {torch.__version__}")
    for name, kw in rows:
        try:
            rate, warm = time_row(args.model, args.steps, args.warmup, **kw)
        except Exception as err:  # a backend missing on this machine is a row, not a crash
            print(f"{name:24s} failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            continue
        base = base or rate
        print(f"{name:24s} {rate:8.1f} images/s  x{rate / base:.2f}  (warm-up {warm:.1f} s)",
              flush=True)
    for k in [int(s) for s in args.fused.split(",") if s.strip()]:
        try:
            rate = fused_row(args.model, k, args.steps, args.warmup)
        except Exception as err:
            print(f"fused K={k:<17d} failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            continue
        print(f"fused K={k:<17d} {rate:8.1f} images/s  x{rate / (base or rate):.2f}", flush=True)


if __name__ == "__main__":
    main()
