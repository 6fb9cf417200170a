#!/usr/bin/env python3
"""Exports torchvision classification models to ONNX the way users do (torch.onnx.export, the
legacy TorchScript exporter) and writes the MAC count of each file as PyTorch itself measures it.

Usage: make-torch-fixtures.py OUT_DIR [MODEL ...]

For every model, at opsets 13 and 17, two weight variants:
  <model>-op<opset>-init.onnx     untrained (weights=None, torch.manual_seed(0)): equal tensors
                                  such as zero biases are de-duplicated by the exporter into
                                  Identity nodes, as in users' files;
  <model>-op<opset>-perturbed.onnx every float tensor perturbed with seeded noise, so no two
                                  tensors are equal.
`macs.json` maps each file name to {"macs": ..., "conv": ..., "linear": ..., "matmul": ...,
"input": [N, C, H, W], "dynamic_batch": bool, "generator": ...}; a model whose four files exist
and were made by this script and these torch versions (the generator) is not exported again. The counts come from the forward pass: module
forward hooks on Conv2d and Linear, and patched torch.nn.functional.linear (called directly by
MultiheadAttention), torch.matmul/bmm/Tensor.matmul, two-operand torch.einsum and
scaled_dot_product_attention for products of two activations. torch.utils.flop_counter.FlopCounterMode, an independent aten-level count, must
agree (FLOPs = 2 x MACs) or the script fails.
"""

import hashlib
import json
import os
import sys
import time
import warnings

import torch
import torch.nn.functional as F
import torchvision
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

OPSETS = (13, 17)
VARIANTS = ("init", "perturbed")
SEED = 0

# name -> (constructor, keyword arguments, input H=W, dynamic batch axis). Inputs are smaller
# than 224 where the network allows it, to keep the export and the hook count quick; the
# dynamic-batch fixture exercises shapes computed from the batch (channel shuffle).
MODELS = {
    "alexnet": (torchvision.models.alexnet, {}, 224, False),
    "vgg16": (torchvision.models.vgg16, {}, 224, False),
    "resnet18": (torchvision.models.resnet18, {}, 112, False),
    "resnet50": (torchvision.models.resnet50, {}, 112, False),
    "squeezenet1_0": (torchvision.models.squeezenet1_0, {}, 112, False),
    "squeezenet1_1": (torchvision.models.squeezenet1_1, {}, 112, False),
    "densenet121": (torchvision.models.densenet121, {}, 64, False),
    "googlenet": (torchvision.models.googlenet, {"aux_logits": False, "init_weights": True}, 112, False),
    "inception_v3": (torchvision.models.inception_v3, {"aux_logits": False, "init_weights": True}, 299, False),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, {}, 112, False),
    "mobilenet_v3_small": (torchvision.models.mobilenet_v3_small, {}, 112, False),
    "mobilenet_v3_large": (torchvision.models.mobilenet_v3_large, {}, 112, False),
    "efficientnet_b0": (torchvision.models.efficientnet_b0, {}, 112, False),
    "regnet_y_400mf": (torchvision.models.regnet_y_400mf, {}, 112, False),
    "mnasnet0_5": (torchvision.models.mnasnet0_5, {}, 112, False),
    "shufflenet_v2_x0_5": (torchvision.models.shufflenet_v2_x0_5, {}, 112, False),
    "convnext_tiny": (torchvision.models.convnext_tiny, {}, 64, False),
    "vit_b_16": (torchvision.models.vit_b_16, {"image_size": 224}, 224, False),
    "shufflenet_v2_x0_5_dynamic": (torchvision.models.shufflenet_v2_x0_5, {}, 112, True),
    # The smallest of the families beyond the list of issue #13 that need ops the list does
    # not (shifted windows, cosine attention, einsum attention), and RegNetX; the rest of
    # torchvision is swept by scripts/torchvision-family.sh (docs/models.md). Swin pads
    # 64 x 64 to whole windows; MaxViT's 7 x 7 partitions need 224.
    "swin_t": (torchvision.models.swin_t, {}, 64, False),
    "swin_v2_t": (torchvision.models.swin_v2_t, {}, 64, False),
    "maxvit_t": (torchvision.models.maxvit_t, {}, 224, False),
    "regnet_x_400mf": (torchvision.models.regnet_x_400mf, {}, 112, False),
}


class MacCounter:
    """MACs of one forward pass, by kind: Conv2d and Linear modules through forward hooks,
    F.linear called outside a Linear module (MultiheadAttention's projections), and products of
    two activations (torch.matmul / bmm / @ / Tensor.matmul, torch.einsum of two operands,
    scaled_dot_product_attention) through patches."""

    def __init__(self, model):
        self.model = model
        self.counts = {"conv": 0, "linear": 0, "matmul": 0}
        self.in_linear = 0
        self.handles = []
        self.saved = {}

    def __enter__(self):
        for m in self.model.modules():
            if isinstance(m, torch.nn.Conv2d):
                self.handles.append(m.register_forward_hook(self.conv_hook))
            elif isinstance(m, torch.nn.Linear):
                self.handles.append(m.register_forward_pre_hook(self.linear_enter))
                self.handles.append(m.register_forward_hook(self.linear_hook))
        self.patch(F, "linear", self.functional_linear)
        self.patch(F, "scaled_dot_product_attention", self.sdpa)
        self.patch(torch, "matmul", self.matmul)
        self.patch(torch, "bmm", self.matmul)
        self.patch(torch.Tensor, "__matmul__", self.matmul)
        # Swin writes q.matmul(k), MaxViT torch.einsum: the same products by other names.
        self.patch(torch.Tensor, "matmul", self.matmul)
        self.patch(torch, "einsum", self.einsum)
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        for (owner, name), original in self.saved.items():
            setattr(owner, name, original)

    def patch(self, owner, name, wrapper):
        original = getattr(owner, name)
        self.saved[(owner, name)] = original

        def patched(*args, **kwargs):
            return wrapper(original, *args, **kwargs)

        setattr(owner, name, patched)

    def conv_hook(self, module, inputs, output):
        kh, kw = module.kernel_size
        self.counts["conv"] += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_enter(self, module, inputs):
        self.in_linear += 1

    def linear_hook(self, module, inputs, output):
        self.in_linear -= 1
        self.counts["linear"] += output.numel() * module.in_features

    def functional_linear(self, original, x, weight, bias=None):
        y = original(x, weight, bias)
        if not self.in_linear:
            self.counts["linear"] += y.numel() * weight.shape[1]
        return y

    def matmul(self, original, a, b, *args, **kwargs):
        y = original(a, b, *args, **kwargs)
        inner = a.shape[-1]
        self.counts["matmul"] += y.numel() * inner
        return y

    def einsum(self, original, equation, *operands):
        y = original(equation, *operands)
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        inputs = equation.replace(" ", "").split("->")[0].split(",")
        if len(operands) != 2 or "..." in equation:
            raise SystemExit(f"einsum {equation!r}: only products of two operands are counted")
        # A product of two operands does one multiply-add per combination of all its indices
        # (the output's and the summed ones).
        sizes = {}
        for letters, t in zip(inputs, operands):
            sizes.update(zip(letters, t.shape))
        macs = 1
        for size in sizes.values():
            macs *= size
        self.counts["matmul"] += macs
        return y

    def sdpa(self, original, q, k, v, *args, **kwargs):
        y = original(q, k, v, *args, **kwargs)
        # softmax(Q K^T) V: L x S scores from Q (L x E) and K (S x E), then L x Ev from them.
        batch = q.shape[:-2].numel()
        length, e = q.shape[-2], q.shape[-1]
        s, ev = k.shape[-2], v.shape[-1]
        self.counts["matmul"] += batch * length * s * e + batch * length * s * ev
        return y


def perturb(model, seed):
    """Adds seeded noise to every float parameter and buffer (variances stay positive)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=g) * 0.01
            if name.endswith("running_var"):
                t.mul_(1.0 + noise.abs())
            else:
                t.add_(noise)


def count(model, x):
    # Grad mode keeps MultiheadAttention off its fused fast path, so its products run through
    # the functions patched above.
    with torch.enable_grad(), MacCounter(model) as counter:
        model(x)
    flops = FlopCounterMode(display=False)
    # The math kernel writes attention as aten matrix products, which FlopCounterMode counts.
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), flops:
        model(x)
    macs = sum(counter.counts.values())
    if flops.get_total_flops() != 2 * macs:
        raise SystemExit(
            f"hook count {counter.counts} (total {macs}) disagrees with FlopCounterMode "
            f"{flops.get_total_flops()} FLOPs"
        )
    return dict(counter.counts, macs=macs)


def math_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(Q K^T / sqrt(E)) V written out, as MultiheadAttention computed it before
    PyTorch 2.0: the exporter has no scaled_dot_product_attention before opset 14."""
    assert attn_mask is None and dropout_p == 0.0 and not is_causal
    scale = scale if scale is not None else q.shape[-1] ** -0.5
    scores = torch.matmul(q * scale, k.transpose(-2, -1))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def export(model, x, path, opset, dynamic):
    kwargs = {}
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    original = F.scaled_dot_product_attention
    if opset < 14:
        F.scaled_dot_product_attention = math_attention
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about Python values taken as constants
            torch.onnx.export(
                model, (x,), path, opset_version=opset, dynamo=False,
                input_names=["input"], output_names=["logits"], **kwargs,
            )
    finally:
        F.scaled_dot_product_attention = original


def generator_id():
    """What the files depend on besides the model list: this script and the torch versions."""
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return f"{digest} torch {torch.__version__} torchvision {torchvision.__version__}"


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, "macs.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    generator = generator_id()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    total = time.time()
    for name in names:
        build, kwargs, size, dynamic = MODELS[name]
        files = [f"{name}-op{opset}-{variant}.onnx" for variant in VARIANTS for opset in OPSETS]
        if all(manifest.get(f, {}).get("generator") == generator
               and os.path.exists(os.path.join(out, f)) for f in files):
            print(f"{name}: up to date", flush=True)
            continue
        start = time.time()
        torch.manual_seed(SEED)
        model = build(weights=None, **kwargs).eval()
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))
        # The weights do not change the counts: one count serves both variants.
        counts = count(model, x)
        for variant in VARIANTS:
            if variant == "perturbed":
                perturb(model, SEED + 1)
            for opset in OPSETS:
                file = f"{name}-op{opset}-{variant}.onnx"
                export(model, x, os.path.join(out, file), opset, dynamic)
                manifest[file] = dict(counts, input=[1, 3, size, size], dynamic_batch=dynamic,
                                      generator=generator)
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        print(f"{name}: {counts['macs']} MACs ({time.time() - start:.1f} s)", flush=True)
    print(f"torch fixtures: {time.time() - total:.0f} s", flush=True)


if __name__ == "__main__":
    main()
