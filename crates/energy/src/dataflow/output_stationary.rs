//! Output stationary (OS) in the three variants ISCA'16 compares (Sec. IV-B).
//!
//! In every variant a PE keeps one psum in its RF until it is complete: all C x R x S MACs
//! of the output value run in that PE (so a pass covers every input channel, and psums
//! cross the buffer exactly once, as the ofmap). The RF holds that psum and, for the
//! variants that shift ifmaps between neighbours, a small ifmap FIFO; the authors' model
//! sizes the RF at equal area accordingly (see [`crate::compare`]). The RF is accessed only
//! for the psum: a read and a write per MAC. Weights and ifmaps reach the PEs over the array
//! (one delivery per MAC) and are used as they arrive.
//!
//! * **SOC-MOP** (`os-a`, ShiDianNao-like): a 2-D tile of `e x f` output pixels of *one*
//!   filter, for `n` images (`n e f <= PEs`); one weight is broadcast per cycle; ifmaps of the
//!   tile's window are read from the buffer once per pass and shifted between PEs. RF: the
//!   psum plus `U (R + 1)` ifmap words.
//! * **MOC-MOP** (`os-b`): `f` pixels of one output row for `p` filters and `n` images
//!   (`n p f <= PEs`); each ifmap row segment is read from the buffer once per filter row
//!   (no vertical convolutional reuse) and shared by the `p` filters. RF: the psum plus `U`
//!   ifmap words.
//! * **MOC-SOP** (`os-c`): one output pixel of `p <= PEs` filters; each MAC's ifmap is read
//!   from the buffer and broadcast to the `p` PEs, and every PE reads its own weight from
//!   the buffer for every MAC. RF: the psum.

use super::{ceil_div, count_choices, dims, replica_choices, Dataflow, Dim, PassUnit};
use crate::access::PerTensor;
use crate::spec::Hardware;
use crate::workload::Workload;

/// RF words (ifmap FIFO + psum) one PE needs under an OS variant for this layer.
pub fn rf_words(w: &Workload, dataflow: Dataflow) -> u64 {
    let d = dims(w);
    match dataflow {
        Dataflow::OsA => 1 + d.stride_h * (d.eff_r + 1),
        Dataflow::OsB => 1 + d.stride_h,
        _ => 1,
    }
}

/// SOC-MOP passes: one filter, an `e x f` pixel tile, `n` images.
pub fn soc_mop(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    let d = dims(w);
    let tile_p = hw.array.rows.min(d.p);
    let tile_q = hw.array.cols.min(d.q);
    let tiles = ceil_div(d.p, tile_p) * ceil_div(d.q, tile_q);
    let avg_p = d.p as f64 / ceil_div(d.p, tile_p) as f64;
    let avg_q = d.q as f64 / ceil_div(d.q, tile_q) as f64;
    let taps = (d.r * d.s) as f64;
    let c = d.c as f64;
    let window = |tp: f64, tq: f64| {
        ((tp - 1.0) * d.stride_h as f64 + d.eff_r as f64)
            * ((tq - 1.0) * w.nest.stride_w as f64 + w.nest.effective_s() as f64)
    };
    let room = hw.array.pes() / (tile_p * tile_q);
    replica_choices(room, d.n)
        .into_iter()
        .map(|n| {
            let loops = [1, d.m, ceil_div(d.n, n) * tiles];
            let n_avg = d.n as f64 / ceil_div(d.n, n) as f64;
            let pixels = n_avg * avg_p * avg_q;
            let macs = pixels * c * taps;
            let ifmap_words = n_avg * c * window(avg_p, avg_q);
            PassUnit {
                dataflow: Dataflow::OsA,
                loops,
                dram_words: PerTensor {
                    ifmap: ifmap_words,
                    filter: c * taps,
                    psum: pixels,
                },
                buffer_reads: PerTensor {
                    ifmap: ifmap_words,
                    filter: c * taps,
                    psum: pixels,
                },
                // Ifmaps shift between PEs, weights are broadcast; a finished psum leaves its
                // PE straight for the buffer (no inter-PE hop).
                array_reads: PerTensor {
                    ifmap: macs,
                    filter: macs,
                    psum: 0.0,
                },
                buffer_footprint: PerTensor {
                    ifmap: n as f64 * c * window(tile_p as f64, tile_q as f64),
                    filter: c * taps,
                    psum: (n * tile_p * tile_q) as f64,
                },
                rf_footprint: PerTensor {
                    ifmap: (rf_words(w, Dataflow::OsA) - 1) as f64,
                    filter: 0.0,
                    psum: 1.0,
                },
                rf_per_mac: PerTensor {
                    ifmap: 0.0,
                    filter: 0.0,
                    psum: 2.0,
                },
                rf_blockable: [false; 3],
                kept: PerTensor {
                    ifmap: false,
                    filter: false,
                    psum: true,
                },
                dram_streamed: PerTensor::splat(false),
                cycles: c * taps,
                spatial: format!(
                    "SOC-MOP: {tile_p}x{tile_q} ofmap tile of one filter x {n} images, \
                     {tiles} tiles"
                ),
            }
        })
        .collect()
}

/// MOC-MOP passes: `f` pixels of one output row, `p` filters, `n` images.
pub fn moc_mop(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    let d = dims(w);
    let pes = hw.array.pes();
    let f = d.q.min(hw.array.cols);
    let segments = ceil_div(d.q, f);
    let f_avg = d.q as f64 / segments as f64;
    let taps = (d.r * d.s) as f64;
    let c = d.c as f64;
    let eff_s = w.nest.effective_s() as u64;
    let width = |f: f64| (f - 1.0) * w.nest.stride_w as f64 + eff_s as f64;
    let mut out = Vec::new();
    let choices = count_choices((pes / f).min(d.m), d.m)
        .into_iter()
        .flat_map(|p| {
            count_choices((pes / (f * p)).clamp(1, d.n), d.n)
                .into_iter()
                .map(move |n| (p, n))
        });
    for (p, n) in choices {
        let loops = [1, ceil_div(d.m, p), ceil_div(d.n, n) * d.p * segments];
        let p_avg = d.m as f64 / loops[Dim::M as usize] as f64;
        let n_avg = d.n as f64 / ceil_div(d.n, n) as f64;
        let pixels = n_avg * f_avg;
        let macs = pixels * p_avg * c * taps;
        // Each of the R filter rows reads its ifmap row segment from the buffer.
        let ifmap_reads = n_avg * c * d.r as f64 * width(f_avg);
        let ifmap_words = n_avg * c * d.eff_r as f64 * width(f_avg);
        out.push(PassUnit {
            dataflow: Dataflow::OsB,
            loops,
            dram_words: PerTensor {
                ifmap: ifmap_words,
                filter: p_avg * c * taps,
                psum: p_avg * pixels,
            },
            buffer_reads: PerTensor {
                ifmap: ifmap_reads,
                filter: p_avg * c * taps,
                psum: p_avg * pixels,
            },
            // Ifmaps and weights are multicast; finished psums go straight to the buffer.
            array_reads: PerTensor {
                ifmap: macs,
                filter: macs,
                psum: 0.0,
            },
            buffer_footprint: PerTensor {
                ifmap: n as f64 * c * d.eff_r as f64 * width(f as f64),
                filter: p as f64 * c * taps,
                psum: (n * p * f) as f64,
            },
            rf_footprint: PerTensor {
                ifmap: (rf_words(w, Dataflow::OsB) - 1) as f64,
                filter: 0.0,
                psum: 1.0,
            },
            rf_per_mac: PerTensor {
                ifmap: 0.0,
                filter: 0.0,
                psum: 2.0,
            },
            rf_blockable: [false; 3],
            kept: PerTensor {
                ifmap: false,
                filter: false,
                psum: true,
            },
            dram_streamed: PerTensor::splat(false),
            cycles: c * taps,
            spatial: format!("MOC-MOP: {f} pixels of a row x {p} filters x {n} images"),
        });
    }
    out
}

/// MOC-SOP passes: one output pixel of `p` filters.
pub fn moc_sop(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    let d = dims(w);
    let taps = (d.r * d.s) as f64;
    let c = d.c as f64;
    count_choices(hw.array.pes().min(d.m), d.m)
        .into_iter()
        .map(|p| {
            let loops = [1, ceil_div(d.m, p), d.n * d.p * d.q];
            let p_avg = d.m as f64 / loops[Dim::M as usize] as f64;
            let macs = p_avg * c * taps;
            PassUnit {
                dataflow: Dataflow::OsC,
                loops,
                // The pixel's C x R x S window, read once and broadcast to the p PEs; every
                // PE reads its own weight from the buffer for every MAC.
                dram_words: PerTensor {
                    ifmap: c * taps,
                    filter: p_avg * c * taps,
                    psum: p_avg,
                },
                buffer_reads: PerTensor {
                    ifmap: c * taps,
                    filter: macs,
                    psum: p_avg,
                },
                // The window is broadcast to the p PEs; weights and psums are point to point.
                array_reads: PerTensor {
                    ifmap: macs,
                    filter: 0.0,
                    psum: 0.0,
                },
                buffer_footprint: PerTensor {
                    ifmap: c * taps,
                    filter: p as f64 * c * taps,
                    psum: p as f64,
                },
                rf_footprint: PerTensor {
                    ifmap: 0.0,
                    filter: 0.0,
                    psum: 1.0,
                },
                rf_per_mac: PerTensor {
                    ifmap: 0.0,
                    filter: 0.0,
                    psum: 2.0,
                },
                rf_blockable: [false; 3],
                kept: PerTensor {
                    ifmap: false,
                    filter: false,
                    psum: true,
                },
                dram_streamed: PerTensor::splat(false),
                cycles: c * taps,
                spatial: format!("MOC-SOP: one pixel x {p} filters"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::{LayerClass, LoopNest};

    fn tiny() -> (Workload, Hardware) {
        let hw = crate::spec::parse(
            "name: t\narray: {rows: 2, cols: 2}\nrf: {words: 8}\nbuffer: {words: 4096}\n\
             word_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n",
            "t.yaml",
        )
        .unwrap();
        // N=1, M=2, C=1, 2x2 filters over a 3x3 ifmap: P=Q=2, 16 MACs per filter.
        let nest = LoopNest {
            n: 1,
            m: 2,
            c: 1,
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
        (Workload::new("t", LayerClass::Conv, nest), hw)
    }

    #[test]
    fn soc_mop_counts_by_hand() {
        let (w, hw) = tiny();
        let unit = &soc_mop(&w, &hw)[0];
        // The 2x2 tile fills the 2x2 array: one pass per filter.
        assert_eq!(unit.loops, [1, 2, 1]);
        // Per pass: the 3x3 window once, 4 weights once, 4 psums out once.
        assert_eq!(unit.buffer_reads, [9.0, 4.0, 4.0]);
        // 16 MACs, each fed an ifmap and a broadcast weight over the array; psums leave
        // their PEs straight for the buffer.
        assert_eq!(unit.array_reads, [16.0, 16.0, 0.0]);
        assert_eq!(unit.cycles, 4.0);
        // RF: psum + U (R + 1) = 1 + 1 x 3 words.
        assert_eq!(rf_words(&w, Dataflow::OsA), 4);
    }

    #[test]
    fn moc_mop_and_moc_sop_counts_by_hand() {
        let (w, hw) = tiny();
        // MOC-MOP: f = 2 pixels of a row, p = 2 filters on the 4 PEs, one row per pass.
        let b = moc_mop(&w, &hw)
            .into_iter()
            .find(|u| u.spatial.contains("x 2 filters"))
            .unwrap();
        assert_eq!(b.loops, [1, 1, 2]);
        // Each of the 2 filter rows reads a 3-wide ifmap segment: 6 reads, 2 rows x 3 distinct.
        assert_eq!(b.buffer_reads.ifmap, 6.0);
        assert_eq!(b.dram_words.ifmap, 6.0);
        // 2 filters x 4 weights; 2 pixels x 2 filters = 16 MACs, 4 psums.
        assert_eq!(b.buffer_reads.filter, 8.0);
        assert_eq!(b.array_reads, [16.0, 16.0, 0.0]);
        // MOC-SOP: one pixel of both filters per pass, 4 pixels.
        let c = moc_sop(&w, &hw).pop().unwrap();
        assert_eq!(c.loops, [1, 1, 4]);
        // The pixel's 2x2 window is read once; each PE reads its 4 weights: 8 weight reads.
        assert_eq!(c.buffer_reads, [4.0, 8.0, 2.0]);
        // The window is broadcast to both PEs (8 deliveries); weights are point to point.
        assert_eq!(c.array_reads, [8.0, 0.0, 0.0]);
        assert_eq!(c.cycles, 4.0);
        assert_eq!(rf_words(&w, Dataflow::OsC), 1);
    }
}
