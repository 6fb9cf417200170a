"""Tests of scripts/lut-ort.py, the onnxruntime runner of joule's latency-table probes
(run by scripts/test.sh: .venv/bin/python -m pytest scripts/test_lut_ort.py).

The protocol's functions are checked against the values measure.rs's own tests assert (the
same hand-computed medians and run counts), the gate against a scripted calibration clock,
and the whole `table` command on a probe folder built here with the `onnx` package."""

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


def identity_model(path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["out"])],
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
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


QUICK = ["--warmup", "1", "--round", "5", "--max-runs", "40", "--sweeps", "3", "--pause-ms", "0", "--gate-wait-ms", "200"]


def test_table_times_every_probe_and_records_the_runtime_and_machine(probes, tmp_path):
    out = tmp_path / "timings.json"
    run = subprocess.run([sys.executable, SCRIPT, "table", str(probes), "--out", str(out), *QUICK], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    t = json.loads(out.read_text())
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
