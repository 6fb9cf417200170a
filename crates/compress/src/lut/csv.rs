//! CSV form of a latency table: one row per entry, the overhead as a row of kind `overhead`,
//! and a `# model=... batch=... threads=...` comment line first. The channel grid is not
//! kept (the JSON form keeps everything).

use super::{ChannelGrid, Entry, LatencyTable, LayerKey, MeasureConfig, Measurement};

const HEADER: &str =
    "kind,c,m,h,w,p,q,r,s,stride,groups,inputs,latency_ms,median_ms,spread_ms,runs,stable";

fn row(key: &LayerKey, latency: f64, m: &Measurement) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        key.kind,
        key.c,
        key.m,
        key.h,
        key.w,
        key.p,
        key.q,
        key.r,
        key.s,
        key.stride,
        key.groups,
        key.inputs,
        latency,
        m.median_ms,
        m.spread_ms,
        m.runs,
        m.stable
    )
}

impl LatencyTable {
    pub fn to_csv(&self) -> String {
        let mut out = format!(
            "# model={} batch={} threads={}\n{HEADER}\n",
            self.model, self.batch, self.threads
        );
        let overhead = LayerKey {
            kind: "overhead".into(),
            c: 0,
            m: 0,
            h: 0,
            w: 0,
            p: 0,
            q: 0,
            r: 0,
            s: 0,
            stride: 0,
            groups: 0,
            inputs: 0,
        };
        out += &row(&overhead, self.overhead.median_ms, &self.overhead);
        out.push('\n');
        for e in &self.entries {
            out += &row(&e.key, e.latency_ms, &e.measured);
            out.push('\n');
        }
        out
    }

    pub fn from_csv(text: &str) -> Result<LatencyTable, String> {
        let (mut model, mut batch, mut threads) = (String::new(), 1, 1);
        let mut overhead = None;
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(meta) = line.strip_prefix('#') {
                for pair in meta.split_whitespace() {
                    match pair.split_once('=') {
                        Some(("model", v)) => model = v.to_string(),
                        Some(("batch", v)) => {
                            batch = v
                                .parse()
                                .map_err(|_| format!("line {}: batch {v:?}", number + 1))?
                        }
                        Some(("threads", v)) => {
                            threads = v
                                .parse()
                                .map_err(|_| format!("line {}: threads {v:?}", number + 1))?
                        }
                        _ => {}
                    }
                }
                continue;
            }
            if line.is_empty() || line == HEADER {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 17 {
                return Err(format!(
                    "line {}: expected 17 fields ({HEADER}), got {}",
                    number + 1,
                    f.len()
                ));
            }
            let int = |i: usize| -> Result<usize, String> {
                f[i].parse().map_err(|_| {
                    format!("line {}: field {i} {:?} is not a count", number + 1, f[i])
                })
            };
            let real = |i: usize| -> Result<f64, String> {
                f[i].parse().map_err(|_| {
                    format!("line {}: field {i} {:?} is not a number", number + 1, f[i])
                })
            };
            let key = LayerKey {
                kind: f[0].to_string(),
                c: int(1)?,
                m: int(2)?,
                h: int(3)?,
                w: int(4)?,
                p: int(5)?,
                q: int(6)?,
                r: int(7)?,
                s: int(8)?,
                stride: int(9)?,
                groups: int(10)?,
                inputs: int(11)?,
            };
            let measured = Measurement {
                median_ms: real(13)?,
                spread_ms: real(14)?,
                runs: int(15)?,
                stable: f[16] == "true",
            };
            if key.kind == "overhead" {
                overhead = Some(measured);
            } else {
                entries.push(Entry {
                    key,
                    latency_ms: real(12)?,
                    measured,
                });
            }
        }
        let overhead = overhead.ok_or("no overhead row")?;
        let mut table = LatencyTable::new(
            model,
            batch,
            threads,
            ChannelGrid::default(),
            MeasureConfig::default(),
            overhead,
            entries,
        );
        table.load_average = None;
        Ok(table)
    }
}
