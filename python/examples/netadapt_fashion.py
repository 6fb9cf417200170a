"""Hardware-aware NetAdapt on a PyTorch CNN, candidates fine-tuned on a Ray cluster.

A small CNN is trained in PyTorch on Fashion-MNIST (the project's data folder, read by
``joule.dataset``), then adapted to half its energy on eyeriss with ``joule.torch.netadapt``:
each iteration joule proposes one candidate per layer, two Ray workers prune (Torch-Pruning)
and short-term fine-tune them, joule keeps the most accurate. The final network is
re-exported and estimated again by joule, and its test accuracy is printed beside the
original's.

    .venv/bin/python python/examples/netadapt_fashion.py --out /tmp/netadapt-fashion

``--address ray://host:10001`` (or ``RAY_ADDRESS``) runs the tasks on an existing cluster
instead of starting a local one; every worker needs torch, torch-pruning and joule.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import torch
from torch import nn

import joule
import joule.torch


class SmallCNN(nn.Module):
    """Three 3x3 convolutions with BatchNorm and two FC layers: 28x28 grey -> 10 classes;
    ``width`` filters in the first layer, twice that in the others."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(1, w, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * w)
        self.conv3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(2 * w)
        self.fc1 = nn.Linear(2 * w * 7 * 7, 8 * w)
        self.fc2 = nn.Linear(8 * w, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Data:
    """Fashion-MNIST as tensors: a training part, a holdout carved from the training split
    (what NetAdapt selects on) and the test split (only reported)."""

    def __init__(self, train_images: int, holdout: int, seed: int, data_dir=None):
        x, y = joule.dataset("fashion-mnist", "train", data_dir)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        x, y = torch.from_numpy(x)[order], torch.from_numpy(y)[order]
        self.holdout = (x[:holdout], y[:holdout])
        self.train = (x[holdout:holdout + train_images], y[holdout:holdout + train_images])
        tx, ty = joule.dataset("fashion-mnist", "test", data_dir)
        self.test = (torch.from_numpy(tx), torch.from_numpy(ty))


def train_steps(model: nn.Module, data, steps: int, lr: float, seed: int, batch: int = 64):
    """``steps`` SGD mini-batches (momentum 0.9) drawn with ``seed``."""
    x, y = data
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        if step % (len(y) // batch) == 0:
            order = torch.randperm(len(y), generator=g)
        i = order[(step % (len(y) // batch)) * batch:][:batch]
        loss = nn.functional.cross_entropy(model(x[i].to(device)), y[i].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def accuracy(model: nn.Module, data) -> float:
    x, y = data
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            correct += (model(x[i:i + 1000].to(device)).argmax(1).cpu() == y[i:i + 1000]).sum()
    return int(correct) / len(y)


class ShortTerm:
    """``train_step_fn``: short-term fine-tuning on the training part (a class, so Ray
    ships the data with it)."""

    def __init__(self, data, lr):
        self.data, self.lr = data, lr

    def __call__(self, model, steps):
        train_steps(model, self.data, steps, self.lr, seed=torch.initial_seed() % 2**31)


class Holdout:
    """``evaluate_fn``: accuracy on the holdout carved from the training split."""

    def __init__(self, data):
        self.data = data

    def __call__(self, model):
        return accuracy(model, self.data)


def run(args, on_iteration=None) -> dict:
    """Trains the CNN, adapts it, and returns what happened (also the family)."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    data = Data(args.train_images, args.holdout, args.seed, args.data_dir)
    model = SmallCNN(args.width)
    started = time.monotonic()
    train_steps(model, data.train, args.train_steps, 0.05, args.seed)
    trained_s = time.monotonic() - started
    example = torch.zeros(1, 1, 28, 28)
    original_test = accuracy(model, data.test)
    original = joule.energy(model, hw=args.hw, example_input=example)

    def long_term(m):
        train_steps(m, data.train, args.long_term_steps, 0.01, args.seed + 1)

    result = joule.torch.netadapt(
        model,
        example,
        ShortTerm(data.train, 0.01),
        Holdout(data.holdout),
        budget=args.budget,
        hw=args.hw,
        out=args.out,
        resume=args.resume,
        executor=args.executor,
        address=args.address,
        num_workers=args.workers,
        short_term_steps=args.short_term_steps,
        long_term_fn=long_term,
        initial_reduction=args.initial_reduction,
        decay=0.96,
        seed=args.seed,
        data="fashion-mnist",
        on_iteration=on_iteration or (lambda m: print(
            f"iteration {m.iteration}: {m.layer} -> {m.channels[m.layer]} filters, "
            f"holdout {m.accuracy:.4f}, energy {m.energy:.4g}",
            flush=True,
        )),
    )
    final = joule.energy(result.model, hw=args.hw, example_input=example)
    # The adapted network's lineage trained for more steps than the original (the kept
    # candidates' short-term fine-tuning, then long-term): the original trained as many extra
    # steps is the fair reference for accuracy.
    extra = (len(result.family) - 1) * args.short_term_steps + args.long_term_steps
    reference = copy.deepcopy(model)
    train_steps(reference, data.train, extra, 0.01, args.seed + 2)
    summary = {
        "budget": args.budget,
        "hw": args.hw,
        "executor": args.executor,
        "status": result.status,
        "iterations": len(result.family) - 1,
        "budget_energy": result.run.budgets["energy"],
        "original_energy": original.total,
        "final_energy_reexported": final.total,
        "energy_ratio": final.total / original.total,
        "unit": original.unit,
        "original_macs": original.macs,
        "final_macs": final.macs,
        "original_holdout": result.original_accuracy,
        "final_holdout": result.accuracy,
        "original_test": original_test,
        "extra_steps": extra,
        "original_extra_holdout": accuracy(reference, data.holdout),
        "original_extra_test": accuracy(reference, data.test),
        "final_test": accuracy(result.model, data.test),
        "channels": result.final.channels,
        "train_seconds": round(trained_s, 1),
        "netadapt_seconds": round(result.seconds, 1),
        "out": os.fspath(result.out),
        "family": [
            {k: v for k, v in m.to_dict().items() if k not in ("checkpoint", "targets")}
            for m in result.family
        ],
    }
    return summary


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="netadapt-fashion")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--budget", default="energy=0.5x")
    p.add_argument("--hw", default="eyeriss")
    p.add_argument("--executor", default="ray", choices=["ray", "local"])
    p.add_argument("--address", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=16, help="filters of the first layer")
    p.add_argument("--train-images", type=int, default=20000)
    p.add_argument("--holdout", type=int, default=2000)
    p.add_argument("--train-steps", type=int, default=600)
    p.add_argument("--short-term-steps", type=int, default=30)
    p.add_argument("--long-term-steps", type=int, default=300)
    p.add_argument("--initial-reduction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--data-dir",
        default=os.environ.get("JOULE_DATA")
        or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"),
        help="the folder holding fashion-mnist/ (default: $JOULE_DATA, else the project's data/)",
    )
    return p.parse_args(argv)


def main(argv=None):
    summary = run(arguments(argv))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
