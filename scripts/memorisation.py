"""What separates a benchmark's original from its retrains: memorisation, or training length?

Trains S originals (retain + forget) and S retrains (retain only) with the benchmark's
own recipe, outside the cache, and prints per model the accuracy and mean loss on
retain, forget and test, then P(original's loss < retrain's loss) per forget example,
averaged (0.5: the metric cannot see the forget set; near 1: every forget example is
told apart). The test-set losses say whether the original is lower everywhere (more
training steps: a confound) or only on the forget set (memorisation: what the metric
should see).

    python scripts/memorisation.py --bench digits --seeds 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from unlearnkit.benchmarks import load_benchmark
from unlearnkit.harness.context import prepare
from unlearnkit.train import init_model, predict_logits, train


def losses(net, part) -> tuple[np.ndarray, float]:
    """Per-example cross-entropy of ``net`` on ``part``, and its accuracy."""
    logits = torch.as_tensor(predict_logits(net, part))
    labels = torch.as_tensor(part.labels)
    loss = F.cross_entropy(logits, labels, reduction="none").numpy()
    return loss, float((logits.argmax(1) == labels).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="digits")
    p.add_argument("--seeds", type=int, default=2, help="models per side")
    p.add_argument("--data", default=os.environ.get("UNLEARNKIT_DATA"))
    p.add_argument("--cache", default=None, help="where the split is kept (default data/cache)")
    args = p.parse_args()
    torch.set_num_threads(1)
    bench = load_benchmark(args.bench)
    ctx = prepare(bench, cache_dir=args.cache, data_root=args.data, progress=False)
    parts, k = ctx.parts, ctx.source.num_classes
    forget = {"original": [], "retrain": []}
    start = time.time()
    print(f"{bench.name}: train {len(parts['train'])}, forget {len(parts['forget'])}, "
          f"model {bench.model}, {bench.train.epochs} epochs")
    for kind, data in (("original", parts["train"]), ("retrain", parts["retain"])):
        for s in range(args.seeds):
            net = train(init_model(bench.model, 10_000 + s, k), data, bench.train, seed=10_000 + s,
                        num_classes=k, progress=False)
            row = {name: losses(net, parts[name]) for name in ("retain", "forget", "test")}
            forget[kind].append(row["forget"][0])
            print(f"{kind:8s} seed {s}: " + "  ".join(
                f"{name} acc {acc:.3f} loss {loss.mean():.3f}" for name, (loss, acc) in row.items()),
                flush=True)
    o, r = np.stack(forget["original"]), np.stack(forget["retrain"])
    sep = (o[:, None, :] < r[None, :, :]).mean(axis=(0, 1))
    print(f"P(original's forget loss < retrain's), mean over forget examples: {sep.mean():.3f} "
          f"(share of examples above 0.9: {(sep > 0.9).mean():.2f}); {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
