//! Every chart and table of the library layer renders to a string, without touching disk,
//! from real results: estimates computed here, and the committed run summaries under docs/
//! (which must still read as the typed summaries).

use joule_compress::eliminate::pareto::ParetoPoint;
use joule_compress::eliminate::sweep::{Baseline, Energy, Reference};
use joule_compress::eliminate::Point;
use joule_compress::netadapt::run::Summary as AdaptSummary;
use joule_lab::eliminate::{EliminateSummary, LayerInfo};
use joule_lab::estimate::{self, EnergyOptions};
use joule_lab::prune::PruneSummary;
use joule_lab::{adapt, eliminate, prune, tables, Dataflow};
use joule_report::curves::curves_svg;
use joule_report::{scatter_svg, stacked_bars_svg};
use std::path::PathBuf;

fn docs(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(path)
}

/// An SVG document that mentions every `needle`.
fn check_svg(svg: &str, needles: &[&str]) {
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    for n in needles {
        assert!(svg.contains(n), "the chart lacks {n:?}");
    }
}

#[test]
fn estimates_render_their_charts_and_tables() {
    let report = estimate::energy(&EnergyOptions::new("alexnet", "eyeriss")).unwrap();
    let svg = estimate::energy_svg(&report).unwrap();
    check_svg(&svg, &["conv1", "fc3", "DRAM", "filter", "memory level"]);
    let text = tables::energy_layers(&report, false).to_text();
    assert_eq!(
        text.lines().count(),
        2 + 8 + 1,
        "header, rule, 8 layers, total:\n{text}"
    );
    let csv = tables::energy_layers(&report, true).to_csv().unwrap();
    let total: f64 = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(total, report.total.energy.total);

    let pim = estimate::energy(&EnergyOptions::new("lenet300", "pim-128")).unwrap();
    let panels = estimate::energy_panels(&pim);
    assert_eq!(panels.len(), 3, "levels, data types, PIM components");
    check_svg(&stacked_bars_svg(&panels).unwrap(), &["ADC", "DAC"]);
    assert_eq!(tables::pim_layers(&pim).rows().len(), 3);

    let flows = estimate::dataflows("alexnet", "isca16", 16).unwrap();
    check_svg(
        &estimate::dataflows_svg(&flows).unwrap(),
        &["RS", "NLR", "CONV", "FC"],
    );
    assert_eq!(tables::dataflows(&flows).rows().len(), flows.len());

    let models = ["alexnet".to_string(), "squeezenet".to_string()];
    let machines = ["eyeriss".to_string(), "pim-1024".to_string()];
    let entries = estimate::compare(&models, &machines, Dataflow::Rs, 1).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].energy_ratio, 1.0);
    assert_eq!(tables::compare(&entries, false).rows().len(), 4);

    let stats = joule_lab::stats("lenet5", None).unwrap();
    assert_eq!(tables::stats_layers(&stats, false, true).rows().len(), 5);
    assert!(tables::stats_totals(&stats).to_text().contains("416520"));
}

#[test]
fn committed_prune_summaries_read_and_render() {
    let eap = PruneSummary::load(&docs("prune/lenet5-mnist-eap-dir-does-not-exist")).unwrap_err();
    assert!(eap.to_string().contains("summary.json"), "{eap}");
    let read = |name: &str| -> PruneSummary {
        let text = std::fs::read_to_string(docs(name)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let eap = read("prune/lenet5-mnist/eap-summary.json");
    let magnitude = read("prune/lenet5-mnist/magnitude-summary.json");
    let chart = prune::tradeoff_chart(&eap, Some(&magnitude));
    // The front is drawn as such: energy falls as accuracy falls along it.
    let front = joule_report::curves::pareto_front(&chart.front.as_ref().unwrap().points, true);
    assert!(
        front.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "{front:?}"
    );
    assert!(
        !chart.title.contains('/'),
        "a title names the model, not a path: {}",
        chart.title
    );
    // The validation floor spans the networks' energies, from the lowest to the original's.
    let floor = chart.curves.last().unwrap();
    let lowest = chart.curves[..chart.curves.len() - 1]
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    assert!(floor.name.contains("points"), "{}", floor.name);
    assert_eq!((floor.points[0].0, floor.points[1].0), (lowest, 1.0));
    assert!(lowest > 0.0);
    check_svg(
        &curves_svg(&chart).unwrap(),
        &["eap", "magnitude", "lenet5"],
    );
    check_svg(
        &stacked_bars_svg(&[prune::layers_chart(&eap)]).unwrap(),
        &["conv1", "saved"],
    );
    let table = prune::poster_table(&eap, Some(&magnitude));
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| lenet5")).count(),
        3,
        "{table}"
    );
}

#[test]
fn committed_netadapt_summaries_read_and_render() {
    let text = std::fs::read_to_string(docs("netadapt/vgg-small/latency/summary.json")).unwrap();
    let summary: AdaptSummary = serde_json::from_str(&text).unwrap();
    let validation = adapt::validation(&summary).expect("the run measured its networks");
    let committed: adapt::LutValidation = serde_json::from_str(
        &std::fs::read_to_string(docs("netadapt/vgg-small/latency/lut_validation.json")).unwrap(),
    )
    .unwrap();
    // Recomputed from the summary, the table's errors are the committed ones.
    assert_eq!(validation.networks, committed.networks);
    assert_eq!(validation.within_10_percent, committed.within_10_percent);
    assert_eq!(validation.relative_errors, committed.relative_errors);
    check_svg(
        &scatter_svg(&adapt::latency_chart(&summary)).unwrap(),
        &["predicted"],
    );
    let charts = adapt::accuracy_charts(&summary);
    let files: Vec<&str> = charts.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        files,
        [
            "accuracy_vs_latency.svg",
            "accuracy_vs_energy.svg",
            "accuracy_vs_macs.svg"
        ]
    );
    for (_, chart) in &charts {
        check_svg(
            &scatter_svg(chart).unwrap(),
            &["NetAdapt family", "uniform width baseline"],
        );
    }
}

/// A two-layer elimination result on two machines, by hand.
fn elimination() -> EliminateSummary {
    let energy = |hw: &str, unit: &str, total: f64| Energy {
        hardware: hw.into(),
        unit: unit.into(),
        mac: total / 4.0,
        rf: total / 4.0,
        array: 0.0,
        buffer: total / 4.0,
        dram: total / 4.0,
        total,
    };
    let point = |kept: usize, accuracy: f64, e: f64, within: bool| Point {
        kept,
        accuracy,
        validation_accuracy: Some(accuracy + 0.001),
        params: kept * 100,
        energy: vec![
            energy("horowitz45", "pJ", e * 1e6),
            energy("eyeriss", "mac", e * 1e3),
        ],
        reconstruction_error: 0.01,
        within,
        baseline: Baseline {
            accuracy: accuracy - 0.05,
            reconstruction_error: 0.1,
        },
        neurons: Vec::new(),
    };
    let pareto = |hw: &str, layer: &str, kept: usize, e: f64| ParetoPoint {
        hardware: hw.into(),
        layer: layer.into(),
        kept,
        accuracy: 0.97,
        validation_accuracy: Some(0.971),
        params: kept * 100,
        energy: e,
    };
    let info = |next: &str| LayerInfo {
        next: next.into(),
        neurons: 300,
        rank: 250,
        rank_tolerance: 1e-6,
        best: Some(120),
    };
    EliminateSummary {
        model: "runs/lenet300.safetensors".into(),
        data: "mnist".into(),
        max_drop: 2.0,
        holdout: 2000,
        seed: 1,
        samples: None,
        refit_bias: false,
        hardware: vec!["horowitz45".into(), "eyeriss".into()],
        original: Reference {
            accuracy: 0.98,
            validation_accuracy: Some(0.981),
            params: 266_610,
            energy: vec![
                energy("horowitz45", "pJ", 3e6),
                energy("eyeriss", "mac", 3e3),
            ],
        },
        layers: [
            (
                "fc1".to_string(),
                vec![
                    point(250, 0.98, 2.9, true),
                    point(120, 0.97, 2.0, true),
                    point(60, 0.9, 1.5, false),
                ],
            ),
            (
                "fc2".to_string(),
                vec![point(100, 0.98, 2.95, true), point(50, 0.975, 2.8, true)],
            ),
        ]
        .into(),
        layer_info: [
            ("fc1".to_string(), info("fc2")),
            ("fc2".to_string(), info("fc3")),
        ]
        .into(),
        swept: vec!["fc1".into(), "fc2".into()],
        pareto: vec![
            pareto("horowitz45", "fc1", 120, 2e6),
            pareto("eyeriss", "fc1", 120, 2e3),
        ],
    }
}

#[test]
fn elimination_charts_and_tables_render_from_the_summary() {
    let summary = elimination();
    let chart = eliminate::chart(&summary, 0);
    assert_eq!(chart.curves.len(), 4, "two lines per layer");
    // 2.0 pJ-millions = 2 µJ on the x axis.
    assert_eq!(chart.front.as_ref().unwrap().points, vec![(2.0, 97.0)]);
    check_svg(
        &curves_svg(&chart).unwrap(),
        &[
            "fc1 (SVD + QR",
            "fc2 (largest outgoing norm)",
            "Pareto set",
            "lenet300",
        ],
    );
    let tables = eliminate::tables(&summary);
    assert!(tables.contains("| fc1 | 300 | 250 | 120 |"), "{tables}");
    assert!(tables.contains("| fc2 p = 50 |"), "{tables}");
    assert!(
        tables.contains("Pareto set across layers on eyeriss"),
        "{tables}"
    );
    // The summary round-trips through JSON exactly.
    let text = serde_json::to_string(&summary).unwrap();
    assert_eq!(
        serde_json::from_str::<EliminateSummary>(&text).unwrap(),
        summary
    );
}

#[test]
fn the_report_page_lays_out_what_it_is_given() {
    let html = joule_lab::page::report(&joule_lab::page::ReportOptions {
        title: "t <&> check".into(),
        models: vec!["alexnet".into(), "lenet5".into()],
        hw: vec!["eyeriss".into(), "pim-128".into()],
        batch: 1,
        dataflows: Some("isca16".into()),
        dataflow_batch: 16,
        runs: vec![
            docs("prune/lenet5-mnist/eap-summary.json"),
            docs("netadapt/vgg-small/latency"),
        ],
        data: None,
        layers: true,
    })
    .unwrap();
    assert!(
        html.contains("t &lt;&amp;&gt; check"),
        "the title is escaped"
    );
    for heading in [
        "Benchmarking metrics",
        "Weights and MACs are not energy",
        "Where the energy goes: alexnet on pim-128",
        "Dataflows at equal area: lenet5 on isca16",
        "Pruning (eap): lenet5-mnist on eyeriss",
        "NetAdapt: vgg-small-fashion-mnist",
    ] {
        assert!(
            html.contains(&format!(">{heading}")),
            "no section {heading:?}"
        );
    }
    // 2 models x 2 machines: 4 metric rows, each energy per inference spelled with its unit.
    assert_eq!(html.matches("MAC units</td>").count(), 2);
    assert_eq!(html.matches("J</td>").count(), 2);
    // Self-contained: no script, style, image or link fetched from anywhere.
    for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(attr), "the page fetches {attr}");
    }
    let err = joule_lab::page::report(&joule_lab::page::ReportOptions {
        title: String::new(),
        models: vec![],
        hw: vec!["eyeriss".into()],
        batch: 1,
        dataflows: None,
        dataflow_batch: 16,
        runs: vec![docs("energy.md")],
        data: None,
        layers: true,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("energy.md"), "{err}");
}

#[test]
fn eyexam_chart_stacks_each_layer_up_to_the_peak() {
    let mut options = EnergyOptions::new("mobilenet", "eyeriss");
    options.ifmap_density = Some(0.5);
    let exam = estimate::eyexam(&options).unwrap();
    let panel = estimate::eyexam_panel(&exam);
    assert_eq!(panel.categories.len(), exam.layers.len());
    // Achieved + every step's loss = the 168-PE peak, for every layer.
    assert_eq!(panel.series.len(), 8);
    for i in 0..panel.categories.len() {
        let stacked: f64 = panel.series.iter().map(|(_, v)| v[i]).sum();
        assert!(
            (stacked - 168.0).abs() < 1e-9,
            "{}: {stacked}",
            panel.categories[i]
        );
    }
    // Eyeriss v1 spends a cycle on every zero ifmap: half of every layer's rate is lost at
    // the sparsity step.
    let sparsity = &panel
        .series
        .iter()
        .find(|(n, _)| n == "lost: sparsity")
        .unwrap()
        .1;
    let achieved = &panel.series[0].1;
    for i in 0..achieved.len() {
        assert!((sparsity[i] - achieved[i]).abs() < 1e-9 * achieved[i].max(1.0));
    }
    check_svg(
        &estimate::eyexam_svg(&exam).unwrap(),
        &["conv14/dw", "lost: dataflow"],
    );
}
