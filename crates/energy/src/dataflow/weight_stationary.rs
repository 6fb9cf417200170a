//! Weight stationary (WS) as ISCA'16 compares it.
//!
//! The definition follows the ISCA'16 paper (Sec. IV-A: "each weight stays in the RF of a PE
//! while it runs through all the MACs that use it") and its authors' analysis model, whose
//! equal-area comparison gives WS an RF of **one word per PE** and the rest of the storage
//! area as global buffer:
//!
//! * a PE holds one filter weight; a pass puts the R x S taps of `r` channels x `t` filters
//!   on the array (`r t R S <= PEs`) and streams a strip of ofmap rows of one image past
//!   them, one output pixel per cycle;
//! * with one RF word there is nowhere to keep an ifmap row until a later filter row needs
//!   it, so every output row reads its R input rows from the buffer (rows shared by
//!   several output rows are read again, as in OS-B); a row streams along the S PEs of a
//!   filter row and is multicast to the `t` filters;
//! * psums are accumulated spatially across the `r R S` PEs of a filter and return to the
//!   buffer once per pass, so a psum crosses the buffer once per block of `r` channels;
//! * the RF is read once per MAC (the stationary weight), nothing else lives there;
//! * the weights stay while the pass loop over images and strips (N) runs at the RF level.
//!
//! A filter with more taps than the array has PEs is split into segments of whole filter
//! rows, run one after another like more channels; a filter row wider than the array does
//! not map (no WS pass).

use super::{ceil_div, count_choices, dims, strip_counts, Dataflow, Dim, PassUnit};
use crate::access::PerTensor;
use crate::spec::Hardware;
use crate::workload::Workload;

/// The WS passes of a layer (one group).
pub fn passes(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    ws_passes(w, hw, false)
}

/// WS as the ISCA'16 analysis evaluates it (the authors' public model, `ws_flow.m`): the
/// same spatial passes, but the global buffer holds only psums and a line buffer of ifmap
/// rows, so
///
/// * ifmaps come from DRAM in every pass, i.e. once per block of `t` filters (the line
///   buffer feeds the R filter rows; the authors charge it no buffer energy, nor does this);
/// * an output row's psums return to the buffer after every filter row (the rows of the
///   ifmap reach the array one at a time), `R` round trips per pass;
/// * psums hop across the `r S` PEs of a filter row between those trips.
///
/// joule's own [`passes`] may keep ifmaps in the buffer across filter blocks and re-reads
/// ifmap rows instead of sending psums back, which is legal and cheaper; the comparison
/// shows both.
pub fn isca16_template(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    ws_passes(w, hw, true)
}

fn ws_passes(w: &Workload, hw: &Hardware, template: bool) -> Vec<PassUnit> {
    let d = dims(w);
    let pes = hw.array.pes();
    if d.s > pes {
        return Vec::new();
    }
    // Filters with more taps than PEs are split into segments of whole filter rows, run one
    // after another like more channels (psums go back to the buffer between segments).
    let row_folds = ceil_div(d.r * d.s, pes);
    let seg_rows = ceil_div(d.r, row_folds);
    let row_folds = ceil_div(d.r, seg_rows);
    let taps = seg_rows * d.s;
    let pairs = pes / taps;
    let seg_eff_r = ceil_div(d.eff_r, row_folds);
    let mut out = Vec::new();
    for t in count_choices(pairs.min(d.m), d.m) {
        let r = (pairs / t).min(d.c);
        for strips in strip_counts(d.p) {
            let loops = [ceil_div(d.c, r) * row_folds, ceil_div(d.m, t), d.n * strips];
            let r_avg = (d.c * row_folds) as f64 / loops[Dim::C as usize] as f64;
            let t_avg = d.m as f64 / loops[Dim::M as usize] as f64;
            let rows = d.p as f64 / strips as f64;
            let rows_buf = ceil_div(d.p, strips);
            let in_rows = (rows - 1.0) * d.stride_h as f64 + seg_eff_r as f64;
            let in_rows_buf = (rows_buf - 1) * d.stride_h + seg_eff_r;
            let pixels = rows * d.q as f64;
            let taps_avg = (d.r * d.s) as f64 / row_folds as f64;
            let macs = r_avg * t_avg * taps_avg * pixels;
            let ifmap_words = r_avg * in_rows * d.in_cols as f64;
            let ifmap_reads = r_avg * rows * seg_rows as f64 * d.in_cols as f64;
            let filter_words = r_avg * t_avg * taps_avg;
            let psum_words = t_avg * pixels;
            // ISCA'16 template: no ifmap buffer reads (DRAM -> line buffer -> array), one
            // psum round trip per filter row; joule's WS: R rows read per output row,
            // psums accumulated across the whole filter.
            let (ifmap_buffer, psum_trips) = if template {
                (0.0, seg_rows as f64)
            } else {
                (ifmap_reads, 1.0)
            };
            let ifmap_footprint = if template {
                r * (seg_eff_r.saturating_sub(1)).max(1) * d.in_cols
            } else {
                r * in_rows_buf * d.in_cols
            };
            out.push(PassUnit {
                dataflow: if template {
                    Dataflow::WsIsca16
                } else {
                    Dataflow::Ws
                },
                loops,
                dram_words: PerTensor {
                    ifmap: ifmap_words,
                    filter: filter_words,
                    psum: psum_words,
                },
                buffer_reads: PerTensor {
                    ifmap: ifmap_buffer,
                    filter: filter_words,
                    psum: psum_words * psum_trips,
                },
                // Every MAC gets its ifmap over the array; a psum hops across the PEs that
                // accumulate it between buffer trips; a weight goes straight into its PE.
                array_reads: PerTensor {
                    ifmap: macs,
                    filter: 0.0,
                    psum: macs - psum_words * psum_trips,
                },
                buffer_footprint: PerTensor {
                    ifmap: ifmap_footprint as f64,
                    filter: (r * t * taps) as f64,
                    psum: (t * rows_buf * d.q) as f64,
                },
                rf_footprint: PerTensor {
                    ifmap: 0.0,
                    filter: 1.0,
                    psum: 0.0,
                },
                rf_per_mac: PerTensor {
                    ifmap: 0.0,
                    filter: 1.0,
                    psum: 0.0,
                },
                rf_blockable: [false, false, true],
                kept: PerTensor {
                    ifmap: false,
                    filter: true,
                    psum: false,
                },
                dram_streamed: PerTensor {
                    ifmap: template,
                    filter: false,
                    psum: false,
                },
                cycles: pixels,
                spatial: format!(
                    "{r} channels x {t} filters x {seg_rows}x{} taps{}, one weight per PE, \
                     {strips} row strips",
                    d.s,
                    if row_folds > 1 {
                        format!(" (filter rows in {row_folds} segments)")
                    } else {
                        String::new()
                    }
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::{LayerClass, LoopNest};

    #[test]
    fn one_weight_per_pe_counts_by_hand() {
        // 4x4 array, 2x2 filters: 4 (channel, filter) pairs of 4 taps; C=2, M=2 fit in one
        // pass (r=2, t=2). A 3x3 ifmap, P=Q=2, N=1.
        let hw = crate::spec::parse(
            "name: t\narray: {rows: 4, cols: 4}\nrf: {words: 1}\nbuffer: {words: 4096}\n\
             word_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n",
            "t.yaml",
        )
        .unwrap();
        let nest = LoopNest {
            n: 1,
            m: 2,
            c: 2,
            p: 2,
            q: 2,
            r: 2,
            s: 2,
            h: 3,
            w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        };
        let w = Workload::new("t", LayerClass::Conv, nest);
        let units = passes(&w, &hw);
        let unit = units
            .iter()
            .find(|u| u.loops == [1, 1, 1])
            .expect("2 channels x 2 filters in one pass");
        // 2 channels x 3x3 ifmap; 2 x 2 x 4 weights, 2 x 2x2 psums.
        assert_eq!(unit.dram_words, [18.0, 16.0, 8.0]);
        // Each of the 2 output rows reads its 2 input rows (3 wide) of both channels: 24.
        assert_eq!(unit.buffer_reads, [24.0, 16.0, 8.0]);
        // 64 MACs, each fed an ifmap over the array; each of the 8 psums crosses the 8 PEs
        // of its filter (7 hops); weights go straight into their PEs.
        assert_eq!(unit.array_reads, [64.0, 0.0, 56.0]);
        assert_eq!(unit.rf_per_mac, [0.0, 1.0, 0.0]);
        // One output pixel per cycle.
        assert_eq!(unit.cycles, 4.0);
        // The ISCA'16 template: the same pass, ifmaps from DRAM in every pass and never read
        // from the buffer; each of the 8 psums makes one buffer trip per filter row (2),
        // hopping across the 2 channels x 2 taps of a row in between (64 - 16 hops).
        let template = isca16_template(&w, &hw);
        let tu = template
            .iter()
            .find(|u| u.loops == [1, 1, 1])
            .expect("the same pass");
        assert_eq!(tu.dram_words, unit.dram_words);
        assert_eq!(tu.dram_streamed, [true, false, false]);
        assert_eq!(tu.buffer_reads, [0.0, 16.0, 16.0]);
        assert_eq!(tu.array_reads, [64.0, 0.0, 48.0]);
        // Streamed from DRAM: with the filters in two passes (M loop 2) the ifmap is read
        // from DRAM twice, whatever the blocking.
        let mut two = w.clone();
        two.nest.m = 4;
        let tu = isca16_template(&two, &hw)
            .into_iter()
            .find(|u| u.loops == [1, 2, 1])
            .expect("two filter blocks");
        let blocking = crate::mapping::Blocking {
            factors: [[1, 1, 1], [1, 2, 1], [1, 1, 1]],
            order: [[
                crate::dataflow::Dim::C,
                crate::dataflow::Dim::M,
                crate::dataflow::Dim::N,
            ]; 2],
        };
        assert_eq!(blocking.accesses(&tu, 128.0).dram.ifmap, 2.0 * 18.0);
        // A 5x5 filter has more taps (25) than the array has PEs (16): two segments of 3
        // and 2 rows (15 and 10 taps); the C loop counts both, 25 weights per pair in all.
        let mut big = w.clone();
        big.nest.r = 5;
        big.nest.s = 5;
        big.nest.h = 6;
        big.nest.w = 6;
        big.nest.c = 1;
        big.nest.m = 1;
        let seg = &passes(&big, &hw)[0];
        assert_eq!(seg.loops[Dim::C as usize], 2);
        assert_eq!(seg.dram_words.filter * 2.0, 25.0);
        // A filter row wider than the array: no WS pass.
        big.nest.s = 17;
        big.nest.w = 18;
        assert!(passes(&big, &hw).is_empty());
    }
}
