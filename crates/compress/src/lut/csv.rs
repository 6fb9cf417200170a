//! CSV form of a latency table: one row per entry, the overhead as a row of kind `overhead`,
//! and a `# model=... batch=... threads=... [context=streamed] [runtime=...]` comment line
//! first (`context` only for a streamed table, a line without it reads as isolated;
//! `runtime` only for a table measured by another runtime, [`super::probes`]). The channel grid is not
//! kept (the JSON form keeps everything).
//!
//! Rows are [`Row`]s read and written by the `csv` crate through serde, so the columns are
//! named by the header and a bad value is reported with its line and column.

use super::{ChannelGrid, Context, Entry, LatencyTable, LayerKey, MeasureConfig, Measurement};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a CSV latency table could not be read or written.
#[derive(Debug, Error)]
pub enum CsvError {
    /// The `# model=... batch=... threads=...` line has a value that is not a count.
    #[error("line {line}: {key}={value:?} is not a count")]
    Comment {
        line: usize,
        key: &'static str,
        value: String,
    },
    /// The comment line's `context=` is neither `streamed` nor `isolated`.
    #[error("line {line}: context={value:?} is not streamed or isolated")]
    Context { line: usize, value: String },
    /// A row does not parse: `line` is its line in the file, `field` its column when the
    /// CSV reader knows which one.
    #[error("line {line}{}: {source}", field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    Row {
        line: u64,
        field: Option<&'static str>,
        #[source]
        source: csv::Error,
    },
    /// The table has no row of kind `overhead`.
    #[error("no overhead row (a row of kind `overhead`)")]
    NoOverhead,
    /// A row could not be written (only an I/O error of the writer's buffer could cause this).
    #[error("writing the CSV: {0}")]
    Write(#[source] csv::Error),
}

/// One line of the CSV: a [`LayerKey`], the latency it contributes and its raw measurement.
/// The field order is the column order.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    kind: String,
    c: usize,
    m: usize,
    h: usize,
    w: usize,
    p: usize,
    q: usize,
    r: usize,
    s: usize,
    stride: usize,
    groups: usize,
    inputs: usize,
    latency_ms: f64,
    median_ms: f64,
    spread_ms: f64,
    runs: usize,
    stable: bool,
}

/// The columns, in [`Row`]'s order (to name the column of a bad value).
const COLUMNS: [&str; 17] = [
    "kind",
    "c",
    "m",
    "h",
    "w",
    "p",
    "q",
    "r",
    "s",
    "stride",
    "groups",
    "inputs",
    "latency_ms",
    "median_ms",
    "spread_ms",
    "runs",
    "stable",
];

const OVERHEAD: &str = "overhead";

impl Row {
    fn new(key: &LayerKey, latency_ms: f64, m: &Measurement) -> Row {
        Row {
            kind: key.kind.clone(),
            c: key.c,
            m: key.m,
            h: key.h,
            w: key.w,
            p: key.p,
            q: key.q,
            r: key.r,
            s: key.s,
            stride: key.stride,
            groups: key.groups,
            inputs: key.inputs,
            latency_ms,
            median_ms: m.median_ms,
            spread_ms: m.spread_ms,
            runs: m.runs,
            stable: m.stable,
        }
    }

    fn overhead(m: &Measurement) -> Row {
        let zero = LayerKey {
            kind: OVERHEAD.into(),
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
        Row::new(&zero, m.median_ms, m)
    }

    fn into_entry(self) -> Entry {
        Entry {
            key: LayerKey {
                kind: self.kind,
                c: self.c,
                m: self.m,
                h: self.h,
                w: self.w,
                p: self.p,
                q: self.q,
                r: self.r,
                s: self.s,
                stride: self.stride,
                groups: self.groups,
                inputs: self.inputs,
            },
            latency_ms: self.latency_ms,
            measured: Measurement {
                median_ms: self.median_ms,
                spread_ms: self.spread_ms,
                runs: self.runs,
                stable: self.stable,
            },
        }
    }
}

/// The `# key=value ...` lines: model, batch and threads (1 when absent), runtime.
/// What the comment line says: model, batch, threads, runtime, and the context the entries
/// were timed in (absent: isolated, as every table written before contexts existed).
type Comment = (String, usize, usize, Option<String>, Context);

fn read_comment(text: &str) -> Result<Comment, CsvError> {
    let (mut model, mut batch, mut threads, mut runtime) = (String::new(), 1, 1, None);
    let mut context = Context::Isolated;
    for (number, line) in text.lines().enumerate() {
        let Some(meta) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        for pair in meta.split_whitespace() {
            let count = |key: &'static str, value: &str| {
                value.parse().map_err(|_| CsvError::Comment {
                    line: number + 1,
                    key,
                    value: value.to_string(),
                })
            };
            match pair.split_once('=') {
                Some(("model", v)) => model = v.to_string(),
                Some(("batch", v)) => batch = count("batch", v)?,
                Some(("threads", v)) => threads = count("threads", v)?,
                Some(("runtime", v)) => runtime = Some(v.to_string()),
                Some(("context", v)) => {
                    context = v.parse().map_err(|_| CsvError::Context {
                        line: number + 1,
                        value: v.to_string(),
                    })?
                }
                _ => {}
            }
        }
    }
    Ok((model, batch, threads, runtime, context))
}

fn row_error(source: csv::Error) -> CsvError {
    let (line, field) = match source.kind() {
        csv::ErrorKind::Deserialize { pos, err } => (
            pos.as_ref().map_or(0, csv::Position::line),
            err.field()
                .and_then(|i| COLUMNS.get(usize::try_from(i).ok()?).copied()),
        ),
        _ => (source.position().map_or(0, csv::Position::line), None),
    };
    CsvError::Row {
        line,
        field,
        source,
    }
}

impl LatencyTable {
    /// The table as CSV: the comment line, the header, the overhead row, one row per entry.
    pub fn to_csv(&self) -> Result<String, CsvError> {
        let mut writer = csv::Writer::from_writer(
            format!(
                "# model={} batch={} threads={}{}{}\n",
                self.model,
                self.batch,
                self.threads,
                // Only streamed tables say so: a line without it reads as isolated.
                match self.measure.context {
                    Context::Isolated => "",
                    Context::Streamed => " context=streamed",
                },
                self.runtime
                    .as_ref()
                    .map(|r| format!(" runtime={r}"))
                    .unwrap_or_default()
            )
            .into_bytes(),
        );
        writer
            .serialize(Row::overhead(&self.overhead))
            .map_err(CsvError::Write)?;
        for e in &self.entries {
            writer
                .serialize(Row::new(&e.key, e.latency_ms, &e.measured))
                .map_err(CsvError::Write)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| CsvError::Write(e.into_error().into()))?;
        Ok(String::from_utf8(bytes).expect("the CSV of UTF-8 strings and numbers is UTF-8"))
    }

    /// Reads what [`LatencyTable::to_csv`] wrote. Blank lines and `#` lines are skipped;
    /// columns are matched by the header's names.
    pub fn from_csv(text: &str) -> Result<LatencyTable, CsvError> {
        let (model, batch, threads, runtime, context) = read_comment(text)?;
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut overhead = None;
        let mut entries = Vec::new();
        for row in reader.deserialize::<Row>() {
            let entry = row.map_err(row_error)?.into_entry();
            if entry.key.kind == OVERHEAD {
                overhead = Some(entry.measured);
            } else {
                entries.push(entry);
            }
        }
        let mut table = LatencyTable::new(
            model,
            batch,
            threads,
            ChannelGrid::default(),
            MeasureConfig {
                context,
                ..MeasureConfig::default()
            },
            overhead.ok_or(CsvError::NoOverhead)?,
            entries,
        );
        table.load_average = None;
        table.runtime = runtime;
        Ok(table)
    }
}
