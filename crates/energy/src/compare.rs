//! The ISCA'16 dataflow comparison at equal storage area.
//!
//! # Area model
//!
//! On-chip storage area is counted in buffer-byte equivalents: a global-buffer (SRAM) byte is
//! 1, a register-file byte is [`RF_BYTE_AREA`] = 2 (an RF bit cell with its ports is about
//! twice an SRAM cell). The PE count and MAC units are the same for every dataflow. RS, WS and
//! OS keep the base machine's RF and buffer; NLR has no RF, and the area of all the RFs goes
//! to its buffer: on `isca16`, `128 KB + 256 x 512 B x 2 = 384 KB`.

use crate::dataflow::Dataflow;
use crate::network::{evaluate, NetworkCost};
use crate::search::Objective;
use crate::spec::{Hardware, RfCapacity};
use crate::workload::Workload;
use crate::EnergyError;

/// Area of one RF byte in buffer bytes.
pub const RF_BYTE_AREA: f64 = 2.0;

/// Storage area of a machine in buffer-byte equivalents.
pub fn storage_area(hw: &Hardware) -> f64 {
    let bytes = hw.word_bytes();
    hw.buffer_words as f64 * bytes
        + hw.array.pes() as f64 * hw.rf.total_words() as f64 * bytes * RF_BYTE_AREA
}

/// The machine a dataflow gets at the storage area of `base`.
pub fn equal_area(base: &Hardware, dataflow: Dataflow) -> Hardware {
    let mut hw = base.clone();
    if !dataflow.uses_rf() {
        let area = storage_area(base);
        hw.rf = RfCapacity::Shared(0);
        hw.buffer_words = (area / hw.word_bytes()) as u64;
        hw.name = format!("{} (NLR, equal area)", base.name);
    }
    hw
}

/// Evaluates every dataflow at equal area; results in [`Dataflow::ALL`] order.
pub fn compare(
    model: &str,
    layers: &[Workload],
    base: &Hardware,
    objective: Objective,
) -> Result<Vec<NetworkCost>, EnergyError> {
    Dataflow::ALL
        .iter()
        .map(|&df| evaluate(model, layers, &equal_area(base, df), df, objective))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::preset;

    #[test]
    fn nlr_trades_its_rf_for_buffer() {
        let base = preset("isca16").unwrap();
        let nlr = equal_area(&base, Dataflow::Nlr);
        assert_eq!(nlr.rf.total_words(), 0);
        assert_eq!(nlr.buffer_words as f64 * 2.0, 384.0 * 1024.0);
        assert_eq!(storage_area(&nlr), storage_area(&base));
        assert_eq!(equal_area(&base, Dataflow::Ws), base);
    }
}
