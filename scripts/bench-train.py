"""PyTorch side of scripts/bench-train.sh: LeNet-5 as in joule's zoo, batch 64, SGD with
momentum, on the same 8,000 MNIST training digits (read from joule's IDX files)."""
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.set_num_threads(threads)
torch.manual_seed(1)


def idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    return np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8).reshape(dims)


x = torch.tensor(idx("data/mnist/train-images-idx3-ubyte"), dtype=torch.float32).div(255).unsqueeze(1)
y = torch.tensor(idx("data/mnist/train-labels-idx1-ubyte"), dtype=torch.long)
model = nn.Sequential(
    nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(epochs + 1):
    order = torch.randperm(len(x))
    start = time.perf_counter()
    for b in range(0, len(x), 64):
        i = order[b : b + 64]
        opt.zero_grad()
        loss = loss_fn(model(x[i]), y[i])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    if epoch > 0:
        print(f"pytorch {len(x) / seconds:.0f} images/s ({seconds:.3f} s/epoch, {threads} threads, torch {torch.__version__})")
