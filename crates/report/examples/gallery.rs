//! Renders one chart of each kind and an HTML page holding them, to look at by eye:
//! `cargo run -p joule-report --example gallery -- /tmp/report-check`.
//! The numbers are made up but shaped like joule's (AlexNet-sized energies in pJ).

use joule_report::curves::{curves_svg, Curve, Curves, Front};
use joule_report::html::Page;
use joule_report::{eng, scatter_svg, stacked_bars_svg, Scatter, Series, StackedBars, Table};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "report-check".into()),
    );
    std::fs::create_dir_all(&out)?;

    let layers = [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8",
    ];
    let dram = [2.1e8, 1.1e8, 0.9e8, 1.3e8, 0.8e8, 9.4e8, 4.2e8, 1.0e8];
    let buffer = [6.0e7, 9.1e7, 5.5e7, 8.2e7, 5.6e7, 3.1e7, 1.4e7, 3.4e6];
    let array = [2.2e7, 3.0e7, 1.9e7, 2.8e7, 1.9e7, 1.2e6, 5.3e5, 1.3e5];
    let rf = [1.5e8, 2.9e8, 1.3e8, 2.0e8, 1.3e8, 4.8e6, 2.1e6, 5.1e5];
    let mac = [2.1e6, 4.5e6, 3.0e6, 2.2e6, 1.5e6, 7.5e4, 3.4e4, 8.2e3];
    let series = |log_y| StackedBars {
        title: "AlexNet on Eyeriss (row-stationary, batch 1): energy by level".into(),
        y_label: "energy (pJ)".into(),
        categories: layers.iter().map(|s| s.to_string()).collect(),
        series: vec![
            ("MAC".into(), mac.to_vec()),
            ("RF".into(), rf.to_vec()),
            ("array".into(), array.to_vec()),
            ("buffer".into(), buffer.to_vec()),
            ("DRAM".into(), dram.to_vec()),
        ],
        log_y,
    };
    let bars = stacked_bars_svg(&[series(false), series(true)])?;
    std::fs::write(out.join("bars.svg"), &bars)?;

    // A pruning run: accuracy against energy, in history order (not x order).
    let history = [
        (1.0, 57.1),
        (0.82, 56.9),
        (0.9, 57.0),
        (0.64, 56.2),
        (0.71, 56.8),
        (0.55, 55.1),
        (0.6, 54.0),
        (0.47, 53.2),
    ];
    let magnitude = [
        (1.0, 57.1),
        (0.85, 56.5),
        (0.7, 55.0),
        (0.58, 52.4),
        (0.5, 49.8),
    ];
    let curves = curves_svg(&Curves {
        title: "AlexNet on ImageNet, Eyeriss: energy-aware pruning vs magnitude pruning".into(),
        x_label: "energy / original energy".into(),
        y_label: "top-1 accuracy (%)".into(),
        curves: vec![
            Curve {
                name: "energy-aware".into(),
                points: history.to_vec(),
                dashed: false,
            },
            Curve {
                name: "magnitude".into(),
                points: magnitude.to_vec(),
                dashed: true,
            },
        ],
        front: Some(Front {
            name: "Pareto front (both methods)".into(),
            points: history.iter().chain(&magnitude).copied().collect(),
            maximize_y: true,
        }),
    })?;
    std::fs::write(out.join("curves.svg"), &curves)?;

    let measured = [0.42e-3, 1.3e-3, 2.2e-3, 3.1e-3, 4.4e-3, 5.0e-3, 6.2e-3];
    let predicted = [0.45e-3, 1.2e-3, 2.4e-3, 3.0e-3, 4.9e-3, 4.7e-3, 6.0e-3];
    let scatter = scatter_svg(&Scatter {
        title: "Latency of 7 networks: lookup-table prediction vs measurement".into(),
        x_label: "measured latency (s)".into(),
        y_label: "predicted latency (s)".into(),
        series: vec![Series {
            name: "networks".into(),
            points: measured.iter().copied().zip(predicted).collect(),
            line: false,
            labels: Vec::new(),
        }],
        diagonal: true,
    })?;
    std::fs::write(out.join("scatter.svg"), &scatter)?;

    let mut table = Table::new(["layer", "energy (pJ)", "DRAM share", "MACs"]);
    let macs = [105e6, 224e6, 150e6, 112e6, 75e6, 38e6, 17e6, 4.1e6];
    for i in 0..layers.len() {
        let total = dram[i] + buffer[i] + array[i] + rf[i] + mac[i];
        table.row([
            layers[i].to_string(),
            eng(total),
            format!("{:.1}%", 100.0 * dram[i] / total),
            joule_report::human(macs[i]),
        ]);
    }
    let total: f64 = [dram, buffer, array, rf, mac].iter().flatten().sum();
    let mut page = Page::new(
        "AlexNet on Eyeriss <energy report>",
        "row-stationary dataflow, batch 1, 65 nm energy table",
    );
    page.section("Summary").metrics([
        ("total energy", format!("{}J", eng(total * 1e-12))),
        ("layers", layers.len().to_string()),
        ("MACs", joule_report::human(macs.iter().sum())),
        (
            "DRAM share",
            format!("{:.0}%", 100.0 * dram.iter().sum::<f64>() / total),
        ),
    ]);
    page.section("Energy per layer")
        .how_to_read(
            "Each bar is a layer, split by where the energy is spent (memory level). The lower \
             panel is the same data on a log scale, so the small MAC and array parts show. Hover \
             a segment for its exact value.",
        )
        .chart(bars)
        .table(&table);
    page.section("Pruning trade-off")
        .how_to_read(
            "Up and to the left is better. The black staircase is the Pareto front: for each \
             energy budget, the best accuracy either method reached.",
        )
        .chart(curves);
    page.section("Latency model")
        .how_to_read("Points on the grey diagonal are predicted exactly.")
        .chart(scatter)
        .paragraph("The table predicts within 10% for 6 of 7 networks.");
    std::fs::write(out.join("page.html"), page.render())?;
    println!("wrote {}", out.display());
    Ok(())
}
