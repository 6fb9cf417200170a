//! The PIM study of docs/pim.md: its numbers against hand counts and against an array count
//! made independently from the network's weight statistics, and its tables and chart render.

use joule_lab::pim_study::{self, PimStudy, ARRAY_SIZES, FILTER_SIZES};
use joule_model::LayerClass;

/// Cells per 16-bit weight on 2-bit cells (the presets).
const SLICES: u64 = 8;

#[test]
fn one_layer_utilization_is_the_hand_count() {
    // 3x3 CONV, C = M = 128: K = 128*9 = 1152 rows, 128 filters x 8 slices = 1024 columns.
    // 128x128 arrays: 9 x 8 tiles, every cell used.
    let u = pim_study::layer_utilization(3, 128).unwrap();
    assert_eq!(u.cells_used, 1152 * 1024);
    assert_eq!(u.cells_allocated, 9 * 8 * 128 * 128);
    assert_eq!(u.utilization, 1.0);
    // 1024x1024: 2 x 1 arrays, 1152 of 2048 rows used: 56.25%.
    let u = pim_study::layer_utilization(3, 1024).unwrap();
    assert_eq!(u.cells_allocated, 2 * 1024 * 1024);
    assert_eq!(u.utilization, 0.5625);
    // 1x1 on 2048x2048: 128 rows x 1024 columns of one array: 1/32.
    assert_eq!(
        pim_study::layer_utilization(1, 2048).unwrap().utilization,
        1.0 / 32.0
    );
    // 7x7 on 2048x2048: 6272 rows on 4 arrays of 2048 rows, half the columns.
    let u = pim_study::layer_utilization(7, 2048).unwrap();
    assert_eq!(u.utilization, 6272.0 / (4.0 * 2048.0) * 0.5);
}

/// Arrays for one copy of a network's weights, from its weight statistics alone:
/// per CONV/FC layer `K = weights / M` rows and `M * 8` columns, tiled.
fn arrays_from_stats(model: &str, size: u64) -> u64 {
    let stats = joule_lab::stats(model, None).unwrap();
    stats
        .layers
        .iter()
        .filter(|l| l.class != LayerClass::Other)
        .map(|l| {
            let m = l.output_shape[1] as u64;
            let rows = l.weights / m;
            assert_eq!(rows * m, l.weights, "{}", l.name);
            rows.div_ceil(size) * (m * SLICES).div_ceil(size)
        })
        .sum()
}

fn study() -> PimStudy {
    pim_study::study().unwrap()
}

#[test]
fn the_study_agrees_with_independent_counts() {
    let s = study();
    assert_eq!(
        s.layer_utilization.len(),
        ARRAY_SIZES.len() * FILTER_SIZES.len()
    );
    let at = |size: u64, f: usize| {
        s.layer_utilization
            .iter()
            .find(|u| u.array_size == size && u.filter_size == f)
            .unwrap()
            .utilization
    };
    assert_eq!(at(1024, 3), 0.5625);
    assert_eq!(at(128, 1), 1.0);
    assert_eq!(at(256, 1), 0.5, "128 rows of 256");

    assert_eq!(s.networks.len(), ARRAY_SIZES.len() * 2);
    for n in &s.networks {
        assert_eq!(
            n.arrays,
            arrays_from_stats(&n.model, n.array_size),
            "{} on {}",
            n.model,
            n.array_size
        );
        assert!(n.adc_pj < n.energy_pj && n.utilization <= 1.0);
    }
    // ResNet-152 does not fit one ISAAC chip: 16,128 arrays < what it needs.
    let chip: Vec<_> = s
        .movement
        .iter()
        .filter(|m| m.array_count.is_some())
        .collect();
    assert_eq!(chip.len(), 2);
    assert!(arrays_from_stats("resnet152", 128) > pim_study::ISAAC_CHIP_ARRAYS);
    for m in &s.movement {
        // Resident weights are not in the per-inference total; rewritten ones are.
        let parts = m.activations_pj + m.array_pj;
        let expected = if m.resident {
            parts
        } else {
            parts + m.weights_pj
        };
        assert!((m.total_pj - expected).abs() <= 1e-9 * expected, "{m:?}");
        assert_eq!(m.resident, m.array_count.is_none(), "{m:?}");
    }
    let back: PimStudy = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn the_tables_and_the_chart_render() {
    let s = study();
    let t = pim_study::utilization_table(&s);
    assert_eq!(t.header(), ["array", "1x1", "3x3", "5x5", "7x7"]);
    assert_eq!(t.rows().len(), ARRAY_SIZES.len());
    assert_eq!(
        t.rows()[3],
        ["1024x1024", "12.5%", "56.2%", "78.1%", "87.5%"]
    );

    let t = pim_study::networks_table(&s);
    assert_eq!(t.rows().len(), 12);
    assert_eq!(t.rows()[0][..2], ["128x128", "resnet152"]);
    assert_eq!(
        t.rows()[0][2],
        arrays_from_stats("resnet152", 128).to_string()
    );

    let t = pim_study::movement_table(&s);
    assert_eq!(t.rows().len(), 6);
    assert_eq!(t.rows()[5][6], "no (every inference)");

    let md = pim_study::markdown(&s);
    for heading in [
        "## 1. Utilization",
        "## 2. Whole networks",
        "## 4. Activation vs weight",
    ] {
        assert!(md.contains(heading), "{heading}");
    }
    assert!(
        md.contains("| 1024x1024 |  12.5% |  56.2% |  78.1% |  87.5% |"),
        "{md}"
    );

    let svg = pim_study::utilization_svg(&s).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for size in ARRAY_SIZES {
        assert!(svg.contains(&format!("{size}x{size} arrays")), "{size}");
    }
}
