//! The CSV form of a latency table, read and written by the `csv` crate: a table survives a
//! round trip exactly, a file in the format the hand-written writer produced (floats
//! printed by `Display`, `1` for 1.0) still loads to the values written in it, and a bad row
//! is reported with its file, line and column.

use joule_compress::lut::{
    ChannelGrid, CsvError, Entry, LatencyTable, LayerKey, MeasureConfig, Measurement,
};
use joule_compress::CompressError;
use std::path::PathBuf;

const HEADER: &str =
    "kind,c,m,h,w,p,q,r,s,stride,groups,inputs,latency_ms,median_ms,spread_ms,runs,stable";

fn key(kind: &str, c: usize, m: usize, hw: usize, k: usize) -> LayerKey {
    LayerKey {
        kind: kind.into(),
        c,
        m,
        h: hw,
        w: hw,
        p: hw - k + 1,
        q: hw - k + 1,
        r: k,
        s: k,
        stride: 1,
        groups: 1,
        inputs: 1,
    }
}

fn measured(median_ms: f64, spread_ms: f64, runs: usize, stable: bool) -> Measurement {
    Measurement {
        median_ms,
        spread_ms,
        runs,
        stable,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("joule-lut-csv-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_table_round_trips_exactly() {
    // Values with long decimal expansions, a zero, a tiny one: the text must carry all bits.
    let entries = vec![
        Entry {
            key: key("conv+relu", 1, 6, 32, 5),
            latency_ms: 0.1 + 0.2,
            measured: measured(0.55 + 1e-17, 1.0 / 3.0, 12, true),
        },
        Entry {
            key: key("maxpool", 6, 6, 28, 2),
            latency_ms: 0.0,
            measured: measured(2.5e-7, 0.0, 6, false),
        },
    ];
    let table = LatencyTable::new(
        "lenet5".into(),
        4,
        2,
        ChannelGrid::default(),
        MeasureConfig::default(),
        measured(0.25, 0.015625, 30, true),
        entries.clone(),
    );
    let text = table.to_csv().unwrap();
    let mut lines = text.lines();
    // A streamed table (the default) says so; an isolated one's line has no context.
    assert_eq!(
        lines.next(),
        Some("# model=lenet5 batch=4 threads=2 context=streamed")
    );
    assert_eq!(lines.next(), Some(HEADER));
    assert!(lines.next().unwrap().starts_with("overhead,0,0,"), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");

    let back = LatencyTable::from_csv(&text).unwrap();
    assert_eq!(
        (back.model.as_str(), back.batch, back.threads),
        ("lenet5", 4, 2)
    );
    assert_eq!(back.overhead, table.overhead);
    assert_eq!(
        back.entries, entries,
        "bit-exact floats, same keys, same order"
    );
    assert_eq!(
        back.get(&key("maxpool", 6, 6, 28, 2))
            .unwrap()
            .measured
            .runs,
        6
    );

    // Through a file, by extension.
    let dir = scratch("round");
    let path = dir.join("t.csv");
    table.save(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(LatencyTable::load(&path).unwrap().entries, entries);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_in_the_existing_format_loads() {
    // What the hand-written writer produced: Display floats (`1` for 1.0), a trailing
    // newline, the comment first.
    let text = format!(
        "# model=lenet5 batch=1 threads=2\n{HEADER}\n\
         overhead,0,0,0,0,0,0,0,0,0,0,0,0.125,0.125,0.001,40,true\n\
         conv+relu,1,6,32,32,28,28,5,5,1,1,1,1,1.125,0.03,12,false\n\
         fc,400,120,1,1,1,1,1,1,1,1,1,0.30000000000000004,0.42500000000000004,0,6,true\n"
    );
    let t = LatencyTable::from_csv(&text).unwrap();
    assert_eq!((t.model.as_str(), t.batch, t.threads), ("lenet5", 1, 2));
    assert_eq!(t.overhead, measured(0.125, 0.001, 40, true));
    assert_eq!(t.entries.len(), 2);
    let conv = t.get(&key("conv+relu", 1, 6, 32, 5)).unwrap();
    assert_eq!(conv.latency_ms, 1.0);
    assert_eq!(conv.measured, measured(1.125, 0.03, 12, false));
    let fc = &t.entries[1];
    assert_eq!((fc.key.kind.as_str(), fc.key.c, fc.key.m), ("fc", 400, 120));
    assert_eq!(fc.latency_ms, 0.1 + 0.2);
    assert_eq!(fc.measured.median_ms, 0.42500000000000004);
    assert!(t.load_average.is_none());
}

#[test]
fn bad_rows_are_named_by_file_line_and_column() {
    let dir = scratch("bad");
    let load = |name: &str, body: &str| -> CompressError {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        LatencyTable::load(&path).unwrap_err()
    };

    // A word where a count goes, on the fourth line.
    let err = load(
        "word.csv",
        &format!(
            "# model=m batch=1 threads=1\n{HEADER}\n\
             overhead,0,0,0,0,0,0,0,0,0,0,0,0.1,0.1,0,6,true\n\
             conv,1,six,8,8,6,6,3,3,1,1,1,0.5,0.6,0,6,true\n"
        ),
    );
    let text = err.to_string();
    assert!(
        text.contains("word.csv: line 4, field `m`: "),
        "names file, line and column: {text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert!(matches!(
        err,
        CompressError::LatencyCsv {
            source: CsvError::Row {
                line: 4,
                field: Some("m"),
                ..
            },
            ..
        }
    ));
    assert!(std::error::Error::source(&err).is_some(), "keeps its cause");

    // A short row.
    let text = load("short.csv", &format!("{HEADER}\nconv,1\n")).to_string();
    assert!(
        text.contains("short.csv") && text.contains("line 2"),
        "{text}"
    );

    // A bad comment value and a table without its overhead row.
    let text = load("batch.csv", &format!("# batch=two\n{HEADER}\n")).to_string();
    assert!(
        text.contains("batch.csv: line 1: batch=\"two\" is not a count"),
        "{text}"
    );
    let text = load(
        "none.csv",
        &format!("{HEADER}\nconv,1,6,8,8,6,6,3,3,1,1,1,0.5,0.6,0,6,true\n"),
    )
    .to_string();
    assert!(text.contains("none.csv: no overhead row"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
