"""Tests of scripts/lut-ort.py, the onnxruntime runner of joule's latency-table probes
(run by scripts/test.sh: .venv/bin/python -m pytest scripts/test_lut_ort.py).

The protocol's functions are checked against the values measure.rs's own tests assert (the
same hand-computed medians and run counts), the gate against a scripted calibration clock,
the streamed context against a clock that logs every run, and the whole `table` command on a
probe folder built here with the `onnx` package, in both contexts."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "lut-ort.py")
spec = importlib.util.spec_from_file_location("lut_ort", SCRIPT)
lut_ort = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lut_ort)


def cfg(**kw):
    base = dict(warmup=3, round=15, tolerance=0.02, max_runs=150, sweeps=7, pause_ms=0, gate_tolerance=0.1, gate_wait_ms=30000)
    base.update(kw)
    return base


def test_median_and_quantiles_of_known_values():
    assert lut_ort.median([3.0, 1.0, 2.0]) == 2.0
    assert lut_ort.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert lut_ort.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0
    assert lut_ort.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.75) == 4.0


def test_a_steady_clock_stops_after_two_rounds_and_skips_warmup():
    # measure.rs a_steady_clock_stops_after_two_rounds_and_skips_warmup, same numbers.
    calls = [0]

    def sample():
        calls[0] += 1
        return 100.0 if calls[0] <= 2 else 1.0 + (calls[0] % 3) * 0.1

    m = lut_ort.stable_median(cfg(warmup=2, round=5, tolerance=0.01, max_runs=100), sample)
    assert m["runs"] == 10 and m["stable"]
    assert abs(m["median_ms"] - 1.1) < 1e-9
    assert 0 < m["spread_ms"] <= 0.2


def test_a_drifting_clock_runs_to_the_cap_and_says_unstable():
    t = [0.0]

    def sample():
        t[0] += 1.0
        return t[0]

    m = lut_ort.stable_median(cfg(warmup=0, round=4, tolerance=0.01, max_runs=20), sample)
    assert (m["runs"], m["stable"], m["median_ms"]) == (20, False, 10.5)


def test_sweeps_keep_the_median_of_medians_and_the_larger_spread():
    sweeps = [dict(median_ms=v, spread_ms=0.01, runs=10, stable=True) for v in (1.0, 2.0, 9.0)]
    sweeps[2]["stable"] = False
    m = lut_ort.combine_sweeps(sweeps)
    # Medians 1, 2, 9: median 2; quartiles 1.5 and 5.5, so the between-sweep spread 4 wins.
    assert m == dict(median_ms=2.0, spread_ms=4.0, runs=30, stable=False)


def test_chains_take_every_steps_variants_cyclically_in_graph_order():
    # mod.rs `chains`: as many chains as the widest step; a step with fewer variants repeats
    # them cyclically; an empty step is skipped.
    assert lut_ort.chains([[0, 1, 2], [3], [], [4, 5]]) == [[0, 3, 4], [1, 3, 5], [2, 3, 4]]
    assert lut_ort.chains([]) == []


def counting_runs(n, log):
    """Run closures that log their index and return how often they have run (1, 2, ...)."""
    counts = [0] * n

    def make(i):
        def run():
            counts[i] += 1
            log.append(i)
            return float(counts[i])

        return run

    return [make(i) for i in range(n)]


def test_streamed_passes_run_each_chain_twice_and_time_the_second():
    log = []
    runs = counting_runs(3, log)
    # One warm-up pass, then rounds of 2 passes; max 2 passes: exactly 3 passes.
    m = lut_ort.streamed_medians(cfg(warmup=1, round=2, max_runs=2), runs, [[0, 1], [2, 1]])
    # Every pass: chain 0 twice, then chain 1 twice, in order.
    assert log == [0, 1, 0, 1, 2, 1, 2, 1] * 3
    # Probe 0 runs twice a pass: the timed (second) runs of passes 2 and 3 are its 4th and
    # 6th runs. Probe 1 is in both chains: its 2nd and 4th runs of each pass (6, 8, 10, 12).
    assert m[0] == dict(median_ms=5.0, spread_ms=1.0, runs=2, stable=False)
    assert m[1]["median_ms"] == 9.0 and m[1]["runs"] == 4
    assert m[2]["median_ms"] == 5.0


def test_streamed_medians_stop_when_every_probe_settles():
    # A steady clock: 1 ms for probe 0, 2 ms for probe 1; the second round finds both
    # medians unmoved, so two rounds of 5 passes.
    runs = [lambda: 1.0, lambda: 2.0]
    m = lut_ort.streamed_medians(cfg(warmup=0, round=5, max_runs=100), runs, [[0, 1]])
    assert [(x["median_ms"], x["runs"], x["stable"]) for x in m] == [(1.0, 10, True), (2.0, 10, True)]


def gate_runner(times):
    """A Runner whose calibration probe returns the scripted `times` (ms) in turn."""
    runner = lut_ort.Runner(argparse.Namespace(threads=1, provider="CPUExecutionProvider", opt_level="all"))
    it = iter(times)
    runner.calibration = lambda: next(it)
    return runner


def test_the_gate_waits_for_the_reference_speed_and_records_the_state():
    # 11 calibration runs per check: one slow check (2 ms), then a normal one (1.05 ms).
    runner = gate_runner([2.0] * 11 + [1.05] * 11)
    runner.reference = 1.0
    runner.settle(cfg(gate_wait_ms=10_000))
    assert runner.gave_up == 0 and runner.waited_ms >= 50  # one 50 ms pause at least
    # The state is the machine's when the sweep was due (before the wait), not the one the
    # gate let through.
    assert runner.take_states() == 2.0
    assert runner.take_states() is None  # taken


def test_the_gate_gives_up_after_its_wait_and_counts_it():
    runner = gate_runner([2.0] * 11)
    runner.reference = 1.0
    runner.settle(cfg(gate_wait_ms=0))
    assert runner.gave_up == 1 and runner.take_states() == 2.0


def conv_model(path, c, m, hw, relu=True):
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((m, c, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    nodes.append(helper.make_node("Relu", ["conv"], ["out"]) if relu else helper.make_node("Identity", ["conv"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, hw, hw])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", m, hw, hw])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def identity_model(path, nodes=1):
    """`nodes` Dropout nodes in a chain (joule's overhead probes: one node, and two)."""
    names = ["input"] + [f"t{i}" for i in range(nodes - 1)] + ["out"]
    graph = helper.make_graph(
        [helper.make_node("Dropout", [a], [b]) for a, b in zip(names, names[1:])],
        "overhead",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 1, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.fixture
def probes(tmp_path):
    conv_model(str(tmp_path / "calibration.onnx"), 16, 32, 14)
    identity_model(str(tmp_path / "overhead.onnx"))
    identity_model(str(tmp_path / "node.onnx"), nodes=2)
    conv_model(str(tmp_path / "probe_00000.onnx"), 16, 16, 28)
    conv_model(str(tmp_path / "probe_00001.onnx"), 16, 128, 28)
    manifest = {
        "format": "joule-lut-probes",
        "version": 1,
        "model": "test",
        "batch": 1,
        "grid": {"layers": {}},
        "overhead": {"file": "overhead.onnx", "input": [1, 1, 1, 1]},
        "calibration": {"file": "calibration.onnx", "input": [1, 16, 14, 14]},
        "probes": [
            {"file": "probe_00000.onnx", "input": [1, 16, 28, 28]},
            {"file": "probe_00001.onnx", "input": [1, 16, 28, 28]},
        ],
        # One step (the two probes are its variants): two chains.
        "steps": [[0, 1]],
        "node": {"file": "node.onnx", "input": [1, 1, 1, 1]},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


QUICK = ["--warmup", "1", "--round", "5", "--max-runs", "40", "--sweeps", "3", "--pause-ms", "0", "--gate-wait-ms", "200"]


def test_a_streamed_table_chains_the_probes_and_isolated_is_the_default(probes, tmp_path, monkeypatch):
    # Every session run logged by file: besides the calibration (the gate is off; the
    # reference and state are taken once at the end), a streamed table runs the chains
    # [probe 0, overhead, node] and [probe 1, overhead, node], each twice in a row, and
    # nothing else; an isolated table (the default, docs/netadapt.md says why) repeats one
    # file at a time.
    log = []

    def load(self, path, shape, optimise=True):
        name = os.path.basename(path)
        ms = {"overhead.onnx": 0.010, "node.onnx": 0.013, "probe_00000.onnx": 0.1, "probe_00001.onnx": 0.5}.get(name, 0.05)

        def run():
            if name != "calibration.onnx":
                log.append((name, optimise))
            return ms

        return run

    monkeypatch.setattr(lut_ort.Runner, "load", load)
    out = tmp_path / "timings.json"
    argv = ["lut-ort.py", "table", str(probes), "--out", str(out), *QUICK, "--gate-tolerance", "0"]
    monkeypatch.setattr(sys, "argv", argv + ["--context", "streamed"])
    lut_ort.main()
    chain = lambda p: [(p, True), ("overhead.onnx", False), ("node.onnx", False)]
    one_pass = (chain("probe_00000.onnx") * 2) + (chain("probe_00001.onnx") * 2)
    assert len(log) % len(one_pass) == 0 and len(log) > 0
    assert log == one_pass * (len(log) // len(one_pass))
    t = json.loads(out.read_text())
    assert t["measure"]["context"] == "streamed"
    assert (t["overhead"]["median_ms"], t["node"]["median_ms"], t["node"]["file"]) == (0.010, 0.013, "node.onnx")
    assert [p["median_ms"] for p in t["probes"]] == [0.1, 0.5]
    # Isolated (no --context): one file repeated at a time, no two-node probe.
    log.clear()
    monkeypatch.setattr(sys, "argv", argv)
    lut_ort.main()
    assert log[0] == log[1] == ("overhead.onnx", True)
    t = json.loads(out.read_text())
    assert t["measure"]["context"] == "isolated" and "node" not in t


def test_a_streamed_table_needs_the_manifests_steps(probes, tmp_path):
    manifest = json.loads((probes / "manifest.json").read_text())
    del manifest["steps"]
    (probes / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "t.json"
    streamed = [*QUICK, "--context", "streamed"]
    run = subprocess.run([sys.executable, SCRIPT, "table", str(probes), "--out", str(out), *streamed], capture_output=True, text=True)
    assert run.returncode != 0 and run.stderr.strip().count("\n") == 0
    assert "manifest.json" in run.stderr and "`steps`" in run.stderr and not out.exists()
    manifest["steps"] = [[0, 2]]
    (probes / "manifest.json").write_text(json.dumps(manifest))
    run = subprocess.run([sys.executable, SCRIPT, "table", str(probes), "--out", str(out), *streamed], capture_output=True, text=True)
    assert run.returncode != 0 and "`steps[0]`" in run.stderr and not out.exists()


@pytest.mark.parametrize("context", ["streamed", "isolated"])
def test_table_times_every_probe_and_records_the_runtime_and_machine(probes, tmp_path, context):
    out = tmp_path / "timings.json"
    run = subprocess.run([sys.executable, SCRIPT, "table", str(probes), "--out", str(out), *QUICK, "--context", context], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    t = json.loads(out.read_text())
    assert t["measure"]["context"] == context
    if context == "streamed":
        # (Whether two Dropouts measure above one, by about a microsecond, is not asserted:
        # on a loaded machine with these few runs it went either way.)
        assert t["node"]["file"] == "node.onnx" and t["node"]["median_ms"] > 0
    else:
        assert "node" not in t
    assert t["format"] == "joule-lut-timings"
    assert t["runtime"] == dict(name="onnxruntime", version=onnxruntime.__version__, provider="CPUExecutionProvider", threads=1, opt_level="all")
    assert [p["file"] for p in t["probes"]] == ["probe_00000.onnx", "probe_00001.onnx"]
    for m in t["probes"] + [t["overhead"]]:
        assert m["median_ms"] > 0 and m["spread_ms"] >= 0 and m["runs"] >= 3 * 10
    # 8x the MACs on the same map (1.8M and 14.5M): at least 3x slower net of the overhead
    # (a margin a loaded 2-core machine keeps).
    small, large = (p["median_ms"] - t["overhead"]["median_ms"] for p in t["probes"])
    assert large > 3 * small > 0
    assert t["calibration_ms"] > 0 and t["state_ms"] >= t["calibration_ms"]
    assert len(t["machine"]["before"]["load_average"]) == 3
    assert t["measure"]["sweeps"] == 3

    nets = tmp_path / "nets.json"
    net = str(probes / "probe_00001.onnx")
    run = subprocess.run([sys.executable, SCRIPT, "networks", net, "--probes", str(probes), "--table-timings", str(out), "--out", str(nets)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    n = json.loads(nets.read_text())
    assert [x["file"] for x in n["networks"]] == [net]
    assert n["networks"][0]["median_ms"] > 0 and n["networks"][0]["state_ms"] > 0
    # Drift: the table's own probes re-timed now over their table times (same machine,
    # seconds apart: near 1; a 2x margin for a loaded machine).
    assert 0.5 < n["networks"][0]["drift"] < 2.0
    # The table's settings and reference are the networks' (calibration only ever falls).
    assert n["measure"] == t["measure"] and n["calibration_ms"] <= t["calibration_ms"]


def test_a_bad_manifest_is_one_line_naming_file_and_field(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "joule-lut-probes", "batch": 1}))
    run = subprocess.run([sys.executable, SCRIPT, "table", str(tmp_path), "--out", str(tmp_path / "t.json")], capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0
    assert "manifest.json" in run.stderr and "`overhead`" in run.stderr
    assert not (tmp_path / "t.json").exists()
