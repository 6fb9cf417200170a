//! The simple, non-dataflow model (the `weight_fetch` spec model, preset `horowitz45`):
//! every MAC reads its weight from the buffer when the layer's weights fit in it, else from
//! DRAM; each ifmap value is read once and each ofmap value written once in DRAM; no RF or
//! array. This is the per-weight cost model that neuron elimination reasons with.

use crate::access::{Accesses, PerTensor};
use crate::cost::{LayerCost, LevelEnergy, TypeEnergy};
use crate::dataflow::Dataflow;
use crate::spec::Hardware;
use crate::workload::Workload;

/// Costs a layer with the weight-fetch model.
pub fn layer_cost(w: &Workload, hw: &Hardware) -> LayerCost {
    let word = hw.word_bits as f64;
    let bits = w.bits.resolve(hw.word_bits).map(f64::from);
    let e = &hw.energy;
    let macs = w.nest.macs() as f64;
    let weights = w.nest.weights() as f64;
    let in_buffer = weights * bits.filter / word <= hw.buffer_words as f64;
    // Zero weights are skipped (their MAC and their fetch).
    let weight_reads = macs * w.density.weight;
    let ifmap = w.nest.ifmap_elements() as f64;
    let ofmap = w.nest.ofmap_elements() as f64;
    let per_weight = if in_buffer { e.buffer } else { e.dram } * bits.filter / word;
    let mac = macs * w.density.weight * hw.mac_energy(bits);
    let filter_energy = weight_reads * per_weight
        + if in_buffer {
            weights * e.dram * bits.filter / word
        } else {
            0.0
        };
    let ifmap_energy = ifmap * e.dram * bits.ifmap / word;
    let psum_energy = ofmap * e.dram * bits.psum / word;
    let (buffer, dram) = if in_buffer {
        (
            weight_reads * per_weight,
            ifmap_energy + psum_energy + weights * e.dram * bits.filter / word,
        )
    } else {
        (0.0, ifmap_energy + psum_energy + weight_reads * per_weight)
    };
    let dram_filter = if in_buffer { weights } else { weight_reads };
    LayerCost {
        name: w.name.clone(),
        class: w.class,
        dataflow: Dataflow::Nlr,
        macs: w.nest.macs(),
        cycles: macs * hw.compute_scale(bits.ifmap),
        utilization: 1.0,
        energy: LevelEnergy {
            mac,
            rf: 0.0,
            array: 0.0,
            buffer,
            dram,
            total: mac + buffer + dram,
        },
        energy_by_type: TypeEnergy {
            ifmap: ifmap_energy,
            filter: filter_energy,
            psum: psum_energy,
            compute: mac,
        },
        accesses: Accesses {
            dram: PerTensor {
                ifmap,
                filter: dram_filter,
                psum: ofmap,
            },
            buffer: PerTensor {
                ifmap: 0.0,
                filter: if in_buffer { weight_reads } else { 0.0 },
                psum: 0.0,
            },
            ..Default::default()
        },
        reuse: PerTensor::default(),
        dram_bytes: (ifmap * bits.ifmap + dram_filter * bits.filter + ofmap * bits.psum) / 8.0,
        mapping: format!(
            "weight fetch: weights from {}",
            if in_buffer { "buffer" } else { "DRAM" }
        ),
    }
}
