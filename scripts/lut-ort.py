#!/usr/bin/env python3
"""Times joule's latency-table probes (or whole networks) with onnxruntime, by the protocol of
joule's WallClock (crates/compress/src/lut/measure.rs), so that NetAdapt can adapt a network
for onnxruntime on this device (docs/netadapt.md, "Latency tables for any runtime").

  lut-ort.py table PROBES_DIR --out timings.json [--context isolated|streamed] [options]
      every probe of PROBES_DIR/manifest.json (written by `joule lut probes`); read back with
      `joule lut import --probes PROBES_DIR --timings timings.json --out table.json`
  lut-ort.py networks NET.onnx... --probes PROBES_DIR --table-timings timings.json --out nets.json
      whole networks, gated on the table's calibration reference with the table's settings;
      after every sweep, --drift-probes of the table's probes (spread over its latencies) are
      re-timed: the median ratio now/table is the network's `drift`, the machine's state
      relative to the table's on the table's own work; compared with the table by
      `joule lut check --lut table.json --timings nets.json` (raw, and normalised by drift)

Context (--context, as `joule lut build --context`; recorded as `measure.context`, which
`joule lut import` reads):
* isolated (default): every probe repeated on its own (hot caches); no `node` timing. Why
  not streamed as joule's own tables: on onnxruntime (graph optimisation `all`) streamed
  tables over-predicted every network measured here (LeNet-5 +43-66%, mobilenetv2-28
  +22-176%), isolated ones came within 10% on 11 of 12 LeNet-5 members. Likely why (not
  separated further): each probe is a session of its own, so a chain switches sessions,
  with their own memory and kernels, at every step, which a network never does
  (docs/netadapt.md, "Latency tables for any runtime").
* streamed: the probes run in chains in the network's order (chain j: the j-th
  variant, cyclically, of every step of the manifest's `steps`, then the overhead probe and
  the two-node probe `node`); each pass runs every chain twice in a row and times the second,
  every run on its own (measure.rs `streamed_medians`): a network's step runs after the
  network's previous step, not after itself. The two-node probe minus the one-node overhead
  probe is the runtime's cost per node, charged by `joule lut import` to every entry (the
  overhead it subtracts is the call alone). Both overhead probes are run without graph
  optimisation: onnxruntime removes a Dropout whose output is not the graph's, so optimised
  the two-node probe is one node.

The protocol, as in measure.rs:
* a run is one session.run on a bound input and a bound, reused output (IOBinding): the output
  storage is kept between runs as joule's probe reuses its output buffer;
* stable median: --warmup untimed runs, then rounds of --round runs until the median moves by
  at most --tolerance between rounds (or --max-runs); the spread is the inter-quartile range;
* sweeps: a table is measured in --sweeps passes over all probes, the median of the sweeps'
  medians kept, the spread the larger of the within- and between-sweep spreads; a network
  in --sweeps measurements --pause-ms apart;
* gate: before every sweep of every probe and network, the calibration probe (CONV 16 -> 32,
  3x3, 14x14, + ReLU) is timed (2 untimed + median of 9 runs) and the sweep waits in 50 ms
  steps, up to --gate-wait-ms, while it runs more than --gate-tolerance slower than the
  fastest calibration seen; a table first samples the calibration every 100 ms for 1 s;
  networks start from the table's reference.
Differences from WallClock: the overhead probe is timed in every sweep with the probes (joule
times it first, in its own sweeps); the clock is Python's perf_counter around session.run, so the
per-call overhead includes the Python binding (measured by the overhead probe and subtracted
from every entry, as joule's engine overhead is); the runtime chooses its own threads within
--threads (intra-op pool), and onnxruntime's graph optimisations (--opt-level, default all)
fuse what it fuses (joule's keys name the engine's fused steps; onnxruntime fuses Conv+Relu
and Conv+BatchNorm the same way).

Recorded with the timings (issue 17 item 6): the calibration reference, the median
calibration at the gates (`state_ms`, the machine's state while measuring), the load
averages, the mean CPU frequency and the steal time before and after, the onnxruntime
version, execution provider and threads. Every output file is written atomically.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

FORMAT = "joule-lut-timings"


def median(values):
    return quantile(values, 0.5)


def quantile(values, q):
    """Linear-interpolated quantile, as measure.rs `quantile`."""
    if not values:
        return 0.0
    v = sorted(values)
    at = min(max(q, 0.0), 1.0) * (len(v) - 1)
    lo, hi = int(np.floor(at)), int(np.ceil(at))
    return v[lo] + (v[hi] - v[lo]) * (at - lo)


def stable_median(cfg, sample):
    """measure.rs `stable_median`: warm-up, rounds until the median settles."""
    for _ in range(cfg["warmup"]):
        sample()
    rnd = max(cfg["round"], 1)
    runs, previous, stable = [], None, False
    while len(runs) < max(cfg["max_runs"], rnd):
        runs.extend(sample() for _ in range(rnd))
        m = median(runs)
        if previous is not None and abs(m - previous) <= cfg["tolerance"] * max(abs(previous), sys.float_info.min):
            stable = True
            break
        previous = m
    return {
        "median_ms": median(runs),
        "spread_ms": quantile(runs, 0.75) - quantile(runs, 0.25),
        "runs": len(runs),
        "stable": stable,
    }


def combine_sweeps(sweeps):
    """measure.rs `combine_sweeps`: median of medians; the larger spread."""
    medians = [s["median_ms"] for s in sweeps]
    spreads = [s["spread_ms"] for s in sweeps]
    between = quantile(medians, 0.75) - quantile(medians, 0.25) if len(sweeps) > 1 else 0.0
    return {
        "median_ms": median(medians),
        "spread_ms": max(median(spreads), between),
        "runs": sum(s["runs"] for s in sweeps),
        "stable": all(s["stable"] for s in sweeps),
    }


def chains(steps):
    """mod.rs `chains`: chain j takes the j-th variant (cyclically) of every step, in graph
    order; as many chains as the step with the most variants has."""
    n = max((len(s) for s in steps), default=0)
    return [[s[j % len(s)] for s in steps if s] for j in range(n)]


def streamed_medians(cfg, runs, chains):
    """measure.rs `streamed_medians`: each pass runs every chain (indices into `runs`) twice
    in a row, timing every run of the second on its own; after cfg warmup untimed passes,
    rounds of cfg round passes until every probe's median moved by at most the tolerance
    between rounds (or cfg max_runs passes). One measurement per run closure (a closure no
    chain names has no runs and measures 0)."""
    samples = [[] for _ in runs]

    def run_pass(keep):
        for chain in chains:
            # Twice in a row, the second timed: a network is timed (and served) run after
            # run, its own weights and buffers warm from its previous run (measure.rs).
            for i in chain:
                runs[i]()
            times = [runs[i]() for i in chain]
            if keep:
                for i, t in zip(chain, times):
                    samples[i].append(t)

    for _ in range(cfg["warmup"]):
        run_pass(False)
    rnd = max(cfg["round"], 1)
    passes, previous = 0, None
    stable = [False] * len(runs)
    while passes < max(cfg["max_runs"], rnd):
        for _ in range(rnd):
            run_pass(True)
        passes += rnd
        now = [median(s) for s in samples]
        if previous is not None:
            stable = [abs(m - p) <= cfg["tolerance"] * max(abs(p), sys.float_info.min) for m, p in zip(now, previous)]
            if all(stable):
                break
        previous = now
    return [
        {"median_ms": median(s), "spread_ms": quantile(s, 0.75) - quantile(s, 0.25), "runs": len(s), "stable": ok}
        for s, ok in zip(samples, stable)
    ]


def probe_input(shape):
    """joule's probe_input: deterministic non-zero values ((i % 17) - 8) / 8."""
    n = int(np.prod(shape))
    return ((np.arange(n) % 17).astype(np.float32) - 8.0) / 8.0


class Runner:
    """One onnxruntime session per file, timed on a bound input and a reused bound output."""

    def __init__(self, args):
        import onnxruntime as ort

        self.ort = ort
        self.args = args
        self.opts = ort.SessionOptions()
        self.opts.intra_op_num_threads = args.threads
        self.opts.inter_op_num_threads = 1
        self.opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[args.opt_level]
        if args.provider not in ort.get_available_providers():
            sys.exit(f"lut-ort.py: --provider {args.provider}: not available (onnxruntime {ort.__version__} has {', '.join(ort.get_available_providers())})")
        self.reference = float("inf")
        self.states = []
        self.waited_ms, self.gave_up = 0.0, 0

    def load(self, path, shape, optimise=True):
        """A timed-run closure for the ONNX file at `path` on input `shape` ([n, c, h, w];
        a network's symbolic batch takes n); `optimise=False`: without graph optimisation."""
        ort = self.ort
        opts = self.opts
        if not optimise:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.opts.intra_op_num_threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(path, opts, providers=[self.args.provider])
        except Exception as e:  # onnxruntime raises its own exception types
            sys.exit(f"lut-ort.py: {path}: {str(e).splitlines()[0]}")
        inp = session.get_inputs()[0]
        dims = list(shape)
        if len(inp.shape) == 2:  # a flat input (N x features)
            dims = [dims[0], int(np.prod(dims[1:]))]
        x = probe_input(dims).reshape(dims)
        (y,) = session.run(None, {inp.name: x})
        binding = session.io_binding()
        x_value = ort.OrtValue.ortvalue_from_numpy(x)
        y_value = ort.OrtValue.ortvalue_from_numpy(np.empty_like(y))
        binding.bind_ortvalue_input(inp.name, x_value)
        binding.bind_ortvalue_output(session.get_outputs()[0].name, y_value)
        clock = time.perf_counter

        def run():
            start = clock()
            session.run_with_iobinding(binding)
            return (clock() - start) * 1e3

        # Keep the bound values alive with the closure.
        run.keep = (session, binding, x_value, y_value)
        return run

    def calibrate(self):
        for _ in range(2):
            self.calibration()
        return median([self.calibration() for _ in range(9)])

    def find_reference(self, duration_ms):
        start = time.monotonic()
        while True:
            self.reference = min(self.reference, self.calibrate())
            if (time.monotonic() - start) * 1e3 >= duration_ms:
                return self.reference
            time.sleep(0.1)

    def settle(self, cfg):
        """measure.rs `WallClock::settle`: wait for the reference speed (the gate)."""
        if cfg["gate_tolerance"] <= 0:
            return
        start = time.monotonic()
        first = None
        while True:
            now = self.calibrate()
            # The state is the calibration when the sweep was due, before any wait: the one
            # the gate lets through is censored at the tolerance.
            first = now if first is None else first
            self.reference = min(self.reference, now)
            waited = (time.monotonic() - start) * 1e3
            normal = now <= self.reference * (1 + cfg["gate_tolerance"])
            if normal or waited >= cfg["gate_wait_ms"]:
                self.states.append(first)
                self.waited_ms += waited
                self.gave_up += 0 if normal else 1
                return
            time.sleep(0.05)

    def take_states(self):
        states, self.states = self.states, []
        return median(states) if states else None

    def swept_median(self, cfg, sample):
        sweeps = []
        for i in range(max(cfg["sweeps"], 1)):
            if i > 0 and cfg["pause_ms"] > 0:
                time.sleep(cfg["pause_ms"] / 1e3)
            self.settle(cfg)
            sweeps.append(stable_median(cfg, sample))
        return combine_sweeps(sweeps)


def proc_stat():
    """(steal, total) jiffies of /proc/stat's cpu line, or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return fields[7] if len(fields) > 7 else 0, sum(fields)
    except OSError:
        return None


def machine_state():
    """Load averages, mean CPU MHz (Linux /proc/cpuinfo), CPU count, for the record."""
    state = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        state["load_average"] = list(os.getloadavg())
    except OSError:
        state["load_average"] = None
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
        state["cpu_mhz"] = sum(mhz) / len(mhz) if mhz else None
    except OSError:
        state["cpu_mhz"] = None
    state["cpus"] = os.cpu_count()
    return state


def record(before_stat, before):
    after_stat = proc_stat()
    after = machine_state()
    steal = None
    if before_stat and after_stat and after_stat[1] > before_stat[1]:
        steal = (after_stat[0] - before_stat[0]) / (after_stat[1] - before_stat[1])
    return {"before": before, "after": after, "steal_fraction": steal, "platform": platform.platform(), "machine": platform.machine()}


def write_atomic(path, value):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lut-ort-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def config(args):
    return {
        "context": args.context,
        "warmup": args.warmup,
        "round": args.round,
        "tolerance": args.tolerance,
        "max_runs": args.max_runs,
        "sweeps": args.sweeps,
        "pause_ms": args.pause_ms,
        "gate_tolerance": args.gate_tolerance,
        "gate_wait_ms": args.gate_wait_ms,
    }


def runtime(runner, args):
    return {
        "name": "onnxruntime",
        "version": runner.ort.__version__,
        "provider": args.provider,
        "threads": args.threads,
        "opt_level": args.opt_level,
    }


def read_manifest(folder):
    path = os.path.join(folder, "manifest.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
        if manifest.get("format") != "joule-lut-probes":
            raise ValueError(f"field `format`: {manifest.get('format')!r} is not 'joule-lut-probes'")
        for field in ("batch", "overhead", "calibration", "probes"):
            if field not in manifest:
                raise ValueError(f"missing field `{field}`")
        return manifest
    except (OSError, ValueError) as e:
        sys.exit(f"lut-ort.py: {path}: {e}")


def table(args):
    manifest = read_manifest(args.probes)
    cfg = config(args)
    runner = Runner(args)
    stat, before = proc_stat(), machine_state()
    path = lambda p: os.path.join(args.probes, p["file"])
    if args.context == "streamed":
        steps = streamed_steps(manifest, args.probes)
    runner.calibration = runner.load(path(manifest["calibration"]), manifest["calibration"]["input"])
    if cfg["gate_tolerance"] > 0:
        runner.find_reference(1000)
    if args.context == "streamed":
        return write_table(args, manifest, cfg, runner, stat, before, *streamed_table(args, manifest, cfg, runner, steps))
    # The overhead probe is timed inside every sweep like a probe (measure.rs times it first,
    # in its own sweeps): at 2-4 us a call, a state that lasts a few seconds moved it by 2x
    # relative to the probes it is subtracted from.
    probes = [runner.load(path(manifest["overhead"]), manifest["overhead"]["input"])]
    probes += [runner.load(path(p), p["input"]) for p in manifest["probes"]]
    # Every probe once per sweep, so that a slow phase touches one sweep of many probes
    # rather than all the runs of a few (measure.rs `build`).
    per_probe = [[] for _ in probes]
    total = max(cfg["sweeps"], 1) * len(probes)
    for sweep in range(max(cfg["sweeps"], 1)):
        for i, run in enumerate(probes):
            runner.settle(cfg)
            per_probe[i].append(stable_median(cfg, run))
            done = sweep * len(probes) + i + 1
            if args.progress and (done % 50 == 0 or done == total):
                print(f"lut-ort.py: {done}/{total} probe sweeps", file=sys.stderr)
    return write_table(args, manifest, cfg, runner, stat, before, combine_sweeps(per_probe[0]), None, [combine_sweeps(s) for s in per_probe[1:]])


def streamed_steps(manifest, folder):
    """The manifest's steps, checked: what a streamed table chains."""
    where = os.path.join(folder, "manifest.json")
    steps = manifest.get("steps")
    if not steps or "node" not in manifest or not manifest["node"]:
        field = "steps" if not steps else "node"
        sys.exit(f"lut-ort.py: {where}: missing field `{field}` (a streamed table needs it: write the probes with this joule's `joule lut probes`, or time them with --context isolated)")
    n = len(manifest["probes"])
    for i, step in enumerate(steps):
        if not isinstance(step, list) or not all(isinstance(j, int) and 0 <= j < n for j in step):
            sys.exit(f"lut-ort.py: {where}: field `steps[{i}]`: {step!r} is not a list of probe indices below {n}")
    return steps


def streamed_table(args, manifest, cfg, runner, steps):
    """Every probe timed in the network's order (mod.rs `streamed`): one streamed_medians
    per sweep over all chains, the sweeps combined by combine_sweeps. The overhead probes
    (one and two identity nodes) close every chain: the first run of a chain follows the
    previous chain's last, as a network's first step follows its previous run."""
    path = lambda p: os.path.join(args.probes, p["file"])
    runs = [
        runner.load(path(manifest["overhead"]), manifest["overhead"]["input"], optimise=False),
        runner.load(path(manifest["node"]), manifest["node"]["input"], optimise=False),
    ]
    runs += [runner.load(path(p), p["input"]) for p in manifest["probes"]]
    chain_list = [[i + 2 for i in c] + [0, 1] for c in chains(steps)]
    sweeps = max(cfg["sweeps"], 1)
    per = [[] for _ in runs]
    for sweep in range(sweeps):
        if sweep > 0 and cfg["pause_ms"] > 0:
            time.sleep(cfg["pause_ms"] / 1e3)
        runner.settle(cfg)
        for i, m in enumerate(streamed_medians(cfg, runs, chain_list)):
            per[i].append(m)
        if args.progress:
            print(f"lut-ort.py: {sweep + 1}/{sweeps} streamed sweeps ({len(chain_list)} chains)", file=sys.stderr)
    overhead, node = combine_sweeps(per[0]), combine_sweeps(per[1])
    return overhead, node, [combine_sweeps(s) for s in per[2:]]


def write_table(args, manifest, cfg, runner, stat, before, overhead, node, probes):
    out = {
        "format": FORMAT,
        "version": 1,
        "runtime": runtime(runner, args),
        "measure": cfg,
        "calibration_ms": runner.reference if np.isfinite(runner.reference) else runner.calibrate(),
        "state_ms": runner.take_states() or runner.calibrate(),
        "gate": {"waited_ms": runner.waited_ms, "gave_up": runner.gave_up},
        "machine": record(stat, before),
        "overhead": {"file": manifest["overhead"]["file"], **overhead},
        "probes": [{"file": p["file"], **m} for p, m in zip(manifest["probes"], probes)],
    }
    if node is not None:
        out["node"] = {"file": manifest["node"]["file"], **node}
    write_atomic(args.out, out)
    unstable = sum(not p["stable"] for p in out["probes"])
    load = out["machine"]["before"]["load_average"]
    per_node = f", node {node['median_ms'] - overhead['median_ms']:.4f} ms" if node is not None else ""
    print(f"{len(manifest['probes'])} probes timed {args.context} with onnxruntime {out['runtime']['version']} ({args.provider}, {args.threads} thread(s)); overhead {overhead['median_ms']:.4f} ms{per_node}, calibration {out['calibration_ms']:.4f} ms, state {out['state_ms']:.4f} ms, {unstable} unstable, load average {load[0] if load else 'unknown'}; {args.out}")


def networks(args):
    manifest = read_manifest(args.probes)
    try:
        with open(args.table_timings) as f:
            reference = json.load(f)
        cfg = reference["measure"]
        rt = reference["runtime"]
        calibration = float(reference["calibration_ms"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"lut-ort.py: {args.table_timings}: {e}")
    if args.gate_tolerance is not None:  # an experiment's override (issue 17 item 6)
        cfg = dict(cfg, gate_tolerance=args.gate_tolerance)
    # The table's settings, so that networks are timed as its probes were.
    args.threads, args.provider, args.opt_level = rt["threads"], rt["provider"], rt.get("opt_level", "all")
    runner = Runner(args)
    stat, before = proc_stat(), machine_state()
    runner.calibration = runner.load(os.path.join(args.probes, manifest["calibration"]["file"]), manifest["calibration"]["input"])
    runner.reference = calibration
    # Drift probes: a sample of the table's own probes, spread over its range of latencies,
    # re-timed after every sweep of every network; the median ratio of their times now to
    # their times in the table is how much slower (or faster) the machine runs this kind of
    # work than when the table was measured (issue 17 item 6).
    table_ms = {p["file"]: p["median_ms"] for p in reference.get("probes", [])}
    ranked = sorted((m, f) for f, m in table_ms.items())
    picks = sorted({round(i * (len(ranked) - 1) / max(args.drift_probes - 1, 1)) for i in range(args.drift_probes)}) if ranked and args.drift_probes > 0 else []
    by_file = {p["file"]: p["input"] for p in manifest["probes"]}
    drift_probes = [(ranked[i][0], runner.load(os.path.join(args.probes, ranked[i][1]), by_file[ranked[i][1]])) for i in picks]
    drift_cfg = dict(cfg, warmup=1, max_runs=max(cfg["round"], 1) * 2)
    # In the table's context: a streamed table's probes are re-timed as one chain (twice in
    # a row, the second timed), each after another probe as in the table's chains; an
    # isolated table's each on its own.
    if cfg.get("context", "isolated") == "streamed":
        drift_chain = [list(range(len(drift_probes)))]
        drift_now = lambda: [m["median_ms"] for m in streamed_medians(drift_cfg, [p for _, p in drift_probes], drift_chain)]
    else:
        drift_now = lambda: [stable_median(drift_cfg, probe)["median_ms"] for _, probe in drift_probes]
    results = []
    for file in args.files:
        import onnx

        model = onnx.load(file, load_external_data=False)
        dims = [d.dim_value or manifest["batch"] for d in model.graph.input[0].type.tensor_type.shape.dim]
        run = runner.load(file, dims if len(dims) == 4 else dims + [1] * (4 - len(dims)))
        ratios = []

        sweeps = []
        for i in range(max(cfg["sweeps"], 1)):
            if i > 0 and cfg["pause_ms"] > 0:
                time.sleep(cfg["pause_ms"] / 1e3)
            runner.settle(cfg)
            sweeps.append(stable_median(cfg, run))
            if drift_probes:
                ratios.append(median([now / then for now, (then, _) in zip(drift_now(), drift_probes)]))
        measured = combine_sweeps(sweeps)
        row = {"file": file, **measured, "state_ms": runner.take_states() or runner.calibrate()}
        if ratios:
            row["drift"] = median(ratios)
        results.append(row)
        if args.progress:
            print(f"lut-ort.py: {file}: {measured['median_ms']:.4f} ms (state {row['state_ms']:.4f} ms, drift {row.get('drift', float('nan')):.3f})", file=sys.stderr)
    out = {
        "format": FORMAT,
        "version": 1,
        "runtime": runtime(runner, args),
        "measure": cfg,
        "calibration_ms": runner.reference,
        "gate": {"waited_ms": runner.waited_ms, "gave_up": runner.gave_up},
        "machine": record(stat, before),
        "networks": results,
    }
    write_atomic(args.out, out)
    print(f"{len(results)} networks timed with onnxruntime {out['runtime']['version']}; {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="time every probe of a probe folder")
    t.add_argument("probes")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--provider", default="CPUExecutionProvider")
    t.add_argument("--opt-level", choices=["disable", "basic", "extended", "all"], default="all")
    t.add_argument("--context", choices=["isolated", "streamed"], default="isolated", help="each probe on its own (default) or the probes chained in the network's order")
    # measure.rs MeasureConfig::default().
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--round", type=int, default=15)
    t.add_argument("--tolerance", type=float, default=0.02)
    t.add_argument("--max-runs", type=int, default=150)
    t.add_argument("--sweeps", type=int, default=7)
    t.add_argument("--pause-ms", type=int, default=100)
    t.add_argument("--gate-tolerance", type=float, default=0.1)
    t.add_argument("--gate-wait-ms", type=int, default=30000)
    n = sub.add_parser("networks", help="time whole networks against a table's reference")
    n.add_argument("files", nargs="+")
    n.add_argument("--probes", required=True, help="the table's probe folder (its calibration probe)")
    n.add_argument("--table-timings", required=True, help="the table's timings (settings, reference)")
    n.add_argument("--drift-probes", type=int, default=12, help="table probes re-timed after every sweep (0: none)")
    n.add_argument("--gate-tolerance", type=float, default=None, help="override the table's gate (0: off)")
    for p in (t, n):
        p.add_argument("--out", required=True)
        p.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    for field in ("threads", "warmup", "round", "max_runs", "sweeps"):
        value = getattr(args, field, 1)
        if value < (0 if field == "warmup" else 1):
            parser.error(f"--{field.replace('_', '-')}: must be at least {0 if field == 'warmup' else 1}")
    {"table": table, "networks": networks}[args.command](args)


if __name__ == "__main__":
    main()
