//! The mixed-precision search's energy (per layer, cached by widths) agrees with the
//! library's whole-network estimate at the same widths, and lowering one width lowers it.

use joule_compress::quantize::mixed::{PlanEnergy, SearchConfig, Widths};
use joule_compress::quantize::{energy_widths, plan};
use joule_lab::estimate::{self, EnergyOptions};
use joule_lab::{hardware, Model};

#[test]
fn per_layer_cached_energy_equals_the_whole_network_estimate() {
    let model = Model::load("lenet5").unwrap();
    let network = model.network(1).unwrap();
    let machine = hardware::machine("eyeriss").unwrap();
    let mut energy = PlanEnergy::new(network.graph(), machine.clone()).unwrap();
    let config = SearchConfig::new(0.5);
    let widths = |conv2: (u32, u32)| {
        [("conv2", conv2), ("fc1", (4, 6)), ("fc2", (8, 8))]
            .into_iter()
            .map(|(l, (w, a))| {
                (
                    l.to_string(),
                    Widths {
                        weight: w,
                        activation: a,
                    },
                )
            })
            .collect()
    };
    let mut values = Vec::new();
    // Twice over the same widths: the second pass reads the cache.
    for conv2 in [(8, 8), (6, 8), (6, 5), (2, 2), (8, 8), (2, 2)] {
        let p = plan(network.graph(), &config.quant_config(&widths(conv2))).unwrap();
        let ours = energy.energy(&p).unwrap();
        let mut options = EnergyOptions::new("lenet5", "eyeriss");
        options.layer_bits = energy_widths(&p);
        let whole = estimate::energy_on(&model, &machine, &options)
            .unwrap()
            .total
            .energy
            .total;
        assert!(
            (ours - whole).abs() <= 1e-9 * whole,
            "{conv2:?}: {ours} vs {whole}"
        );
        values.push(ours);
    }
    assert!(values[0] > values[1] && values[1] > values[2] && values[2] > values[3]);
    assert_eq!((values[4], values[5]), (values[0], values[3]));
}
