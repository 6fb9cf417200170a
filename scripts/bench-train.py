#!/usr/bin/env python3
"""Driver of scripts/bench-train.sh: joule's training against PyTorch's (CPU), interleaved.

  bench-train.py JOULE_BIN [--threads 2] [--rounds 3] [--epochs 2]

For LeNet-5 (8,000 MNIST digits an epoch) and vgg-small (the first 2,048), batch 64 and 256,
SGD with momentum 0.9 and learning rate 0.01, it runs joule (`JOULE_BIN MODEL BATCH SAMPLES
EPOCHS`, RAYON_NUM_THREADS=T) and PyTorch (this script's `torch` mode, torch.set_num_threads(T))
in their own processes, ROUNDS rounds alternating which goes first; each process trains one
warm-up epoch and then EPOCHS timed ones on the same digits, in the same network shape. Prints
a markdown table: images/s of each side at the median and at the best epoch, the ratio of
medians (above 1: joule faster), and the 1-minute load average before and after the row; a row
that started above a load of 1 per core is flagged LOADED.

  bench-train.py torch MODEL BATCH SAMPLES EPOCHS THREADS   is PyTorch's worker.
"""

import argparse
import os
import struct
import sys
import time

import numpy as np

from benchrun import cpu, load1, times_of

SAMPLES = {"lenet5": 8000, "vgg-small": 2048}


def idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    return np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8).reshape(dims)


def torch_worker(model_name, batch, samples, epochs, threads):
    import torch
    from torch import nn

    torch.set_num_threads(int(threads))
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)
    batch, samples, epochs = int(batch), int(samples), int(epochs)
    x = torch.tensor(idx("data/mnist/train-images-idx3-ubyte")[:samples], dtype=torch.float32)
    x = x.div(255).unsqueeze(1)
    y = torch.tensor(idx("data/mnist/train-labels-idx1-ubyte")[:samples], dtype=torch.long)
    if model_name == "lenet5":
        # crates/model/src/zoo: LeNet-5 with ReLU and max pooling, the first CONV padded.
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    elif model_name == "vgg-small":
        # crates/model/src/zoo/vgg_small.rs: 3 x (3x3 CONV without bias, BN, ReLU, 2x2 max pool).
        layers, c = [], 1
        for f in (32, 64, 128):
            layers += [nn.Conv2d(c, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU(), nn.MaxPool2d(2)]
            c = f
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(1152, 512), nn.ReLU(), nn.Dropout(0.3),
                              nn.Linear(512, 10))
    else:
        sys.exit(f"bench-train.py: unknown model {model_name!r}")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for epoch in range(epochs + 1):
        order = torch.randperm(len(x))
        start = time.perf_counter()
        for b in range(0, len(x), batch):
            i = order[b : b + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[i]), y[i])
            loss.backward()
            opt.step()
        if epoch > 0:
            times.append(time.perf_counter() - start)
    print("times " + " ".join(f"{t:.5f}" for t in times))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "torch":
        torch_worker(*sys.argv[2:7])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("joule")
    ap.add_argument("--models", default="lenet5,vgg-small")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    import torch

    cores = os.cpu_count()
    print(f"cpu: {cpu()}; cores: {cores}; threads: {args.threads}; PyTorch {torch.__version__}; "
          f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    print()
    print("| model | batch | samples/epoch | joule images/s median (best) | PyTorch images/s median (best) "
          "| joule / PyTorch (median) | load before / after |")
    print("|---|---|---|---|---|---|---|")
    loaded_rows = 0
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    for name in args.models.split(","):
        samples = SAMPLES[name]
        for batch in [int(b) for b in args.batches.split(",")]:
            before = load1()
            joule = [args.joule, name, str(batch), str(samples), str(args.epochs)]
            peer = [sys.executable, __file__, "torch", name, str(batch), str(samples), str(args.epochs),
                    str(args.threads)]
            sides = {"joule": [], "torch": []}
            for r in range(args.rounds):
                order = [("joule", joule), ("torch", peer)]
                for side, cmd in order if r % 2 == 0 else order[::-1]:
                    sides[side] += times_of(cmd, env)
            after = load1()
            rate = {k: sorted(samples / t for t in v) for k, v in sides.items()}
            med = {k: v[len(v) // 2] for k, v in rate.items()}
            flag = ""
            if before > cores:
                flag = " LOADED"
                loaded_rows += 1
            print(f"| {name} | {batch} | {samples} | {med['joule']:,.0f} ({rate['joule'][-1]:,.0f}) "
                  f"| {med['torch']:,.0f} ({rate['torch'][-1]:,.0f}) | {med['joule'] / med['torch']:.2f}x{flag} "
                  f"| {before:.2f} / {after:.2f} |", flush=True)
    print()
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}; {args.rounds} alternating "
          f"rounds, each process one warm-up epoch then {args.epochs} timed.")
    if loaded_rows:
        print(f"{loaded_rows} row(s) started with the 1-minute load above 1 per core ({cores} cores): "
              "flagged LOADED, not results.")


if __name__ == "__main__":
    main()
