use comfy_table::{presets, CellAlignment, ContentArrangement};

/// Rows of cells under a header; cells that parse as numbers are right-aligned in text.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table under `header`.
    pub fn new<I, S>(header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (one cell per header column).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The rows, in insertion order.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// Whether column `i` holds numbers only (empty cells allowed): such columns align right.
    pub(crate) fn numeric_column(&self, i: usize) -> bool {
        !self.rows.is_empty()
            && self
                .rows
                .iter()
                .all(|r| r.get(i).is_none_or(|c| c.is_empty() || looks_numeric(c)))
    }

    /// An aligned Markdown-style text table; numeric columns align right.
    pub fn to_text(&self) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(presets::ASCII_MARKDOWN)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(&self.header);
        for row in &self.rows {
            table.add_row(row);
        }
        for (i, column) in table.column_iter_mut().enumerate() {
            if self.numeric_column(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        table.to_string()
    }

    /// CSV with a header line; cells are quoted where needed.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.header)?;
        for row in &self.rows {
            writer.write_record(row)?;
        }
        let bytes = writer.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A number, possibly with thousands separators, an SI prefix (as [`human`] and [`crate::eng`]
/// write them), a percent sign or an `x`: `1,024`, `724.4M`, `1.2 G`, `340 µ`, `12.5%`, `1.3x`.
fn looks_numeric(cell: &str) -> bool {
    let trimmed = cell
        .trim_end_matches(['%', 'x'])
        .trim_end_matches([
            'y', 'z', 'a', 'f', 'p', 'n', 'µ', 'm', 'k', 'M', 'G', 'T', 'P', 'E',
        ])
        .trim_end();
    !trimmed.is_empty() && trimmed.replace([',', '_'], "").parse::<f64>().is_ok()
}

/// Compact count for humans: 724406816 -> "724.4M".
pub fn human(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e12 {
        (value / 1e12, "T")
    } else if abs >= 1e9 {
        (value / 1e9, "G")
    } else if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e3 {
        (value / 1e3, "k")
    } else {
        // Two decimals at most, without trailing zeros: 196.7616 -> "196.76", 12.0 -> "12".
        let text = format!("{value:.2}");
        return text.trim_end_matches('0').trim_end_matches('.').to_string();
    };
    format!("{scaled:.1}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(724_406_816.0), "724.4M");
        assert_eq!(human(15.47e9), "15.5G");
        assert_eq!(human(2550.0), "2.5k");
        assert_eq!(human(12.0), "12");
        assert_eq!(human(196.761_600_000_000_02), "196.76");
        assert_eq!(human(0.5), "0.5");
    }

    #[test]
    fn numbers_in_every_notation_align_right() {
        for cell in [
            "1,024", "724.4M", "1.2 G", "340 µ", "-1.5 k", "12.5%", "1.3x", "0.25",
        ] {
            assert!(looks_numeric(cell), "{cell}");
        }
        for cell in ["conv1", "k", "", "1.2 Gb", "fc 2"] {
            assert!(!looks_numeric(cell), "{cell}");
        }
    }

    #[test]
    fn csv_quotes_commas() {
        let mut t = Table::new(["a", "b"]);
        t.row(["x,y", "1"]);
        assert_eq!(t.to_csv().unwrap(), "a,b\n\"x,y\",1\n");
    }
}
