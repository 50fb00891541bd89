"""Adam as the kit runs it: torch's fused kernel, and on the CPU in place on
channels_last tensors.

Every network-wide Adam in the kit (training, the fused trainer, the methods) comes from
:func:`adam`. torch's fused Adam takes the update in one pass over all the parameters
instead of one per tensor (about 1.3x the images/s of a ResNet-18 step on the CPU). On
the CPU, though, its kernel wants contiguous tensors: a channels_last parameter (every
conv weight of a network trained channels_last) is copied out with its gradient and both
moment buffers, and copied back, at every step. :class:`ChannelsLastAdam` hands the
kernel each such tensor as the permuted view that *is* contiguous (``[O, H, W, I]``,
the same memory), so the update runs in place: the same arithmetic (tested against
torch's Adam), about 8% more images/s (``scripts/bench_cpu_step.py``; docs/benchmarks.md).
"""

from __future__ import annotations

import torch


def adam(params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam (L2 weight decay): :class:`ChannelsLastAdam` when every parameter is a
    floating-point CPU tensor, torch's fused Adam when all are on one CUDA device, the
    foreach implementation otherwise (mixed devices, other dtypes)."""
    params = list(params)
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    devices = {t.device.type for t in tensors}
    floating = all(t.is_floating_point() for t in tensors)
    if devices == {"cpu"} and floating:
        return ChannelsLastAdam(params, lr=lr, weight_decay=weight_decay)
    fused = len(devices) == 1 and devices <= {"cpu", "cuda"} and floating
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _dense_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when contiguous; its ``[N, H, W, C]`` view (contiguous, the same
    memory) when it is a channels_last 4-d tensor; ``t`` otherwise (the kernel copies)."""
    if (t.dim() == 4 and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last)):
        return t.permute(0, 2, 3, 1)
    return t


class ChannelsLastAdam(torch.optim.Adam):
    """torch's fused Adam on the CPU, stepping channels_last tensors in place.

    The state is torch's own (``step``, ``exp_avg``, ``exp_avg_sq``, laid out as the
    parameter), so ``state_dict`` and learning-rate schedulers work as with
    ``torch.optim.Adam``; AMSGrad, maximise, capturable and differentiable are refused."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         fused=True)

    def _group_tensors(self, group: dict) -> tuple[list, ...]:
        """(params, grads, first moments, second moments, steps) of the parameters of
        ``group`` that have a gradient, as the kernel takes them; state made on first use."""
        lists: tuple[list, ...] = ([], [], [], [], [])
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("ChannelsLastAdam does not take sparse gradients")
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            for out, t in zip(lists, (p, p.grad, state["exp_avg"], state["exp_avg_sq"])):
                out.append(_dense_view(t))
            lists[4].append(state["step"])
        return lists

    @torch.no_grad()
    def step(self, closure=None):
        """One Adam update of every parameter with a gradient; ``closure``'s loss, if any."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["amsgrad"] or group["maximize"] or group["capturable"] \
                    or group["differentiable"]:
                raise ValueError("ChannelsLastAdam runs plain Adam: amsgrad, maximize, "
                                 "capturable and differentiable must stay False")
            params, grads, exp_avgs, exp_avg_sqs, steps = self._group_tensors(group)
            if not params:
                continue
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps,
                               amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                               weight_decay=group["weight_decay"], eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)
        return loss
