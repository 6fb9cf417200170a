#!/usr/bin/env python3
"""Every classification model of torchvision through joule, as a user would try them: each
model untrained (weights=None, torch.manual_seed(0), eval mode, batch 1, 224x224) is exported by
torch.onnx.export (legacy exporter) at opsets 13 and 17 into a scratch folder, then
  - `joule stats F --json`: does it import, and do its MACs (total, CONV, FC/Linear, activation
    MatMul) equal PyTorch's forward-hook count (the counter of make-torch-fixtures.py,
    cross-checked there against torch.utils.flop_counter)?
  - `joule energy F --hw eyeriss --json`: the energy at batch 1 and the time to estimate it;
  - joule's engine (crates/onnx/examples/forward.rs) against onnxruntime on one seeded input:
    the largest absolute difference, and relative to the largest output.
The files are deleted after each model (the biggest exceed 2 GB), so the folder never holds
more than one model. Results accumulate in a JSON file keyed by model; a model already there is
not measured again unless named on the command line.

Usage: torchvision-family.py JOULE FORWARD SCRATCH RESULTS.json [MODEL ...]
  JOULE    the release CLI (target/release/joule)
  FORWARD  the forward example (target/release/examples/forward)
  SCRATCH  a folder for the exports (deleted model by model)
  MODEL    default: every model of torchvision.models.list_models() not already in
           results (the fixtures' models of make-torch-fixtures.py included, at 224x224)
"""

import gc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("fixtures", os.path.join(HERE, "make-torch-fixtures.py"))
fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixtures)

OPSETS = (13, 17)
SEED = 0
SIZE = 224
# Models whose constructor needs arguments to build the classifier the family is known by.
KWARGS = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}
# inception_v3 is defined at 299x299 (its stem leaves too little of 224 for the last pools).
SIZES = {"inception_v3": 299}


def available_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def one_line(text):
    """The error joule printed (its last non-empty line), for the table."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def joule_json(joule, *args):
    start = time.perf_counter()
    out = subprocess.run([joule, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        return None, {"exit": out.returncode, "error": one_line(out.stderr)}, seconds
    return json.loads(out.stdout), None, seconds


def onnxruntime(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    # The graph as exported, so the comparison checks joule's ops, not onnxruntime's fusions.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.asarray(y, dtype=np.float32).reshape(-1)


def measure_file(path, counts, x, joule, forward, scratch):
    r = {"bytes": sum(os.path.getsize(os.path.join(os.path.dirname(path), f))
                      for f in os.listdir(os.path.dirname(path)))}
    stats, err, _ = joule_json(joule, "stats", path, "--json")
    if err:
        r["import"] = err
        return r
    t = stats["total"]
    r["import"] = "ok"
    r["joule"] = {"macs": t["macs"], "conv": t["conv"]["macs"], "linear": t["fc"]["macs"],
                  "matmul": t["matmul"]["macs"], "weights": t["weights"],
                  "element_ops": t["element_ops"]}
    r["macs_match"] = all(r["joule"][k] == counts[k] for k in ("macs", "conv", "linear", "matmul"))
    energy, err, seconds = joule_json(joule, "energy", path, "--hw", "eyeriss", "--json")
    if err:
        r["energy"] = err
    else:
        r["energy"] = {"total": energy["total"]["energy"]["total"],
                       "dram_bytes": energy["total"]["dram_bytes"], "seconds": seconds}
    xin, yout = os.path.join(scratch, "x.bin"), os.path.join(scratch, "y.bin")
    x.astype("<f4").tofile(xin)
    start = time.perf_counter()
    out = subprocess.run([forward, path, xin, yout], capture_output=True, text=True)
    joule_s = time.perf_counter() - start
    if out.returncode != 0:
        r["forward"] = {"exit": out.returncode, "error": one_line(out.stderr)}
        return r
    ours = np.fromfile(yout, dtype="<f4")
    theirs = onnxruntime(path, x)
    if ours.shape != theirs.shape:
        r["forward"] = {"exit": 0, "error": f"output size {ours.size}, onnxruntime {theirs.size}"}
        return r
    diff = float(np.abs(ours - theirs).max())
    scale = float(np.abs(theirs).max())
    # Untrained networks can output (almost) nothing: ViT's head starts at zero, and
    # EfficientNet/MnasNet's logits vanish; the table says so rather than claim a match.
    r["forward"] = {"max_abs": diff, "relative": diff / max(scale, 1e-6), "output_max": scale,
                    "seconds": joule_s}
    return r


def measure(name, joule, forward, scratch):
    size = SIZES.get(name, SIZE)
    torch.manual_seed(SEED)
    model = torchvision.models.get_model(name, weights=None, **KWARGS.get(name, {})).eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))
    params = sum(p.numel() for p in model.parameters())
    result = {"input": [1, 3, size, size], "params": params,
              "available_gib_before": round(available_gib(), 1)}
    start = time.time()
    result["pytorch"] = fixtures.count(model, x)
    result["count_seconds"] = round(time.time() - start, 1)
    for opset in OPSETS:
        folder = os.path.join(scratch, f"{name}-op{opset}")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        path = os.path.join(folder, f"{name}-op{opset}.onnx")
        start = time.time()
        try:
            fixtures.export(model, x, path, opset, dynamic=False)
        except Exception as e:  # an exporter failure is a row of the table, not the end of the sweep
            result[f"op{opset}"] = {"export_error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
            shutil.rmtree(folder, ignore_errors=True)
            continue
        export_s = time.time() - start
        # The exporter's model is no longer needed once the file exists: free it for the
        # importer and onnxruntime, which hold the weights again.
        if opset == OPSETS[-1]:
            del model
            gc.collect()
        r = measure_file(path, result["pytorch"], x.numpy(), joule, forward, scratch)
        r["export_seconds"] = round(export_s, 1)
        result[f"op{opset}"] = r
        shutil.rmtree(folder, ignore_errors=True)
    return result


def measure_apart(name, joule, forward, scratch):
    """`measure` in a process of its own: the exporter and onnxruntime do not give all their
    memory back, and a sweep of 80 models in one process runs out of it."""
    out = os.path.join(scratch, f"{name}.json")
    run = subprocess.run([sys.executable, __file__, "--one", name, joule, forward, scratch, out])
    if run.returncode != 0:
        for opset in OPSETS:
            shutil.rmtree(os.path.join(scratch, f"{name}-op{opset}"), ignore_errors=True)
        return {"process_error": f"exit {run.returncode} (see the log; -9 is the kernel's OOM killer)"}
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    return result


def main():
    if sys.argv[1:2] == ["--one"]:
        name, joule, forward, scratch, out = sys.argv[2:7]
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        with open(out, "w") as f:
            json.dump(measure(name, joule, forward, scratch), f)
        return
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    joule, forward, scratch, results_path = sys.argv[1:5]
    os.makedirs(scratch, exist_ok=True)
    results = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            results = json.load(f)
    family = torchvision.models.list_models(module=torchvision.models)
    names = sys.argv[5:] or [n for n in family if n not in results]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    results["_family"] = family
    results["_generator"] = (f"scripts/torchvision-family.py, torch {torch.__version__}, "
                             f"torchvision {torchvision.__version__}, "
                             f"onnxruntime {ort.__version__}")
    # The commit of the code joule is built from (crates/), not of these results.
    git = ["git", "-C", os.path.dirname(HERE)]
    commit = subprocess.run(git + ["log", "-1", "--format=%h", "--", "crates"],
                            capture_output=True, text=True).stdout.strip()
    if subprocess.run(git + ["diff", "--quiet", "HEAD", "--", "crates"]).returncode != 0:
        commit += " with uncommitted changes"
    for name in names:
        if name not in family:
            raise SystemExit(f"{name} is not a torchvision classification model")
        start = time.time()
        results[name] = measure_apart(name, joule, forward, scratch)
        results[name]["seconds"] = round(time.time() - start, 1)
        results[name]["joule_commit"] = commit
        with open(results_path + ".tmp", "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
        os.replace(results_path + ".tmp", results_path)
        summary = {o: results[name].get(f"op{o}", {}).get("import") for o in OPSETS}
        if "process_error" in results[name]:
            summary = results[name]["process_error"]
        print(f"{name}: {summary} ({results[name]['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
