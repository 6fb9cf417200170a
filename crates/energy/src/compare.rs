//! The ISCA'16 dataflow comparison at equal storage area.
//!
//! # Area model
//!
//! Every dataflow gets the same PE count and the same total on-chip storage area as the base
//! (RS) machine. The RF of each PE is sized to what the dataflow keeps there, and the rest of
//! the area becomes global buffer. RF sizes per PE, as in the ISCA'16 authors' analysis model
//! (`run_all_flows.m` of their dataflow-analysis code):
//!
//! | dataflow | RF per PE (words) |
//! |---|---|
//! | RS | the base machine's (isca16: 512 B) |
//! | WS | 1 (the stationary weight) |
//! | OS-A (SOC-MOP) | 1 psum + U (R + 1) ifmap FIFO, largest over the network's layers |
//! | OS-B (MOC-MOP) | 1 psum + U ifmap FIFO, largest over the layers |
//! | OS-C (MOC-SOP) | 1 (the psum) |
//! | NLR | 0 |
//!
//! Storage area per byte depends on the array size, from the same model's 65 nm table
//! ([`area_per_byte`]: 103.5 units/B for a 2-byte register, 20.9 for 512 B, 12.7 from 4 KB
//! up, linear in between). On `isca16` the total is `256 x 512 B x 20.87 + 128 KB x 12.70`,
//! so NLR gets a 338 KB buffer, WS a 334 KB one.

use crate::dataflow::{output_stationary, Dataflow};
use crate::network::{evaluate, NetworkCost};
use crate::search::Objective;
use crate::spec::{Hardware, RfCapacity};
use crate::workload::Workload;
use crate::EnergyError;

/// Area per byte of a storage array of `bytes` bytes (65 nm units of the ISCA'16 authors'
/// model; only ratios matter).
pub fn area_per_byte(bytes: f64) -> f64 {
    const TABLE: [(f64, f64); 12] = [
        (2.0, 103.47),
        (4.0, 172.07),
        (8.0, 177.07),
        (16.0, 169.89),
        (32.0, 96.06),
        (64.0, 59.15),
        (128.0, 39.94),
        (256.0, 27.48),
        (512.0, 20.87),
        (1024.0, 16.14),
        (2048.0, 13.89),
        (4096.0, 12.70),
    ];
    if bytes <= TABLE[0].0 {
        return TABLE[0].1;
    }
    for pair in TABLE.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if bytes < x1 {
            return y0 + (y1 - y0) * (bytes - x0) / (x1 - x0);
        }
    }
    TABLE[TABLE.len() - 1].1
}

/// Area of a storage array of `bytes` bytes.
pub fn storage_area_of(bytes: f64) -> f64 {
    if bytes <= 0.0 {
        0.0
    } else {
        bytes * area_per_byte(bytes)
    }
}

/// Bytes of buffer that `area` buys (buffers are large: the per-byte area of 4 KB and up).
fn buffer_bytes_for(area: f64) -> f64 {
    area / area_per_byte(4096.0)
}

/// Storage area of a machine: all RFs plus the buffer.
pub fn storage_area(hw: &Hardware) -> f64 {
    let bytes = hw.word_bytes();
    hw.array.pes() as f64 * storage_area_of(hw.rf.total_words() as f64 * bytes)
        + storage_area_of(hw.buffer_words as f64 * bytes)
}

/// RF words per PE that `dataflow` gets at equal area (`None`: the base machine's RF).
pub fn rf_words(dataflow: Dataflow, layers: &[Workload]) -> Option<u64> {
    let most = |df| {
        layers
            .iter()
            .map(|w| output_stationary::rf_words(w, df))
            .max()
            .unwrap_or(1)
    };
    match dataflow {
        Dataflow::Rs | Dataflow::Os => None,
        Dataflow::Ws | Dataflow::WsIsca16 | Dataflow::OsC => Some(1),
        Dataflow::OsA => Some(most(Dataflow::OsA)),
        Dataflow::OsB => Some(most(Dataflow::OsB)),
        Dataflow::Nlr => Some(0),
    }
}

/// The machine a dataflow gets at the storage area of `base` for these layers.
pub fn equal_area(base: &Hardware, dataflow: Dataflow, layers: &[Workload]) -> Hardware {
    let Some(words) = rf_words(dataflow, layers) else {
        return base.clone();
    };
    let mut hw = base.clone();
    let bytes = hw.word_bytes();
    let rf_area = hw.array.pes() as f64 * storage_area_of(words as f64 * bytes);
    hw.rf = RfCapacity::Shared(words);
    hw.buffer_words = (buffer_bytes_for(storage_area(base) - rf_area) / bytes) as u64;
    hw.name = format!("{} ({}, equal area)", base.name, dataflow);
    hw
}

/// Evaluates every dataflow of [`Dataflow::COMPARED`] at equal area, in that order.
pub fn compare(
    model: &str,
    layers: &[Workload],
    base: &Hardware,
    objective: Objective,
) -> Result<Vec<NetworkCost>, EnergyError> {
    Dataflow::COMPARED
        .iter()
        .map(|&df| evaluate(model, layers, &equal_area(base, df, layers), df, objective))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::preset;

    #[test]
    fn area_model_matches_the_authors_table() {
        // The authors' results file lists (buffer bytes, RF bytes per PE) at the area of
        // 256 PEs x 512 B + 128 KB: NLR 346,458 B with no RF, WS 342,287 B with 2 B.
        let base = preset("isca16").unwrap();
        let area = storage_area(&base);
        assert!((area - (256.0 * 512.0 * 20.87 + 131072.0 * 12.70)).abs() < 1e-6);
        let nlr = equal_area(&base, Dataflow::Nlr, &[]);
        assert_eq!(nlr.rf.total_words(), 0);
        assert!((nlr.buffer_words as f64 * 2.0 - 346_458.0).abs() < 8.0);
        let ws = equal_area(&base, Dataflow::Ws, &[]);
        assert_eq!(ws.rf, RfCapacity::Shared(1));
        assert!((ws.buffer_words as f64 * 2.0 - 342_287.0).abs() < 8.0);
        assert_eq!(equal_area(&base, Dataflow::Rs, &[]), base);
        // Interpolation: 3 B is halfway between the 2 B and 4 B points.
        assert!((area_per_byte(3.0) - (103.47 + 172.07) / 2.0).abs() < 1e-9);
    }
}
