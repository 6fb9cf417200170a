//! Reduced-precision estimates through the library layer: uniform and per-layer widths
//! reach every layer's MAC energy as the hand count says, and bad widths name the option.

use joule_lab::estimate::{self, EnergyOptions};
use joule_lab::{Model, Objective};

#[test]
fn weight_and_ifmap_widths_scale_the_mac_energy_of_every_layer() {
    let full = estimate::energy(&EnergyOptions::new("lenet5", "eyeriss")).unwrap();
    let mut options = EnergyOptions::new("lenet5", "eyeriss");
    options.weight_bits = Some(8);
    options.ifmap_bits = Some(8);
    let narrow = estimate::energy(&options).unwrap();
    for (a, b) in full.layers.iter().zip(&narrow.layers) {
        // Eyeriss: 0.939 of a MAC scales with 8 x 8 / 16 x 16, 0.061 with the 16-bit psum.
        let want = a.cost.energy.mac * (0.939 * 0.25 + 0.061);
        assert!(
            (b.cost.energy.mac - want).abs() <= 1e-9 * want,
            "{}: {} vs {want}",
            a.cost.name,
            b.cost.energy.mac
        );
        assert!(b.cost.energy.total < a.cost.energy.total, "{}", a.cost.name);
    }
    // Per-layer widths in code, applied after the uniform ones: fc3 back to 16-bit weights.
    let mut mixed = options.clone();
    mixed.layer_bits.insert(
        "fc3".into(),
        joule_energy::workload::Bitwidth {
            filter: Some(16),
            ..Default::default()
        },
    );
    let mixed = estimate::energy(&mixed).unwrap();
    let fc3 = |r: &joule_lab::NetworkCost| r.layer("fc3").unwrap().energy.mac;
    let want = fc3(&full) * (0.939 * 0.5 + 0.061);
    assert!((fc3(&mixed) - want).abs() <= 1e-9 * want);
    assert_eq!(
        mixed.layer("conv1").unwrap().energy.mac,
        narrow.layer("conv1").unwrap().energy.mac
    );
}

#[test]
fn bad_widths_name_the_option() {
    let model = Model::load("lenet5").unwrap();
    for (set, field) in [
        (
            (|o: &mut EnergyOptions| o.weight_bits = Some(0)) as fn(&mut EnergyOptions),
            "weight_bits",
        ),
        (
            |o: &mut EnergyOptions| o.ifmap_bits = Some(65),
            "ifmap_bits",
        ),
        (
            |o: &mut EnergyOptions| {
                o.layer_bits.insert(
                    "conv1".into(),
                    joule_energy::workload::Bitwidth {
                        ifmap: Some(0),
                        ..Default::default()
                    },
                );
            },
            "layer_bits",
        ),
    ] {
        let mut options = EnergyOptions::new("lenet5", "eyeriss");
        options.objective = Objective::Energy;
        set(&mut options);
        let err = estimate::energy_of(&model, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{err}");
    }
}
