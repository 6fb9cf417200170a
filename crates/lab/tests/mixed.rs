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

/// The pipeline's energy: measured densities at quantized widths cost less than at the
/// machine's word width, and no widths is `measure_layers` itself.
#[test]
fn measured_energy_at_narrower_widths_is_lower() {
    use joule_compress::metrics::{calibration_batch, measure_layers, measure_layers_at};
    let network = Model::load("lenet5").unwrap().network(1).unwrap();
    let machine = hardware::machine("eyeriss").unwrap();
    // 16 images of a fixed pattern in [0, 1) (the engine's input range).
    let pixels: Vec<f32> = (0..16 * 28 * 28)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let data = joule_nn::Dataset {
        sample: joule_lab::Shape::new(1, 1, 28, 28),
        images: pixels,
        labels: vec![0; 16],
        classes: 10,
    };
    let images = calibration_batch(&data, 16, 1).unwrap();
    let total =
        |l: Vec<joule_compress::metrics::LayerMetrics>| -> f64 { l.iter().map(|l| l.energy).sum() };
    let full = total(measure_layers(&network, &images, &machine).unwrap());
    let same = total(measure_layers_at(&network, &images, &machine, &Default::default()).unwrap());
    assert_eq!(full, same);
    let config = SearchConfig::new(0.5);
    let p = plan(network.graph(), &config.uniform_config(4, 4)).unwrap();
    let narrow = total(measure_layers_at(&network, &images, &machine, &energy_widths(&p)).unwrap());
    assert!(narrow < full, "{narrow} vs {full}");
}
