"""Images/s of the training recipe: one model, K processes at once, K models fused.

Rows: (1) one model trained by :func:`unlearnkit.train.train` (the scorer's recipe,
batch 64); (2) P processes each running (1) at once, started together behind a
barrier; (3) K models fused with :class:`unlearnkit.fused_training.FusedTrainer`, batch 64 per
model; ``--lanes`` adds rows of L such chunks trained at once, each on its own CUDA
stream (as ``train_many(..., lanes=L)`` does). All on random images in the 0-255 range, warm-up steps excluded, CUDA
synchronised before every clock read. Ratios are to row (1).

    python scripts/bench_train.py --device cpu --model small_cnn
    python scripts/bench_train.py --device cuda --model resnet18 --sweep --profile
    python scripts/bench_train.py --device cuda --k 32,64 --lanes 2,4 --procs 0

Measured numbers, their card and command: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import torch

from unlearnkit.atomic import write_json
from unlearnkit.data.base import ImageSet
from unlearnkit.fused_training import FusedTrainer, gather_batch, lane_streams, on_stream
from unlearnkit.train import TrainConfig, init_model, train

BATCH = 64


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="resnet18", choices=["resnet18", "small_cnn"])
    p.add_argument("--quick", action="store_true", help="fewer steps and K values")
    p.add_argument("--k", default=None, help="comma-separated K values for the fused rows")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (> 3 on CUDA)")
    p.add_argument("--procs", type=int, default=None, help="processes for row (2); 0 skips it")
    p.add_argument("--options", default="bf16+cl+graph",
                   help="fused options: '+'-joined of bf16, cl (channels_last), graph, cudnn "
                        "(cudnn.benchmark) [CUDA only] and grouped, bmm, split, hybrid or auto (how "
                        "convolutions run); 'fp32' for no flag")
    p.add_argument("--lanes", default="",
                   help="comma-separated L values: also time L chunks of K at once, per K")
    p.add_argument("--sweep", action="store_true",
                   help="also time every option combination at the largest K")
    p.add_argument("--vmap", action="store_true", help="also time a torch.func.vmap probe")
    p.add_argument("--profile", action="store_true",
                   help="say what limits the fused path (kernel time vs wall, FLOP rate)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for rows (1) and (3) (default: torch's; 1 on a busy machine)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available here; use --device cpu")
    try:
        parse_options(args.options)
    except ValueError as err:
        p.error(str(err))
    default_k = ("8,32" if args.quick else "8,32,64") if cuda else "2,4,8"
    args.ks = [int(k) for k in (args.k or default_k).split(",")]
    args.lanes = [int(v) for v in args.lanes.split(",") if v.strip()]
    if any(v < 1 for v in args.lanes):
        p.error("--lanes takes whole numbers >= 1")
    big = args.model == "resnet18" and not cuda
    args.steps = args.steps or (3 if big else 10 if args.quick else 30)
    args.warmup = args.warmup or (5 if cuda else 2)
    args.loop_steps = 3 * args.steps if cuda else args.steps  # rows (1), (2): cheap on a GPU
    if args.procs is None:
        args.procs = min(8, os.cpu_count() or 1) if cuda else min(2, os.cpu_count() or 1)
    return args


def random_set(n: int, seed: int = 0) -> ImageSet:
    """``n`` random images (uniform 0-255) with random labels 0-9."""
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.rand(n, 3, 32, 32, generator=g) * 255,
                    torch.randint(0, 10, (n,), generator=g))


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Wall and process-CPU seconds of a block, the device synchronised at both ends.

    CPU seconds are the robust number on a shared machine: they do not count the time
    other processes hold the cores.
    """

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> Clock:
        sync(self.device)
        self.start, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.end = time.perf_counter()
        self.wall, self.cpu = self.end - self.start, time.process_time() - self._cpu


def time_one(model: str, device: torch.device, steps: int, warmup: int,
             barrier=None) -> tuple[float, float, float, int]:
    """Row (1): ``train.train`` for ``steps`` batches after ``warmup``.

    Returns (start, end, CPU seconds, images).
    """
    cfg = TrainConfig(epochs=1)
    net = init_model(model, 0)
    train(net, random_set(warmup * BATCH, 1), cfg, device=device, progress=False)
    data = random_set(steps * BATCH, 2)
    if barrier is not None:
        sync(device)
        barrier.wait()
    with Clock(device) as c:
        train(net, data, cfg, device=device, progress=False)
    return c.start, c.end, c.cpu, steps * BATCH


def _proc_worker(rank: int, model: str, device: str, steps: int, warmup: int, threads: int,
                 barrier, queue) -> None:
    """One process of row (2): its own threads, then (1) in step with the others."""
    torch.set_num_threads(threads)
    try:
        queue.put(time_one(model, torch.device(device), steps, warmup, barrier))
    except Exception as err:  # report, so the parent never waits forever
        barrier.abort()
        queue.put(f"process {rank}: {type(err).__name__}: {err}")


def time_procs(args, procs: int) -> float:
    """Row (2): images/s of ``procs`` processes running (1) at once (CPU threads split)."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // procs) if args.device == "cpu" else 1
    workers = [ctx.Process(target=_proc_worker, args=(r, args.model, args.device, args.loop_steps,
                                                      args.warmup, threads, barrier, queue))
               for r in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    errors = [r for r in results if isinstance(r, str)]
    if errors:
        raise RuntimeError("; ".join(errors))
    start, end = min(r[0] for r in results), max(r[1] for r in results)
    return sum(r[3] for r in results) / (end - start)


_FLAGS = ("bf16", "cl", "graph", "cudnn")


def parse_options(text: str) -> dict:
    """``'bf16+cl+graph+auto'`` -> flags for the fused trainer (``conv``: how convolutions run)."""
    words = set(text.split("+")) - {"fp32"}
    convs = words & {"grouped", "bmm", "split", "hybrid", "auto"}
    if words - set(_FLAGS) - convs or len(convs) > 1:
        raise ValueError(f"bad fused options {text!r}; use {'+'.join(_FLAGS)} and at most one "
                         "of grouped, bmm, split, hybrid, auto")
    conv = convs.pop() if convs else "grouped"
    return {**{w: w in words for w in _FLAGS}, "conv": conv}


def make_trainer(model: str, k: int, device: torch.device, opts: dict) -> FusedTrainer:
    """K copies of one initialised model as a fused trainer (speed needs no K seeds)."""
    cfg = TrainConfig(epochs=1, amp=opts["bf16"], channels_last=opts["cl"])
    state = init_model(model, 0).state_dict()
    weight = torch.full((10,), 0.1)
    return FusedTrainer(model, [state] * k, cfg, weight=weight, device=device,
                        cuda_graph=opts["graph"], conv=opts["conv"])


def fused_steps(trainers: list[FusedTrainer], streams: list, pool: ImageSet, steps: int) -> None:
    """``steps`` steps of each trainer (its work on its lane) on batches gathered from ``pool``."""
    n = len(pool.labels)
    for _ in range(steps):
        for trainer, stream in zip(trainers, streams):
            with on_stream(stream):
                idx = torch.randint(0, n, (trainer.k, BATCH), device=pool.images.device)  # [K, B]
                trainer.step(*gather_batch(pool.images, pool.labels, idx))


def time_fused(args, k: int, opts: dict, lanes: int = 1) -> dict:
    """Row (3): ``lanes`` chunks of K fused models: images/s (wall, CPU) and what really ran."""
    device = torch.device(args.device)
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = opts["cudnn"]
    try:
        data = random_set(max(4096, 8 * BATCH), 3)
        pool = ImageSet(data.images.to(device), data.labels.to(device))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            trainers = [make_trainer(args.model, k, device, opts) for _ in range(lanes)]
            streams = lane_streams(device, lanes)
            fused_steps(trainers, streams, pool, args.warmup)
            with Clock(device) as c:
                fused_steps(trainers, streams, pool, args.steps)
        trainer = trainers[0]
        for w in caught:
            print(f"  warning: {w.message}")
        ran = dict(opts, graph=trainer.graph is not None)
        if opts["conv"] == "auto":
            print(f"  K={k} auto chose: {trainer.conv_impls}")
        if device.type == "cuda":
            print(f"  K={k} {label(ran)}: peak GPU memory "
                  f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
        del trainer, trainers
        images = args.steps * BATCH * k * lanes
        return {"images_s": images / c.wall, "cpu_images_s": images / c.cpu, "ran": ran}
    finally:
        torch.backends.cudnn.benchmark = old
        if device.type == "cuda":
            torch.cuda.empty_cache()


def time_fused_safe(args, k: int, opts: dict, lanes: int = 1) -> dict | None:
    """:func:`time_fused`, falling back to fp32 and then to no graph when an option fails."""
    tries = [opts, dict(opts, bf16=False), dict(opts, bf16=False, graph=False, conv="grouped")]
    for attempt in tries:
        try:
            return time_fused(args, k, attempt, lanes)
        except Exception as err:
            print(f"  fused K={k} {label(attempt)} failed: {type(err).__name__}: {err}")
            if torch.device(args.device).type == "cuda":
                torch.cuda.empty_cache()
    return None


def time_vmap(args, k: int) -> float:
    """A probe: K models with torch.func.vmap (BatchNorm without running statistics)."""
    from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state

    device = torch.device(args.device)
    nets = [replace_all_batch_norm_modules_(init_model(args.model, s)).to(device) for s in range(k)]
    params, buffers = stack_module_state(nets)
    base = nets[0]
    opt = torch.optim.Adam(params.values(), lr=1e-4, weight_decay=5e-3)
    fwd = torch.func.vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))

    def step():
        x = torch.rand(k, BATCH, 3, 32, 32, device=device) * 255
        y = torch.randint(0, 10, (k, BATCH), device=device)
        out = fwd(params, buffers, x)  # [K, B, C]
        loss = torch.nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")
        loss.mean(1).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    with Clock(device) as c:
        for _ in range(args.steps):
            step()
    return args.steps * BATCH * k / c.wall


def label(opts: dict) -> str:
    """``{'bf16': True, ...}`` -> ``'bf16+graph+auto'`` (``'fp32'`` when no flag is on)."""
    on = [w for w in _FLAGS if opts.get(w)] or ["fp32"]
    return "+".join(on + [opts.get("conv", "grouped")])


def train_flops_per_image(model: str) -> float:
    """Forward multiply-adds of convolutions and linear layers x 2 x 3 (fwd + 2 bwd)."""
    net, total = init_model(model, 0).eval(), [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            per_out = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += out.numel() * per_out
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return 2.0 * total[0] * 3


_MATMUL_WORDS = ("conv", "gemm", "xmma", "cutlass", "sm90", "sm80", "wgrad", "dgrad", "fprop")


def matmul_peak_tflops(device: torch.device) -> float:
    """Measured bf16 matrix-product rate of the card (8192^3, median of 5)."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    times = []
    for _ in range(7):
        sync(device)
        t0 = time.perf_counter()
        a @ a
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * 8192 ** 3 / sorted(times[2:])[2] / 1e12


def kernel_profile(args, k: int, opts: dict, steps: int) -> dict:
    """Per step: wall time and summed GPU kernel time, split conv/GEMM vs the rest."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(args.device)
    data = random_set(4096, 3)
    pool = ImageSet(data.images.to(device), data.labels.to(device))
    trainer = make_trainer(args.model, k, device, opts)
    fused_steps([trainer], [None], pool, args.warmup)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with Clock(device) as c:
            fused_steps([trainer], [None], pool, steps)
    wall = c.wall
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    total = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
    mm = sum(e.time_range.elapsed_us() for e in kernels
             if any(w in e.name.lower() for w in _MATMUL_WORDS)) / 1e6
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12))
    del trainer
    return {"wall_ms": 1e3 * wall / steps, "kernel_ms": 1e3 * total / steps,
            "conv_gemm_ms": 1e3 * mm / steps, "kernels_seen": len(kernels)}


def profile_fused(args, k: int, opts: dict) -> dict:
    """What limits the fused path: launches (GPU idle) or the kernels (compute, memory).

    The kernels are counted in an eager run (a profiler may not see inside graph
    replays); the GPU is busy for kernel time / wall time of the run with ``opts``.
    """
    device = torch.device(args.device)
    steps = max(3, min(args.steps, 10))
    if device.type != "cuda":
        t = {kk: time_fused(args, kk, opts)["images_s"] for kk in sorted({1, k})}
        return {"images_s_by_k": t, "note": "CPU: compute-bound when images/s does not grow with K"}
    eager = kernel_profile(args, k, dict(opts, graph=False), steps)
    res = time_fused(args, k, opts)
    rate, ran = res["images_s"], res["ran"]
    wall_ms = 1e3 * BATCH * k / rate
    flops = train_flops_per_image(args.model) * BATCH * k
    out = {"k": k, "options": label(ran), "ms_per_step": wall_ms,
           "eager_ms_per_step": eager["wall_ms"], "kernel_ms_per_step": eager["kernel_ms"],
           "conv_gemm_share": eager["conv_gemm_ms"] / max(eager["kernel_ms"], 1e-9),
           "kernels_per_step": eager["kernels_seen"] / steps,
           "mean_kernel_us": 1e3 * eager["kernel_ms"] * steps / max(eager["kernels_seen"], 1),
           "gpu_busy": eager["kernel_ms"] / wall_ms, "tflops": flops / wall_ms / 1e9,
           "peak_bf16_tflops": matmul_peak_tflops(device)}
    busy, mean_us = out["gpu_busy"], out["mean_kernel_us"]
    out["verdict"] = (
        "launch-bound: the GPU idles between kernels" if busy < 0.7 else
        f"bound by many small kernels ({out['kernels_per_step']:.0f} a step, {mean_us:.1f} us "
        "each on average: grouped convolutions that loop over groups)" if mean_us < 20 else
        f"kernel-bound: {out['tflops']:.0f} of {out['peak_bf16_tflops']:.0f} TFLOP/s; "
        f"{out['conv_gemm_share']:.0%} of kernel time in conv/GEMM kernels, the rest in "
        "memory-bound ones (BN, elementwise, Adam)")
    return out


def print_table(rows: list[dict], base: dict) -> None:
    """Markdown table: images/s, ratio to the one-model row, ms/step (and per CPU second)."""
    cpu = all("cpu_images_s" in r for r in rows if "k" in r) and "cpu_images_s" in base
    print("\n| setting | images/s | x one model | ms/step |" + (" images/CPU-s | x |" if cpu else ""))
    print("| --- | ---: | ---: | ---: |" + (" ---: | ---: |" if cpu else ""))
    for r in rows:
        ms = f"{r['ms_per_step']:.1f}" if r.get("ms_per_step") else ""
        line = f"| {r['setting']} | {r['images_s']:,.0f} | {r['images_s'] / base['images_s']:.2f} | {ms} |"
        if cpu:
            c = r.get("cpu_images_s")
            line += f" {c:,.0f} | {c / base['cpu_images_s']:.2f} |" if c else " | |"
        print(line)


def describe_machine(device: torch.device) -> str:
    """The card (or CPU thread count) and the torch version."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


SWEEP = ("fp32", "graph+auto", "bf16+cl+auto", "bf16+cl+graph", "bf16+cl+graph+bmm",
         "bf16+graph+bmm", "bf16+graph+auto", "bf16+cl+graph+cudnn", "bf16+cl+graph+hybrid")
"""Option combinations ``--sweep`` times at the largest K (CUDA)."""


def one_model_row(args, device: torch.device) -> dict:
    """Row (1) as a table row."""
    t0, t1, cpu, n = time_one(args.model, device, args.loop_steps, args.warmup)
    recipe = "bf16+cl" if device.type == "cuda" else "fp32"  # TrainConfig's defaults
    row = {"setting": f"one model, train.train ({recipe})", "images_s": n / (t1 - t0),
           "ms_per_step": 1e3 * (t1 - t0) / args.loop_steps}
    if device.type == "cpu":
        row["cpu_images_s"] = n / cpu
    return row


def fused_row(args, k: int, opts: dict, lanes: int = 1) -> dict | None:
    """Row (3) for one K, option set and lane count (None if every fallback failed)."""
    res = time_fused_safe(args, k, opts, lanes)
    if res is None:
        return None
    rate, ran = res["images_s"], res["ran"]
    name = f"K={k} fused ({label(ran)})" + (f" x {lanes} lanes" if lanes > 1 else "")
    row = {"setting": name, "images_s": rate, "ms_per_step": 1e3 * BATCH * k * lanes / rate,
           "k": k, "lanes": lanes, "options": ran}
    if args.device == "cpu":
        row["cpu_images_s"] = res["cpu_images_s"]
    print(f"{row['setting']}: {rate:,.0f} images/s", flush=True)
    return row


def collect_rows(args, device: torch.device, opts: dict) -> tuple[list[dict], dict]:
    """Every row the arguments ask for; also the one-model row (the base of the ratios)."""
    base = one_model_row(args, device)
    rows = [base]
    print(f"one model: {base['images_s']:,.0f} images/s", flush=True)
    if args.procs > 1:
        try:
            rate = time_procs(args, args.procs)  # each process: args.loop_steps
            rows.append({"setting": f"{args.procs} processes at once", "images_s": rate})
            print(f"{args.procs} processes: {rate:,.0f} images/s", flush=True)
        except Exception as err:
            print(f"processes row failed: {type(err).__name__}: {err}")
    rows += [fused_row(args, k, opts) for k in args.ks]
    rows += [fused_row(args, k, opts, lanes) for k in args.ks for lanes in args.lanes if lanes > 1]
    if args.sweep and device.type == "cuda":
        rows += [fused_row(args, max(args.ks), parse_options(combo)) for combo in SWEEP
                 if parse_options(combo) != opts]
    if args.vmap:
        for k in args.ks:
            rate = time_vmap(args, k)
            rows.append({"setting": f"K={k} torch.func.vmap probe (no BN stats)",
                         "images_s": rate, "ms_per_step": 1e3 * BATCH * k / rate})
    return [r for r in rows if r is not None], base


def main(argv=None) -> int:
    """Run the rows, print the table (and profile), optionally write JSON."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {args.model} on {describe_machine(device)}; batch {BATCH}/model, "
          f"{args.steps} timed steps after {args.warmup}", flush=True)
    opts = parse_options(args.options)
    if device.type != "cuda":
        opts = dict(opts, **dict.fromkeys(_FLAGS, False))
    rows, base = collect_rows(args, device, opts)
    print_table(rows, base)
    report = {"machine": describe_machine(device), "model": args.model, "rows": rows}
    if args.profile:
        try:
            report["profile"] = profile_fused(args, max(args.ks), opts)
            print(json.dumps(report["profile"], indent=1))
        except Exception as err:  # the table above is already out
            print(f"profile failed: {type(err).__name__}: {err}")
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
