"""Train and evaluate K models of one architecture at once, each exactly as if alone.

One model at batch 64 cannot fill a GPU: its time goes to kernel launches. Here K
models are folded into one channel-stacked network (:mod:`unlearnkit.stacked_layers`), so
each layer is one grouped kernel for all K, and on CUDA the forward and backward pass
of a step is captured once as a CUDA graph and replayed.

Each model keeps the semantics of :func:`unlearnkit.train.train` for its seed: its own
initialisation (:func:`~unlearnkit.train.init_model`), its own data order (the
permutation sequence of ``TensorLoader(data, batch_size, shuffle=True, seed=seed)``),
Adam with L2 weight decay, the cosine schedule stepped per epoch, class-weighted
cross-entropy and its own BatchNorm running statistics. The loss is the sum of the K
models' mean losses, so no gradient mixes models, and one Adam over the stacked
tensors is K independent Adams (Adam is element-wise).

On CUDA several such chunks can train at once (``lanes``), each issuing its steps on a
stream of its own, so that one chunk's small kernels (grouped convolutions that cuDNN
runs group by group, Adam's memory-bound updates) overlap with another's. The chunks
share nothing but the images, so the result is the same as training them one after the
other.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data.base import ImageSet
from .fused_adam import adam
from .models import TIMM_PREFIX, build_model, model_names
from .stacked_layers import StackedConv2d, build_wide, split_outputs, unstack_state
from .train import TrainConfig, class_weights, init_model

_CHUNKS = {("cuda", "resnet18"): 64, ("cuda", "small_cnn"): 128,
           ("cpu", "resnet18"): 2, ("cpu", "small_cnn"): 2}
"""Chosen by measurement (docs/performance.md, dated): on CUDA the largest K before the
gain flattens out (memory grows with K); on the CPU the K that keeps pace with the
one-model loop. small_cnn on CUDA is not measured yet."""


def default_chunk(model_name: str, device: str | torch.device) -> int:
    """How many models to train together on ``device`` (measured: docs/performance.md)."""
    kind = torch.device(device).type
    return _CHUNKS.get((kind, model_name), 32 if kind == "cuda" else 2)


def default_lanes(device: str | torch.device) -> int:
    """How many chunks train at once, each on its own CUDA stream (1 on the CPU).

    1 everywhere until lanes are measured on a GPU (``scripts/bench_train.py --lanes``):
    the CPU runs the lanes one after the other, so they cannot gain there.
    """
    return 1


def lane_streams(device: torch.device, lanes: int) -> list:
    """One stream per lane on CUDA (each waits for the work queued so far); ``None`` elsewhere."""
    if device.type != "cuda":
        return [None] * lanes
    current = torch.cuda.current_stream(device)
    streams = [torch.cuda.Stream(device) for _ in range(lanes)]
    for stream in streams:
        stream.wait_stream(current)
    return streams


def on_stream(stream) -> contextlib.AbstractContextManager:
    """Issue the block's CUDA work on ``stream`` (a no-op for ``None``)."""
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


CONV_FORMS = ("grouped", "bmm", "split", "hybrid")
"""How a stacked convolution can run (:class:`~unlearnkit.stacked_layers.StackedConv2d`)."""


def default_conv(device: str | torch.device, cuda_graph: bool = True) -> str:
    """How stacked convolutions run by default (measured: docs/performance.md).

    Grouped kernels, except on CUDA without graphs: there the per-layer choice
    (``"auto"``) avoids the launches of grouped kernels that loop over groups; with
    graphs grouped wins (the numbers: docs/performance.md).
    """
    if torch.device(device).type == "cuda" and not cuda_graph:
        return "auto"
    return "grouped"


def _autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled (cache off: CUDA graphs need it); else a no-op."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


def summed_loss(logits: torch.Tensor, y: torch.Tensor,
                weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over models of each model's (class-weighted) mean cross-entropy.

    ``logits`` [B, K*C] from the wide network, ``y`` [B, K]. Returns the scalar to
    backpropagate and the K per-model losses (detached) [K].
    """
    b, k = y.shape
    per_item = F.cross_entropy(logits.float().view(b, k, -1).transpose(1, 2), y,
                               weight=weight, reduction="none")  # [B, K], w[y] * nll
    if weight is None:
        per_model = per_item.mean(0)  # [K]
    else:
        per_model = per_item.sum(0) / weight[y].sum(0)  # [K]
    return per_model.sum(), per_model.detach()


def tune_convs(net: nn.Module, x: torch.Tensor, amp: bool, reps: int = 3,
               graphed: bool = False) -> dict[str, str]:
    """Set each stacked convolution of ``net`` to its faster form on batches like ``x``.

    Times forward + backward of every :class:`StackedConv2d` in each of
    :data:`CONV_FORMS` on the inputs it sees in one eval-mode pass (no running statistics
    change, no gradient is stored). ``graphed`` (CUDA): time each form as a replayed
    CUDA graph, as training with graphs will run it, so that launch costs the graph
    removes do not count (eager timing favours forms with few kernels). Returns
    ``{layer: impl}``.
    """
    inputs: dict[str, torch.Tensor] = {}
    convs = {n: m for n, m in net.named_modules() if isinstance(m, StackedConv2d) and m.can_bmm}
    hooks = [m.register_forward_pre_hook(lambda _m, a, n=n: inputs.setdefault(n, a[0].detach()))
             for n, m in convs.items()]
    was_training = net.training
    with torch.no_grad(), _autocast(x.device, amp):
        net.eval()(x)
    net.train(was_training)
    for h in hooks:
        h.remove()
    seen: dict[tuple, str] = {}
    for name, conv in convs.items():
        inp = inputs.pop(name)
        first = inp.data_ptr() == x.data_ptr()  # the images: no input gradient
        key = (tuple(inp.shape), inp.stride(), inp.dtype, tuple(conv.weight.shape), conv.stride,
               conv.padding, conv.dilation, first)
        if key not in seen:
            times = {impl: _time_conv(conv, impl, inp, not first, amp, reps, graphed)
                     for impl in CONV_FORMS}
            seen[key] = min(times, key=times.get)
        conv.impl = seen[key]
    return {n: m.impl for n, m in convs.items()}


def _time_conv(conv: StackedConv2d, impl: str, inp: torch.Tensor, input_grad: bool,
               amp: bool, reps: int, graphed: bool = False) -> float:
    """Seconds per forward + backward of ``conv`` in form ``impl`` (after one untimed run)."""
    conv.impl = impl
    inp = inp.detach().requires_grad_(input_grad)
    wrt = [inp, conv.weight] if input_grad else [conv.weight]

    def once():
        with _autocast(inp.device, amp):
            out = conv(inp)
        torch.autograd.grad(out, wrt, grad_outputs=torch.ones_like(out))

    once()
    if graphed and inp.device.type == "cuda":
        try:
            return _time_graph_replay(once, inp.device, reps)
        except Exception as err:  # timing is advice: fall back to the eager clock
            warnings.warn(f"timing convolution form {impl!r} in a CUDA graph failed "
                          f"({type(err).__name__}: {err}); timing it eagerly", RuntimeWarning,
                          stacklevel=2)
    _sync(inp.device)
    t0 = time.perf_counter()
    for _ in range(reps):
        once()
    _sync(inp.device)
    return (time.perf_counter() - t0) / reps


def _time_graph_replay(fn, device: torch.device, reps: int) -> float:
    """Seconds per replay of ``fn`` captured as a CUDA graph (CUDA events, after one replay)."""
    side = torch.cuda.Stream(device)  # capture wants a warm-up on a side stream
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    end.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / reps
    del graph
    return seconds


def _sync(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FusedTrainer:
    """One optimisation step at a time for K networks of one architecture, fused.

    ``states`` are the K initial state_dicts. ``step(x, y)`` takes the K batches already
    stacked (``x`` [B, K*3, H, W], ``y`` [B, K]; see :func:`gather_batch`). On CUDA,
    ``cuda_graph`` captures forward and backward of full-size batches after a few
    eager steps and replays the graph; a batch of another size (an epoch's last) runs
    eagerly. ``cfg.amp`` (bf16 autocast) and ``cfg.channels_last`` apply on CUDA, as in
    :func:`unlearnkit.train.train`; on the CPU the wide network is always channels_last
    (oneDNN's pooling is several times faster so, and the one-model loop's weights turn
    channels_last after its first Adam step anyway). ``conv`` picks how the stacked
    convolutions run: ``"grouped"``, ``"bmm"``, ``"split"`` (see
    :class:`~unlearnkit.stacked_layers.StackedConv2d`) or ``"auto"`` (timed per layer on
    the first batch, as graph replays when graphs are on: :func:`tune_convs`); default
    :func:`default_conv`.
    """

    warmup_steps = 3
    """Eager steps (real training steps, on a side stream) before a graph is captured."""

    def __init__(self, model_name: str, states: list[dict], cfg: TrainConfig, *,
                 weight: torch.Tensor | None, device: str | torch.device = "cpu",
                 num_classes: int = 10, cuda_graph: bool = True, conv: str | None = None):
        conv = conv or default_conv(device, cuda_graph)
        if conv not in ("auto",) + CONV_FORMS:
            raise ValueError(f"conv must be 'auto' or one of {CONV_FORMS}, got {conv!r}")
        self.device = torch.device(device)
        self.k, self.cfg = len(states), cfg
        self.on_cuda = self.device.type == "cuda"
        with torch.device("meta"):
            template = build_model(model_name, num_classes)
        self.net = build_wide(template, states, self.device).train()
        self.channels_last = cfg.channels_last or not self.on_cuda
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.weight = None if weight is None else weight.to(self.device)
        self.params = list(self.net.parameters())
        self.opt = adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = (torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs)
                      if cfg.cosine else None)
        self.use_graph = cuda_graph and self.on_cuda
        self.graph: _GraphedPass | None = None
        self.full_batch = cfg.batch_size
        self.steps_done = 0
        self.conv_impls: dict[str, str] | None = None
        if conv != "auto":
            self.conv_impls = self._set_convs(conv)

    def _set_convs(self, impl: str) -> dict[str, str]:
        """Run every stacked convolution in form ``impl``."""
        out = {}
        for name, m in self.net.named_modules():
            if isinstance(m, StackedConv2d):
                m.impl = impl
                out[name] = impl
        return out

    def _pass(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Forward and backward of one stacked batch; returns per-model losses [K]."""
        with _autocast(self.device, self.cfg.amp):
            logits = self.net(x)  # [B, K*C]
        total, per_model = summed_loss(logits, y, self.weight)
        total.backward()
        return per_model

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One forward/backward without a graph (fresh gradient tensors)."""
        for p in self.params:
            p.grad = None
        if not (self.use_graph and self.graph is None):
            return self._pass(x, y)
        side = torch.cuda.Stream(self.device)  # warm-up before capture: on a side stream
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            per_model = self._pass(x, y)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return per_model

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One Adam step of all K models on stacked batches; per-model losses [K]."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.conv_impls is None:
            self.conv_impls = tune_convs(self.net, x, self.cfg.amp and self.on_cuda,
                                         reps=10 if self.use_graph else 3,
                                         graphed=self.use_graph)
        graphable = self.use_graph and x.shape[0] == self.full_batch
        if graphable and self.graph is None and self.steps_done >= self.warmup_steps:
            self.graph = self._capture(x, y)
        if graphable and self.graph is not None:
            per_model = self.graph.run(x, y)
        else:
            per_model = self._eager(x, y)
        self.opt.step()
        self.steps_done += 1
        return per_model.clone()

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> _GraphedPass | None:
        """Capture the forward/backward pass; on failure warn and stay eager."""
        try:
            return _GraphedPass(self, x, y)
        except Exception as err:  # capture is an optimisation: never fail training on it
            warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); "
                          "training eagerly instead", RuntimeWarning, stacklevel=2)
            self.use_graph = False
            for p in self.params:
                p.grad = None
            return None

    def end_epoch(self) -> None:
        """Step the cosine schedule, as the one-model loop does after each epoch."""
        if self.sched is not None:
            self.sched.step()

    def states(self) -> list[dict]:
        """The K models' state_dicts on the CPU (eval-ready: running statistics included)."""
        return unstack_state(self.net.state_dict(), self.k, "cpu")


class _GraphedPass:
    """A CUDA graph of one forward/backward pass, with static input and gradient buffers."""

    def __init__(self, trainer: FusedTrainer, x: torch.Tensor, y: torch.Tensor):
        self.params = trainer.params
        self.x, self.y = x.clone(), y.clone()
        for p in self.params:
            p.grad = None
        torch.cuda.synchronize(trainer.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.per_model = trainer._pass(self.x, self.y)  # [K], static
        self.grads = [p.grad for p in self.params]

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Replay on new batches; leaves the gradients in ``p.grad`` for the optimiser."""
        self.x.copy_(x)
        self.y.copy_(y)
        for p, g in zip(self.params, self.grads):
            p.grad = g  # an eager step in between may have replaced them
        self.graph.replay()
        return self.per_model


def epoch_orders(gens: list[torch.Generator], n: int, device: torch.device) -> torch.Tensor:
    """Each model's next permutation of ``n`` items, as ``TensorLoader`` draws it: [K, n]."""
    return torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)


def gather_batch(images: torch.Tensor, labels: torch.Tensor,
                 idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked batch for index columns ``idx`` [K, B]: x [B, K*3, H, W], y [B, K]."""
    cols = idx.t()  # [B, K]
    return images[cols].flatten(1, 2), labels[cols]


def _check_args(data: ImageSet, seeds, chunk: int | None, lanes: int | None) -> list[int]:
    """Validate ``train_many``'s inputs; the seeds as a list of ints."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: pass one seed per model to train")
    if not all(isinstance(s, (int, np.integer)) for s in seeds):
        raise ValueError(f"seeds must be integers, got {seeds[:5]}")
    if len(data) == 0:
        raise ValueError("the training set is empty")
    for name, value in (("chunk", chunk), ("lanes", lanes)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return [int(s) for s in seeds]


def train_many(model_name: str, data: ImageSet, seeds: list[int], cfg: TrainConfig | None = None,
               *, device: str | torch.device = "cpu", num_classes: int = 10,
               chunk: int | None = None, lanes: int | None = None, cuda_graph: bool = True,
               conv: str | None = None, progress: bool = True) -> list[dict]:
    """Train one model per seed with the recipe, ``chunk`` models fused, ``lanes`` chunks at once.

    Model i ends as ``train(init_model(model_name, seeds[i]), data, cfg, seed=seeds[i])``
    would (to float rounding). ``conv``: see :class:`FusedTrainer` (default per device:
    :func:`default_conv`); ``chunk`` and ``lanes``: :func:`default_chunk`,
    :func:`default_lanes`. Returns the state_dicts on the CPU, in the order of
    ``seeds``, loadable with :func:`unlearnkit.models.load_state`.
    """
    cfg = cfg or TrainConfig()
    seeds = _check_args(data, seeds, chunk, lanes)
    if model_name.startswith(TIMM_PREFIX):
        raise ValueError(f"the fused trainer stacks only the kit's own architectures "
                         f"({', '.join(model_names())}), not {model_name!r}: train it one "
                         f"model at a time (--fused 1)")
    device = torch.device(device)
    chunk = chunk or default_chunk(model_name, device)
    lanes = lanes or default_lanes(device)
    groups = [seeds[i:i + chunk] for i in range(0, len(seeds), chunk)]
    steps = cfg.epochs * math.ceil(len(data) / cfg.batch_size)
    bar = tqdm(total=steps * len(groups), desc=f"train x{len(seeds)}", unit="step",
               disable=not progress, leave=False)
    images, labels = data.images.to(device), data.labels.to(device)
    weight = class_weights(data.labels, num_classes) if cfg.class_weighted else None
    out: list[dict] = []
    for i in range(0, len(groups), lanes):
        wave = groups[i:i + lanes]
        trainers = [FusedTrainer(model_name, _initial_states(model_name, group, num_classes), cfg,
                                 weight=weight, device=device, num_classes=num_classes,
                                 cuda_graph=cuda_graph, conv=conv) for group in wave]
        _run_epochs(trainers, images, labels, wave, bar)
        for trainer in trainers:
            out.extend(trainer.states())
        del trainers
    bar.close()
    return out


def _initial_states(model_name: str, seeds: list[int], num_classes: int) -> list[dict]:
    """Each seed's initial model state, as :func:`~unlearnkit.train.init_model` makes it."""
    return [init_model(model_name, s, num_classes).state_dict() for s in seeds]


def _run_epochs(trainers: list[FusedTrainer], images: torch.Tensor, labels: torch.Tensor,
                groups: list[list[int]], bar) -> None:
    """All epochs of chunks trained side by side: each model's own shuffled order.

    Step by step, each chunk's work is issued on its own lane (:func:`lane_streams`);
    the device is synchronised at the end, so the states can be read on any stream.
    """
    n, bs, epochs = len(labels), trainers[0].cfg.batch_size, trainers[0].cfg.epochs
    streams = lane_streams(images.device, len(trainers))
    gens = [[torch.Generator().manual_seed(s) for s in group] for group in groups]
    for _ in range(epochs):
        orders = []
        for stream, lane_gens in zip(streams, gens):
            with on_stream(stream):
                orders.append(epoch_orders(lane_gens, n, images.device))  # [K, n]
        for start in range(0, n, bs):
            losses = []
            for trainer, stream, order in zip(trainers, streams, orders):
                with on_stream(stream):
                    x, y = gather_batch(images, labels, order[:, start:start + bs])
                    losses.append(trainer.step(x, y))  # [K]
            bar.update(len(trainers))
        means = []
        for trainer, stream, loss in zip(trainers, streams, losses):
            trainer.end_epoch()
            with on_stream(stream):  # read each lane's losses on the lane that wrote them
                means.append(loss.mean().item())
        bar.set_postfix(loss=f"{sum(means) / len(means):.3f}")
    _sync(images.device)


@torch.no_grad()
def predict_logits_many(model_name: str, states: list[dict], data: ImageSet, *,
                        device: str | torch.device = "cpu", batch_size: int = 256,
                        chunk: int | None = None, num_classes: int = 10) -> np.ndarray:
    """Logits (eval mode, float32) of each of K models on every item of ``data``: [K, n, C]."""
    if not states:
        raise ValueError("states is empty: pass at least one state_dict")
    device = torch.device(device)
    chunk = chunk or default_chunk(model_name, device)
    with torch.device("meta"):
        template = build_model(model_name, num_classes)
    out = np.zeros((len(states), len(data), num_classes), np.float32)
    for i in range(0, len(states), chunk):
        group = states[i:i + chunk]
        wide = build_wide(template, group, device).eval()
        for j in range(0, len(data), batch_size):
            x = data.images[j:j + batch_size].to(device)  # [b, 3, H, W]
            logits = wide(x.repeat(1, len(group), 1, 1))  # [b, K*C]
            out[i:i + len(group), j:j + len(x)] = split_outputs(logits.float(), len(group)).cpu().numpy()
        del wide
    return out
