//! The tables joule prints and the report shows, built once from results: the same
//! [`Table`] renders as aligned text, CSV or HTML.

use crate::estimate::Entry;
use joule_energy::cost::{LevelEnergy, TypeEnergy};
use joule_energy::eyexam::{Bound, Exam, Step};
use joule_energy::NetworkCost;
use joule_model::{LayerClass, NetworkStats};
use joule_report::{human, Table};

/// A number as text: exact when `raw` (CSV), else human-readable.
fn number(raw: bool) -> impl Fn(f64) -> String {
    move |v| if raw { format!("{v}") } else { human(v) }
}

/// Per-layer weights, MACs and activations; `all` includes layers other than CONV/FC.
pub fn stats_layers(stats: &NetworkStats, all: bool, raw: bool) -> Table {
    let mut t = Table::new([
        "layer",
        "kind",
        "output",
        "weights",
        "biases",
        "macs",
        "input_activations",
        "output_activations",
        "element_ops",
    ]);
    let count = |v: u64| if raw { v.to_string() } else { human(v as f64) };
    for l in &stats.layers {
        if !all && l.class == LayerClass::Other {
            continue;
        }
        let [n, c, h, w] = l.output_shape;
        t.row([
            l.name.clone(),
            l.kind.clone(),
            format!("{n}x{c}x{h}x{w}"),
            count(l.weights),
            count(l.biases),
            count(l.macs),
            count(l.input_activations),
            count(l.output_activations),
            count(l.element_ops),
        ]);
    }
    t
}

/// CONV, FC, MatMul (products of two activations, when there are any) and total layers,
/// weights and MACs, and the element operations that are not MACs.
pub fn stats_totals(stats: &NetworkStats) -> Table {
    let t = &stats.total;
    let mut s = Table::new(["", "layers", "weights", "macs"]);
    let fmt = |v: u64| format!("{} ({v})", human(v as f64));
    s.row([
        "CONV".into(),
        t.conv.layers.to_string(),
        fmt(t.conv.weights),
        fmt(t.conv.macs),
    ]);
    s.row([
        "FC".into(),
        t.fc.layers.to_string(),
        fmt(t.fc.weights),
        fmt(t.fc.macs),
    ]);
    if t.matmul.layers > 0 {
        // Products of two activations (attention): MACs without weights.
        s.row([
            "MatMul".into(),
            t.matmul.layers.to_string(),
            fmt(t.matmul.weights),
            fmt(t.matmul.macs),
        ]);
    }
    s.row([
        "total".into(),
        (t.conv.layers + t.fc.layers + t.matmul.layers).to_string(),
        fmt(t.weights),
        fmt(t.macs),
    ]);
    s.row([
        "element ops (not MACs)".into(),
        String::new(),
        String::new(),
        fmt(t.element_ops),
    ]);
    s
}

/// Per-layer energy by level and data type, cycles, utilization and DRAM traffic, with a
/// total row.
pub fn energy_layers(r: &NetworkCost, raw: bool) -> Table {
    let mut t = Table::new([
        "layer",
        "macs",
        "total",
        "mac",
        "rf",
        "array",
        "buffer",
        "dram",
        "ifmap",
        "filter",
        "psum",
        "cycles",
        "utilization",
        "dram_bytes",
    ]);
    let f = number(raw);
    let mut row = |name: String,
                   macs: u64,
                   e: &LevelEnergy,
                   ty: &TypeEnergy,
                   cycles: f64,
                   util: f64,
                   bytes: f64| {
        t.row([
            name,
            f(macs as f64),
            f(e.total),
            f(e.mac),
            f(e.rf),
            f(e.array),
            f(e.buffer),
            f(e.dram),
            f(ty.ifmap),
            f(ty.filter),
            f(ty.psum),
            f(cycles),
            format!("{:.1}%", 100.0 * util),
            f(bytes),
        ]);
    };
    for l in &r.layers {
        let c = &l.cost;
        row(
            c.name.clone(),
            c.macs,
            &c.energy,
            &c.energy_by_type,
            c.cycles,
            c.utilization,
            c.dram_bytes,
        );
    }
    let tot = &r.total;
    row(
        "total".into(),
        tot.macs,
        &tot.energy,
        &tot.energy_by_type,
        tot.cycles,
        tot.utilization,
        tot.dram_bytes,
    );
    t
}

/// Per-layer PIM components, arrays and conversions.
pub fn pim_layers(r: &NetworkCost) -> Table {
    let mut t = Table::new([
        "layer",
        "arrays",
        "util",
        "DAC conv",
        "ADC conv",
        "dac",
        "array",
        "adc",
        "digital",
        "buffer",
        "dram",
        "weight prog",
    ]);
    for l in &r.layers {
        let Some(p) = &l.pim else { continue };
        let c = &p.components;
        t.row([
            l.cost.name.clone(),
            p.arrays.to_string(),
            format!("{:.1}%", 100.0 * l.cost.utilization),
            human(p.dac_conversions),
            human(p.adc_conversions),
            human(c.dac),
            human(c.array),
            human(c.adc),
            human(c.digital),
            human(c.buffer),
            human(c.dram),
            human(c.weight_programming),
        ]);
    }
    t
}

/// Models side by side on machines.
pub fn compare(entries: &[Entry], raw: bool) -> Table {
    let mut t = Table::new([
        "hardware",
        "model",
        "energy",
        "unit",
        "energy vs first",
        "latency (us)",
        "latency vs first",
        "utilization",
        "MACs",
        "area (mm2)",
        "breakdown",
    ]);
    let f = number(raw);
    for e in entries {
        let parts: Vec<String> = e
            .breakdown
            .iter()
            .take(4)
            .map(|(n, s)| format!("{n} {:.0}%", 100.0 * s))
            .collect();
        t.row([
            e.hardware.clone(),
            e.model.clone(),
            f(e.energy),
            e.unit.clone(),
            format!("{:.3}", e.energy_ratio),
            f(e.latency_us),
            format!("{:.3}", e.latency_ratio),
            format!("{:.1}%", 100.0 * e.utilization),
            f(e.macs as f64),
            e.area_mm2.map_or("-".to_string(), |a| {
                if raw {
                    format!("{a}")
                } else {
                    format!("{a:.2}")
                }
            }),
            parts.join(", "),
        ]);
    }
    t
}

/// CONV, FC and total energy per dataflow, with ratios to RS (the first result).
pub fn dataflows(results: &[NetworkCost]) -> Table {
    let mut t = Table::new([
        "dataflow",
        "hardware",
        "conv",
        "fc",
        "total",
        "conv_vs_rs",
        "fc_vs_rs",
    ]);
    let Some(rs) = results.first() else { return t };
    let (rs_conv, rs_fc) = (rs.total.conv.energy, rs.total.fc.energy);
    for r in results {
        t.row([
            r.dataflow.to_string(),
            r.hardware.clone(),
            human(r.total.conv.energy),
            human(r.total.fc.energy),
            human(r.total.energy.total),
            format!("{:.2}x", r.total.conv.energy / rs_conv),
            format!(
                "{:.2}x",
                if rs_fc > 0.0 {
                    r.total.fc.energy / rs_fc
                } else {
                    0.0
                }
            ),
        ]);
    }
    t
}

/// Eyexam, per layer: non-zero MACs per cycle after each step ([`Step::ALL`]), the cycles
/// after the last, and the step that cost the most.
pub fn eyexam_layers(exam: &Exam, raw: bool) -> Table {
    let mut header = vec!["layer".to_string(), "macs".to_string()];
    header.extend(Step::ALL.iter().map(|s| s.name().to_string()));
    header.extend(["cycles".to_string(), "largest loss".to_string()]);
    let mut t = Table::new(header);
    let f = number(raw);
    let mut row = |name: String, macs: f64, steps: &[Bound]| {
        let mut cells = vec![name, f(macs)];
        cells.extend(steps.iter().map(|b| f(b.macs_per_cycle)));
        cells.push(f(steps.last().map_or(0.0, |b| b.cycles)));
        cells.push(largest_loss(steps));
        t.row(cells);
    };
    for l in &exam.layers {
        row(l.name.clone(), l.macs as f64, &l.steps);
    }
    let macs: u64 = exam.layers.iter().map(|l| l.macs).sum();
    row("total".into(), macs as f64, &exam.total);
    t
}

/// Eyexam for the whole network: per step, MACs per cycle, cycles, and what the step cost
/// against the one before.
pub fn eyexam_steps(exam: &Exam) -> Table {
    let mut t = Table::new(["step", "MACs/cycle", "cycles", "utilization", "vs previous"]);
    let pes = exam.pes as f64;
    let mut previous: Option<f64> = None;
    for b in &exam.total {
        t.row([
            b.step.name().to_string(),
            human(b.macs_per_cycle),
            human(b.cycles),
            format!("{:.1}%", 100.0 * b.macs_per_cycle / pes),
            previous.map_or(String::new(), |p| {
                format!("{:.3}x", if p > 0.0 { b.macs_per_cycle / p } else { 1.0 })
            }),
        ]);
        previous = Some(b.macs_per_cycle);
    }
    t
}

/// The step with the largest drop in MACs per cycle, with its factor (`fit 0.62x`), or `-`
/// when no step loses anything.
fn largest_loss(steps: &[Bound]) -> String {
    steps
        .windows(2)
        .map(|w| {
            (
                w[1].step,
                if w[0].macs_per_cycle > 0.0 {
                    w[1].macs_per_cycle / w[0].macs_per_cycle
                } else {
                    1.0
                },
            )
        })
        .filter(|(_, ratio)| *ratio < 1.0 - 1e-9)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("-".to_string(), |(step, ratio)| {
            format!("{} {ratio:.2}x", step.name())
        })
}
