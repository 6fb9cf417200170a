//! The PIM experiments of docs/pim.md (issue 8), one command:
//! `cargo run --release -p joule-energy --example pim_experiments -- docs`
//!
//! 1. Utilization versus filter size and array size (table + `pim-utilization.svg`).
//! 2. Network utilization of ResNet-152 and WRN-50-2 per array size.
//! 3. Activation versus weight movement on PIM, weights resident (one-time programming) and
//!    on one ISAAC chip (16128 arrays of 128x128), where neither network fits and weights
//!    are programmed every inference.
use joule_energy::pim::{self, ArrayMapping};
use joule_energy::workload::{self, Workload};
use joule_model::{zoo, LayerClass, LoopNest};
use joule_report::curves::{curves_svg, Curve, Curves};
use joule_report::{human, Table};

const SIZES: [u64; 6] = [128, 256, 512, 1024, 2048, 4096];

fn conv(c: usize, m: usize, rs: usize) -> Workload {
    let nest = LoopNest {
        n: 1,
        m,
        c,
        p: 14,
        q: 14,
        r: rs,
        s: rs,
        h: 14,
        w: 14,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    Workload::new(format!("{rs}x{rs}"), LayerClass::Conv, nest)
}

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs".into()));
    let presets: Vec<_> = SIZES
        .iter()
        .map(|n| pim::spec::preset(&format!("pim-{n}")).unwrap())
        .collect();

    println!("## 1. Utilization (used / allocated cells) of one CONV layer, C = M = 128, 16-bit weights on 2-bit cells\n");
    let filters = [1usize, 3, 5, 7];
    let mut t = Table::new(
        std::iter::once("array".to_string()).chain(filters.iter().map(|f| format!("{f}x{f}"))),
    );
    let mut curves = Vec::new();
    for hw in &presets {
        let mut row = vec![format!("{0}x{0}", hw.array.rows)];
        let mut points = Vec::new();
        for &f in &filters {
            let u = ArrayMapping::new(&conv(128, 128, f), hw).utilization();
            row.push(format!("{:.1}%", 100.0 * u));
            points.push((f as f64, 100.0 * u));
        }
        t.row(row);
        curves.push(Curve {
            name: format!("{0}x{0} arrays", hw.array.rows),
            points,
            dashed: false,
        });
    }
    println!("{}", t.to_text());
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("pim-utilization.svg");
    std::fs::write(
        &path,
        curves_svg(&Curves {
            title: "PIM array utilization, CONV C = M = 128, 16-bit weights on 2-bit cells".into(),
            x_label: "filter size R = S".into(),
            y_label: "utilization (%)".into(),
            curves,
            front: None,
        })
        .unwrap(),
    )
    .unwrap();
    println!("chart: {}\n", path.display());

    let models = ["resnet152", "wide_resnet50_2"];
    let layers: Vec<Vec<Workload>> = models
        .iter()
        .map(|m| workload::from_graph(&zoo::build(m).unwrap(), None, 1).unwrap())
        .collect();
    println!("## 2. Network utilization, energy and latency per array size\n");
    let mut t = Table::new([
        "array",
        "model",
        "arrays",
        "utilization",
        "energy (pJ)",
        "ADC share",
        "latency (us)",
    ]);
    for hw in &presets {
        for (m, l) in models.iter().zip(&layers) {
            let r = pim::evaluate(m, l, hw).unwrap();
            let p = r.total.pim.as_ref().unwrap();
            t.row([
                format!("{0}x{0}", hw.array.rows),
                m.to_string(),
                p.arrays.to_string(),
                format!("{:.1}%", 100.0 * r.total.utilization),
                human(r.total.energy.total),
                format!("{:.0}%", 100.0 * p.components.adc / r.total.energy.total),
                format!("{:.0}", r.total.cycles / r.clock_mhz),
            ]);
        }
    }
    println!("{}", t.to_text());

    println!("## 3. Activation vs weight movement on PIM (pJ per inference)\n");
    let isaac_chip = {
        let mut hw = pim::spec::preset("pim-128").unwrap();
        hw.name = "pim-128, one ISAAC chip (16128 arrays)".into();
        hw.array.count = Some(168 * 12 * 8);
        hw
    };
    let mut t = Table::new([
        "machine",
        "model",
        "activations (DAC+ADC+digital+buffer+DRAM)",
        "analog array",
        "weights",
        "weight share",
        "resident",
        "energy.total",
    ]);
    for hw in [&presets[0], &presets[3], &isaac_chip] {
        for (m, l) in models.iter().zip(&layers) {
            let r = pim::evaluate(m, l, hw).unwrap();
            let p = r.total.pim.as_ref().unwrap();
            let c = &p.components;
            let activations = c.dac + c.adc + c.digital + c.buffer + c.dram;
            // Resident: programming is one-time; shown as the cost of one inference's worth.
            let weights = c.weight_programming;
            t.row([
                hw.name.clone(),
                m.to_string(),
                human(activations),
                human(c.array),
                human(weights),
                format!(
                    "{:.1}%",
                    100.0 * weights / (activations + c.array + weights)
                ),
                if p.resident {
                    "yes (one-time)".into()
                } else {
                    "no (every inference)".to_string()
                },
                human(r.total.energy.total),
            ]);
        }
    }
    println!("{}", t.to_text());
}
