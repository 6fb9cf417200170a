//! Dataflows as constraints on the spatial (array-level) part of a mapping.
//!
//! Every mapping splits the 7-D loop nest (N, M, C, P, Q, R, S) in two:
//!
//! * the **spatial pass** ([`PassUnit`]): what one pass of the PE array computes. The dataflow
//!   decides which of R, S, P, Q, C, M are spread across PEs, which data stay in each PE's RF,
//!   and so how many words one pass reads from the buffer, moves over the array, and keeps in
//!   the RF and buffer. The loops it leaves over are counted in passes along C, M and N.
//! * the **temporal blocking** ([`crate::mapping::Blocking`]): those C, M, N pass loops, each
//!   split across three levels (DRAM, buffer, RF) and ordered; it is the same for every
//!   dataflow and decides how often each datum is re-fetched.
//!
//! The four dataflows of ISCA'16:
//!
//! * **RS** (row stationary): a logical PE set of R x P PEs (filter rows x ofmap rows); each PE
//!   runs a 1-D convolution of one filter row (S weights in the RF) over a sliding ifmap window
//!   (S words) into one psum row. The set is folded when R or P exceed the array and replicated
//!   when it is smaller; spare replication processes more channels (C) or filters (M) at once.
//!   RF-level blocking gives the Eyeriss "filters per PE" and "channels per PE".
//! * **WS** (weight stationary, as ISCA'16 and its authors' model define it): each PE keeps
//!   *one* weight in its RF for as long as it is used (all pixels, all images of the pass);
//!   a pass holds the R x S weights of `r` channels x `t` filters (`r t R S <= PEs`); ifmaps
//!   are delivered over the array, psums accumulate spatially across the channels and taps
//!   and go back to the buffer once per pass. See [`weight_stationary`].
//! * **OS** (output stationary): each PE keeps one psum in its RF until it is complete (all
//!   C x R x S MACs); three variants, as in ISCA'16 (see [`output_stationary`]): SOC-MOP
//!   (`os-a`: one filter, a 2-D pixel tile), MOC-MOP (`os-b`: several filters, a 1-D row
//!   segment) and MOC-SOP (`os-c`: several filters, one pixel). `os` takes the best of the
//!   three on the machine it is given.
//! * **NLR** (no local reuse): no RF at all; PE rows take input channels, columns take filters;
//!   every MAC gets its weight from the buffer, ifmaps are multicast along rows and psums are
//!   accumulated spatially and written back to the buffer.

use crate::access::{PerTensor, Tensor};
use crate::spec::Hardware;
use crate::workload::Workload;

pub mod output_stationary;
pub mod weight_stationary;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The dataflows of ISCA'16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataflow {
    /// Row stationary.
    Rs,
    /// Weight stationary.
    Ws,
    /// Output stationary: the best of its three ISCA'16 variants below.
    Os,
    /// Output stationary SOC-MOP (ISCA'16 "OS_A", ShiDianNao): one output channel, a 2-D
    /// tile of output pixels.
    #[serde(rename = "os-a")]
    OsA,
    /// Output stationary MOC-MOP ("OS_B"): several output channels, a 1-D segment of an
    /// output row.
    #[serde(rename = "os-b")]
    OsB,
    /// Output stationary MOC-SOP ("OS_C"): several output channels of a single pixel.
    #[serde(rename = "os-c")]
    OsC,
    /// No local reuse.
    Nlr,
    /// Weight stationary as ISCA'16's analysis evaluates it: ifmaps stream from DRAM for
    /// every block of filters and psums return to the buffer after every filter row
    /// (`weight_stationary::isca16_template`).
    #[serde(rename = "ws-isca16")]
    WsIsca16,
}

impl Dataflow {
    /// The four dataflow families (`os` standing for the best of its variants).
    pub const ALL: [Dataflow; 4] = [Dataflow::Rs, Dataflow::Ws, Dataflow::Os, Dataflow::Nlr];

    /// The dataflows compared at equal area: the six of ISCA'16 Fig. 11 (RS, WS as the paper
    /// evaluates it, the three OS variants and NLR) and joule's own WS, whose mapper may also
    /// keep ifmaps in the buffer.
    pub const COMPARED: [Dataflow; 7] = [
        Dataflow::Rs,
        Dataflow::WsIsca16,
        Dataflow::Ws,
        Dataflow::OsA,
        Dataflow::OsB,
        Dataflow::OsC,
        Dataflow::Nlr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataflow::Rs => "rs",
            Dataflow::Ws => "ws",
            Dataflow::Os => "os",
            Dataflow::OsA => "os-a",
            Dataflow::OsB => "os-b",
            Dataflow::OsC => "os-c",
            Dataflow::Nlr => "nlr",
            Dataflow::WsIsca16 => "ws-isca16",
        }
    }

    /// Whether the dataflow keeps data in the per-PE RF (NLR does not).
    pub fn uses_rf(self) -> bool {
        self != Dataflow::Nlr
    }
}

impl fmt::Display for Dataflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_uppercase())
    }
}

impl FromStr for Dataflow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rs" => Ok(Dataflow::Rs),
            "ws" => Ok(Dataflow::Ws),
            "os" => Ok(Dataflow::Os),
            "os-a" | "soc-mop" => Ok(Dataflow::OsA),
            "os-b" | "moc-mop" => Ok(Dataflow::OsB),
            "os-c" | "moc-sop" => Ok(Dataflow::OsC),
            "nlr" => Ok(Dataflow::Nlr),
            "ws-isca16" => Ok(Dataflow::WsIsca16),
            _ => Err(format!(
                "unknown dataflow {s:?} (expected rs, ws, ws-isca16, os, os-a, os-b, os-c or nlr)"
            )),
        }
    }
}

/// The loops left over the spatial pass, in the order `[C, M, N]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    C,
    M,
    N,
}

impl Dim {
    pub const ALL: [Dim; 3] = [Dim::C, Dim::M, Dim::N];
}

impl Dim {
    /// Whether this pass loop indexes `tensor`: ifmaps vary with C and N, filters with C
    /// and M, psums with M and N.
    #[inline]
    pub fn indexes(self, tensor: Tensor) -> bool {
        // Rows in `Tensor::ALL` order, columns in `Dim::ALL` order: a table lookup, as this
        // sits in the mapper's innermost loop.
        const INDEXES: [[bool; 3]; 3] = [
            [true, false, true], // ifmap: C, N
            [true, true, false], // filter: C, M
            [false, true, true], // psum: M, N
        ];
        INDEXES[tensor as usize][self as usize]
    }
}

/// One pass of the PE array under a dataflow: per-pass counts (words) for each tensor, and
/// the number of passes along C, M and N.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassUnit {
    pub dataflow: Dataflow,
    /// Passes along `[C, M, N]` (N includes spatial folds, which behave like more images).
    pub loops: [u64; 3],
    /// Distinct words one pass touches: what DRAM supplies (accesses, so fractional when a
    /// loop's last pass is partial).
    pub dram_words: PerTensor<f64>,
    /// Buffer reads per pass (a value read twice in one pass counts twice).
    pub buffer_reads: PerTensor<f64>,
    /// Array (inter-PE network) accesses per pass. Table IV of ISCA'16 prices the array as
    /// *inter-PE* communication, so: an ifmap or filter value read once from the buffer and
    /// delivered to `k > 1` PEs counts `k`; one delivered to a single PE counts nothing (the
    /// buffer read already brings it there, as in the authors' analysis model); a psum
    /// counts its PE-to-PE hops, `c - 1` for `c` PEs accumulating it (the `ab(c-1)` term).
    pub array_reads: PerTensor<f64>,
    /// Buffer space one pass needs (words).
    pub buffer_footprint: PerTensor<f64>,
    /// RF space one PE needs for one pass (words).
    pub rf_footprint: PerTensor<f64>,
    /// RF accesses per MAC.
    pub rf_per_mac: PerTensor<f64>,
    /// Which pass loops `[C, M, N]` may be blocked at the RF level (a PE holding data of
    /// several passes): RS all, WS only N (a PE keeps the weights of one channel-filter pair),
    /// NLR none.
    pub rf_blockable: [bool; 3],
    /// Whether the data of each type stay in the PEs from one pass to the next, so that a
    /// buffer-level loop order can reuse them without a new buffer read (RS: all; WS: the
    /// weights; OS: the psums; NLR: none). Data not kept are streamed in every pass.
    pub kept: PerTensor<bool>,
    /// Data the buffer does not hold from one pass to the next: read from DRAM again in
    /// every pass that uses them (only ISCA'16's WS template streams its ifmaps this way).
    pub dram_streamed: PerTensor<bool>,
    /// Cycles per pass.
    pub cycles: f64,
    /// Human-readable spatial mapping.
    pub spatial: String,
}

pub(crate) fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// Ordered pairs `(a, b)` with `a * b == n`.
fn factor_pairs(n: u64) -> Vec<(u64, u64)> {
    (1..=n).filter(|a| n % a == 0).map(|a| (a, n / a)).collect()
}

/// Replicas to use when `room` fit and `count` are needed: `min(room, count)`, and the
/// divisors of `count` from half of that up.
pub(crate) fn replica_choices(room: u64, count: u64) -> Vec<u64> {
    let most = room.min(count);
    let mut out = vec![most];
    for v in (most.div_ceil(2)..most).rev() {
        if count % v == 0 {
            out.push(v);
        }
    }
    out
}

/// Counts per pass to try when at most `most` fit and `total` are needed: every power of
/// two, every divisor of `total`, and `most` itself.
pub(crate) fn count_choices(most: u64, total: u64) -> Vec<u64> {
    (1..=most)
        .filter(|&t| t == most || t.is_power_of_two() || total % t == 0)
        .collect()
}

/// How many strips of ofmap rows a pass may cover: 1, 2, 4, ... below `p`, and `p` (one
/// row per pass). Strips count like more images and keep a pass's data small enough for the
/// buffer.
pub(crate) fn strip_counts(p: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (0..).map(|k| 1u64 << k).take_while(|&k| k < p).collect();
    out.push(p);
    out
}

/// The legal spatial passes of a layer (one group) under a dataflow.
pub fn passes(w: &Workload, hw: &Hardware, dataflow: Dataflow) -> Vec<PassUnit> {
    match dataflow {
        Dataflow::Rs => row_stationary(w, hw),
        Dataflow::Ws => weight_stationary::passes(w, hw),
        Dataflow::WsIsca16 => weight_stationary::isca16_template(w, hw),
        Dataflow::Nlr => no_local_reuse(w, hw),
        Dataflow::OsA => output_stationary::soc_mop(w, hw),
        Dataflow::OsB => output_stationary::moc_mop(w, hw),
        Dataflow::OsC => output_stationary::moc_sop(w, hw),
        Dataflow::Os => {
            let mut all = output_stationary::soc_mop(w, hw);
            all.extend(output_stationary::moc_mop(w, hw));
            all.extend(output_stationary::moc_sop(w, hw));
            all
        }
    }
}

pub(crate) struct Dims {
    n: u64,
    m: u64,
    c: u64,
    p: u64,
    q: u64,
    r: u64,
    s: u64,
    stride_h: u64,
    in_cols: u64,
    eff_r: u64,
}

pub(crate) fn dims(w: &Workload) -> Dims {
    let t = &w.nest;
    Dims {
        n: t.n as u64,
        m: t.m as u64,
        c: t.c as u64,
        p: t.p as u64,
        q: t.q as u64,
        r: t.r as u64,
        s: t.s as u64,
        stride_h: t.stride_h as u64,
        in_cols: w.ifmap_cols(),
        eff_r: t.effective_r() as u64,
    }
}

fn row_stationary(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    let d = dims(w);
    let (rows, cols) = (hw.array.rows, hw.array.cols);
    // Logical PE set: R x P. Fold what does not fit, replicate what leaves room.
    let (mut fold_h, mut repl_h) = if d.r > rows {
        (ceil_div(d.r, rows), 1)
    } else {
        (1, rows / d.r)
    };
    let (mut fold_w, repl_w) = if d.p > cols {
        (ceil_div(d.p, cols), 1)
    } else {
        (1, cols / d.p)
    };
    // Spare vertical replicas first hold the horizontal folds (stacked P segments).
    let stacked = repl_h.min(fold_w);
    fold_w = ceil_div(fold_w, stacked);
    repl_h /= stacked;
    if fold_h == 0 {
        fold_h = 1;
    }
    // A filter row longer than the RF holds is split into `fold_s` segments run one after
    // another (psums of a segment go back through the buffer, like a filter-row fold).
    let mut fold_s = 1;
    while fold_s < d.s
        && !hw.rf.fits(PerTensor {
            ifmap: ceil_div(d.s, fold_s) as f64,
            filter: ceil_div(d.s, fold_s) as f64,
            psum: 1.0,
        })
    {
        fold_s += 1;
    }
    let segment = ceil_div(d.s, fold_s);
    let rows_per_fold = d.p as f64 / fold_w as f64;
    let rows_buf = ceil_div(d.p, fold_w);
    let set_rows = ceil_div(d.r, fold_h) as f64;
    let set_cols = ceil_div(d.p, fold_w) as f64;
    let set_pes = set_rows * set_cols;
    let in_rows = |out_rows: f64| (out_rows - 1.0) * d.stride_h as f64 + d.eff_r as f64;
    // Replica choices: for every split of the spare vertical replication between channels
    // and filters, the most replicas that fit, and any fewer (down to half) that divide the
    // channel or filter count evenly (no partial last pass).
    let mut choices: Vec<(u64, u64)> = Vec::new();
    for (a, b) in factor_pairs(repl_h) {
        for ifms in replica_choices(a, d.c) {
            for ofms in replica_choices(b * repl_w, d.m) {
                if !choices.contains(&(ifms, ofms)) {
                    choices.push((ifms, ofms));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (ifms, ofms) in choices {
        let loops = [ceil_div(d.c, ifms), ceil_div(d.m, ofms), d.n * fold_w];
        // Average channels per pass, counting a partial last pass.
        let ifms_avg = d.c as f64 / loops[Dim::C as usize] as f64;
        let ofms_avg = d.m as f64 / loops[Dim::M as usize] as f64;
        let ifmap_words = ifms_avg * in_rows(rows_per_fold) * d.in_cols as f64;
        let filter_words = ifms_avg * ofms_avg * (d.r * d.s) as f64;
        let psum_words = ofms_avg * rows_per_fold * d.q as f64;
        let fh = (fold_h * fold_s) as f64;
        out.push(PassUnit {
            dataflow: Dataflow::Rs,
            loops,
            dram_words: PerTensor {
                ifmap: ifmap_words,
                filter: filter_words,
                psum: psum_words,
            },
            // A filter fold re-reads the ifmap rows and the psums of the fold.
            buffer_reads: PerTensor {
                ifmap: ifmap_words * fh,
                filter: filter_words,
                psum: psum_words * fh,
            },
            array_reads: PerTensor {
                ifmap: ifms_avg * d.in_cols as f64 * set_pes * fh,
                filter: ifms_avg * ofms_avg * d.s as f64 * set_pes * fold_h as f64,
                // A psum row climbs its column of the `ifms` stacked sets: one hop per PE
                // but the top one.
                psum: ofms_avg * d.q as f64 * (ifms_avg * set_rows - 1.0) * set_cols * fh,
            },
            buffer_footprint: PerTensor {
                ifmap: (ifms * ((rows_buf - 1) * d.stride_h + d.eff_r) * d.in_cols) as f64,
                filter: (ifms * ofms * d.r * d.s) as f64,
                psum: (ofms * rows_buf * d.q) as f64,
            },
            rf_footprint: PerTensor {
                ifmap: segment as f64,
                filter: segment as f64,
                psum: 1.0,
            },
            // Per MAC: an ifmap and a filter read, a psum read and write.
            rf_per_mac: PerTensor {
                ifmap: 1.0,
                filter: 1.0,
                psum: 2.0,
            },
            rf_blockable: [true; 3],
            kept: PerTensor::splat(true),
            dram_streamed: PerTensor::splat(false),
            cycles: (fold_h * fold_s * segment * d.q) as f64,
            spatial: format!(
                "PE set {}x{} (R x P), fold {}x{}{}, replicas {} channels x {} filters",
                d.r,
                d.p,
                fold_h,
                fold_w,
                if fold_s > 1 {
                    format!(", filter rows in {fold_s} segments")
                } else {
                    String::new()
                },
                ifms,
                ofms
            ),
        });
    }
    out
}

/// NLR: PE rows take input channels, columns take filters. A pass covers a strip of
/// ofmap rows of one image (the whole image, halves, quarters, ...: strips that keep a pass's
/// data small enough for the buffer), strips counting like more images.
fn no_local_reuse(w: &Workload, hw: &Hardware) -> Vec<PassUnit> {
    let dataflow = Dataflow::Nlr;
    let d = dims(w);
    let ifms = hw.array.rows.min(d.c);
    let ofms = hw.array.cols.min(d.m);
    let mut out = Vec::new();
    for strips in strip_counts(d.p) {
        let loops = [ceil_div(d.c, ifms), ceil_div(d.m, ofms), d.n * strips];
        let ifms_avg = d.c as f64 / loops[Dim::C as usize] as f64;
        let ofms_avg = d.m as f64 / loops[Dim::M as usize] as f64;
        let rows = d.p as f64 / strips as f64;
        let rows_buf = ceil_div(d.p, strips);
        let in_rows = (rows - 1.0) * d.stride_h as f64 + d.eff_r as f64;
        let in_rows_buf = (rows_buf - 1) * d.stride_h + d.eff_r;
        let taps = (d.r * d.s) as f64;
        let pixels = rows * d.q as f64;
        let macs = ifms_avg * ofms_avg * pixels * taps;
        let ifmap_words = ifms_avg * in_rows * d.in_cols as f64;
        let filter_words = ifms_avg * ofms_avg * taps;
        let psum_words = ofms_avg * pixels;
        // Each (pixel, tap) step multicasts one ifmap value per PE row (to the `ofms` filter
        // columns); psums cross the channels in the array (`ifms - 1` hops), then go back
        // to the buffer: one write per (pixel, tap) step and one read for every step but
        // the first.
        let ifmap_buffer = macs / ofms_avg;
        let ifmap_array = if ofms > 1 { macs } else { 0.0 };
        let psum_buffer = 2.0 * macs / ifms_avg - psum_words;
        let psum_array = macs - macs / ifms_avg;
        // Every MAC gets its weight from the buffer, straight into its PE (no inter-PE trip).
        let (filter_buffer, filter_array) = (macs, 0.0);
        out.push(PassUnit {
            dataflow,
            loops,
            dram_words: PerTensor {
                ifmap: ifmap_words,
                filter: filter_words,
                psum: psum_words,
            },
            buffer_reads: PerTensor {
                ifmap: ifmap_buffer,
                filter: filter_buffer,
                psum: psum_buffer,
            },
            array_reads: PerTensor {
                ifmap: ifmap_array,
                filter: filter_array,
                psum: psum_array,
            },
            buffer_footprint: PerTensor {
                ifmap: (ifms * in_rows_buf * d.in_cols) as f64,
                filter: (ifms * ofms * d.r * d.s) as f64,
                psum: (ofms * rows_buf * d.q) as f64,
            },
            // No RF.
            rf_footprint: PerTensor::splat(0.0),
            rf_per_mac: PerTensor::splat(0.0),
            rf_blockable: [false; 3],
            kept: PerTensor::splat(false),
            dram_streamed: PerTensor::splat(false),
            cycles: pixels * taps,
            spatial: format!("{ifms} channels x {ofms} filters on the array, {strips} row strips"),
        });
    }
    out
}
