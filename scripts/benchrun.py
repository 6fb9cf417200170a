"""What scripts/bench-infer.py and scripts/bench-train.py share: the CPU, the load average
and the times a side's process prints (`times <seconds>...` on its last such line)."""

import subprocess


def cpu():
    """The CPU model and the vector instructions joule's kernels pick between: results from
    an AVX-512 machine and an AVX2 one are not comparable (joule runs different kernels)."""
    model, flags = "unknown CPU", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    if "avx512f" in flags:
        isa = "AVX-512"
    elif {"avx2", "fma"} <= flags:
        isa = "AVX2 + FMA, no AVX-512"
    else:
        isa = "no AVX2"
    return f"{model} ({isa})"


def load1():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def times_of(cmd, env):
    """Runs `cmd` and returns the seconds of its last `times` line; a failure raises with
    its stderr."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    line = [l for l in proc.stdout.splitlines() if l.startswith("times ")][-1]
    return [float(t) for t in line.split()[1:]]
