//! One self-contained HTML report: a [`Page`] of [`Section`]s, each a heading, a short "how to
//! read this" note, and, in the order added, paragraphs, inline SVG charts, sortable tables (from
//! [`Table`]) and key/value metric lists. [`Page::render`] returns the whole document with its
//! CSS and JavaScript inline; it makes no network requests, so it can be mailed, archived or
//! opened offline. All text is HTML-escaped; charts are inserted as SVG markup.
//!
//! ```
//! use joule_report::{html::Page, Table};
//!
//! let mut table = Table::new(["layer", "energy (pJ)"]);
//! table.row(["conv1", "1.2 M"]);
//! table.row(["fc1", "340 k"]);
//! let mut page = Page::new("alexnet on eyeriss", "row-stationary, batch 1");
//! page.section("Summary").metrics([("total energy", "1.54 MpJ"), ("layers", "2")]);
//! page.section("Per layer")
//!     .how_to_read("Click a column header to sort by it.")
//!     .table(&table);
//! let html = page.render();
//! assert!(html.contains("<h2>Per layer</h2>") && html.contains("<td class=\"num\">340 k</td>"));
//! ```

use crate::style::escape_xml as escape;
use crate::Table;

/// A report page: a title, a subtitle (what was run, on what) and sections in order.
#[derive(Clone, Debug, Default)]
pub struct Page {
    title: String,
    subtitle: String,
    sections: Vec<Section>,
}

/// One section of a [`Page`]: a heading, an optional "how to read this" note shown under it,
/// and blocks in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct Section {
    heading: String,
    how_to_read: Option<String>,
    blocks: Vec<Block>,
}

#[derive(Clone, Debug)]
enum Block {
    Paragraph(String),
    Chart(String),
    Table(Table),
    Metrics(Vec<(String, String)>),
}

impl Page {
    /// An empty page; an empty `subtitle` is left out.
    pub fn new(title: impl Into<String>, subtitle: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            subtitle: subtitle.into(),
            sections: Vec::new(),
        }
    }

    /// Appends a section headed `heading` and returns it to fill.
    pub fn section(&mut self, heading: impl Into<String>) -> &mut Section {
        self.sections.push(Section {
            heading: heading.into(),
            ..Section::default()
        });
        self.sections.last_mut().expect("just pushed")
    }

    /// The complete HTML document.
    pub fn render(&self) -> String {
        let mut html = String::with_capacity(16 * 1024);
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str("<meta name=\"generator\" content=\"joule\">\n");
        html.push_str(&format!("<title>{}</title>\n", escape(&self.title)));
        html.push_str("<style>\n");
        html.push_str(CSS);
        html.push_str("</style>\n</head>\n<body>\n<main>\n<header>\n");
        html.push_str(&format!("<h1>{}</h1>\n", escape(&self.title)));
        if !self.subtitle.is_empty() {
            html.push_str(&format!(
                "<p class=\"subtitle\">{}</p>\n",
                escape(&self.subtitle)
            ));
        }
        html.push_str("</header>\n");
        let ids: Vec<String> = self
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| anchor(i, &s.heading))
            .collect();
        if self.sections.len() > 1 {
            html.push_str("<nav aria-label=\"Contents\">\n<ol>\n");
            for (section, id) in self.sections.iter().zip(&ids) {
                html.push_str(&format!(
                    "<li><a href=\"#{id}\">{}</a></li>\n",
                    escape(&section.heading)
                ));
            }
            html.push_str("</ol>\n</nav>\n");
        }
        for (section, id) in self.sections.iter().zip(&ids) {
            section.render(id, &mut html);
        }
        html.push_str("</main>\n<script>\n");
        html.push_str(SCRIPT);
        html.push_str("</script>\n</body>\n</html>\n");
        html
    }
}

impl Section {
    /// The "how to read this" note: what the axes, colours and numbers mean. Shown under the
    /// heading; a second call replaces it.
    pub fn how_to_read(&mut self, text: impl Into<String>) -> &mut Section {
        self.how_to_read = Some(text.into());
        self
    }

    /// A paragraph of text.
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Section {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// An SVG chart, as [`crate::stacked_bars_svg`], [`crate::curves::curves_svg`] and
    /// [`crate::scatter_svg`] return it. The markup goes in as is (an XML declaration before
    /// `<svg` is dropped); it scales to the page width.
    pub fn chart(&mut self, svg: impl Into<String>) -> &mut Section {
        self.blocks.push(Block::Chart(svg.into()));
        self
    }

    /// A table, sortable in the page by clicking a column header (numbers, including
    /// engineering suffixes such as `1.2 G` or `340 µ`, sort by value).
    pub fn table(&mut self, table: &Table) -> &mut Section {
        self.blocks.push(Block::Table(table.clone()));
        self
    }

    /// Key figures (name, value), shown as a grid of cards.
    pub fn metrics<I, K, V>(&mut self, items: I) -> &mut Section
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let items = items
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.blocks.push(Block::Metrics(items));
        self
    }

    fn render(&self, id: &str, html: &mut String) {
        html.push_str(&format!(
            "<section id=\"{id}\">\n<h2>{}</h2>\n",
            escape(&self.heading)
        ));
        if let Some(text) = &self.how_to_read {
            html.push_str(&format!(
                "<p class=\"how\"><strong>How to read this.</strong> {}</p>\n",
                escape(text)
            ));
        }
        for block in &self.blocks {
            match block {
                Block::Paragraph(text) => html.push_str(&format!("<p>{}</p>\n", escape(text))),
                Block::Chart(svg) => {
                    let svg = svg.trim();
                    let svg = match (svg.starts_with("<?xml"), svg.find("<svg")) {
                        (true, Some(start)) => &svg[start..],
                        _ => svg,
                    };
                    html.push_str("<figure class=\"chart\">\n");
                    html.push_str(svg);
                    html.push_str("\n</figure>\n");
                }
                Block::Table(table) => render_table(table, html),
                Block::Metrics(items) => {
                    html.push_str("<dl class=\"metrics\">\n");
                    for (key, value) in items {
                        html.push_str(&format!(
                            "<div><dt>{}</dt><dd>{}</dd></div>\n",
                            escape(key),
                            escape(value)
                        ));
                    }
                    html.push_str("</dl>\n");
                }
            }
        }
        html.push_str("</section>\n");
    }
}

fn render_table(table: &Table, html: &mut String) {
    let numeric: Vec<bool> = (0..table.header().len())
        .map(|i| table.numeric_column(i))
        .collect();
    let class = |i: usize| {
        if numeric.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        }
    };
    html.push_str("<div class=\"table-wrap\">\n<table class=\"sortable\">\n<thead>\n<tr>");
    for (i, name) in table.header().iter().enumerate() {
        html.push_str(&format!(
            "<th scope=\"col\"{}><button type=\"button\">{}</button></th>",
            class(i),
            escape(name)
        ));
    }
    html.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in table.rows() {
        html.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            html.push_str(&format!("<td{}>{}</td>", class(i), escape(cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n</div>\n");
}

/// `s3-energy-per-layer` for the third section "Energy per layer": unique, readable, ASCII.
fn anchor(index: usize, heading: &str) -> String {
    let mut id = format!("s{}", index + 1);
    for word in heading
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
    {
        id.push('-');
        id.push_str(&word.to_ascii_lowercase());
    }
    id
}

const CSS: &str = r#":root {
  --ink: #1d2330; --muted: #5b6475; --rule: #d9dde5; --band: #f5f7fa; --accent: #0072b2;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: #fff; color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "DejaVu Sans", sans-serif;
}
main { max-width: 72rem; margin: 0 auto; padding: 2rem clamp(1rem, 4vw, 3rem) 4rem; }
header { border-bottom: 1px solid var(--rule); padding-bottom: 1rem; margin-bottom: 1.25rem; }
h1 { font-size: clamp(1.6rem, 3.2vw, 2.2rem); line-height: 1.2; margin: 0 0 .35rem; }
.subtitle { color: var(--muted); margin: 0; font-size: 1.05rem; }
nav ol { margin: 0; padding-left: 1.4rem; columns: 2 16rem; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { margin: 2.75rem 0; }
h2 {
  font-size: 1.4rem; line-height: 1.3; margin: 0 0 .6rem; padding-top: .6rem;
  border-top: 3px solid var(--accent);
}
p { max-width: 48rem; }
.how {
  background: var(--band); border-left: 4px solid var(--accent); padding: .6rem 1rem;
  margin: .75rem 0 1rem;
}
figure.chart { margin: 1.25rem 0; }
figure.chart svg { display: block; width: 100%; height: auto; }
.table-wrap { overflow-x: auto; margin: 1.25rem 0; }
table { border-collapse: collapse; font-size: .95rem; font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .8rem; border-bottom: 1px solid var(--rule); text-align: left;
  white-space: nowrap; }
thead th { border-bottom: 2px solid var(--ink); vertical-align: bottom; }
th button {
  font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer; text-align: inherit;
}
th button::after { content: " \2195"; color: var(--muted); opacity: .5; }
th[aria-sort="ascending"] button::after { content: " \25B2"; opacity: 1; }
th[aria-sort="descending"] button::after { content: " \25BC"; opacity: 1; }
.num { text-align: right; }
tbody tr:nth-child(even) { background: var(--band); }
tbody tr:hover { background: #e6f0f8; }
dl.metrics {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .75rem;
  margin: 1.25rem 0;
}
dl.metrics div { border: 1px solid var(--rule); border-radius: 6px; padding: .6rem .85rem; }
dt { color: var(--muted); font-size: .85rem; }
dd { margin: .15rem 0 0; font-size: 1.3rem; font-weight: 600; font-variant-numeric: tabular-nums; }
@media print {
  nav { display: none; }
  section, figure { break-inside: avoid; }
}
"#;

/// Click-to-sort for `table.sortable`: numbers (with SI prefixes, %, x, separators) by value,
/// before text; text in natural order; empty cells last in either direction.
const SCRIPT: &str = r#"(function () {
  "use strict";
  var SCALE = { y: 1e-24, z: 1e-21, a: 1e-18, f: 1e-15, p: 1e-12, n: 1e-9, "\u00b5": 1e-6,
    "\u03bc": 1e-6, u: 1e-6, m: 1e-3, "": 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
    E: 1e18, Z: 1e21, Y: 1e24 };
  var NUMBER = /^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([yzafpn\u00b5\u03bcumkKMGTPEZY]?)(\D*)$/;
  function value(text) {
    var t = text.replace(/[\s,_]/g, "").replace(/\u2212/g, "-");
    if (t === "\u221e" || t === "+\u221e") { return Infinity; }
    if (t === "-\u221e") { return -Infinity; }
    var m = NUMBER.exec(t);
    return m ? parseFloat(m[1]) * SCALE[m[2]] : null;
  }
  function compare(a, b) {
    var x = value(a), y = value(b);
    if (x !== null && y !== null) { return x === y ? 0 : (x < y ? -1 : 1); }
    if (x !== null) { return -1; }
    if (y !== null) { return 1; }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }
  function text(row, column) {
    var cell = row.cells[column];
    return cell ? cell.textContent.trim() : "";
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, column) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var a = text(r, column), b = text(s, column);
          if (a === "" || b === "") { return (a === "") - (b === ""); }
          return ascending ? compare(a, b) : compare(b, a);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        let mut table = Table::new(["layer", "energy (pJ)", "share"]);
        table.row(["conv1", "1.2 M", "70%"]);
        table.row(["fc<1>", "340 k", "30%"]);
        let mut page = Page::new(
            "alexnet <script>alert(1)</script>",
            "row-stationary & batch 1",
        );
        page.section("Summary")
            .metrics([("total energy", "1.54 M pJ"), ("layers", "2")]);
        page.section("Energy per layer")
            .how_to_read("Each bar is a layer; <b>hover</b> a segment.")
            .chart(
                "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>",
            )
            .paragraph("DRAM dominates.")
            .table(&table);
        page
    }

    #[test]
    fn every_section_in_order_and_closed() {
        let html = page().render();
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        let order = [
            "<h1>alexnet",
            "<nav",
            "<section id=\"s1-summary\">",
            "<dt>total energy</dt><dd>1.54 M pJ</dd>",
            "<section id=\"s2-energy-per-layer\">",
            "<p class=\"how\"><strong>How to read this.</strong> Each bar",
            "<figure class=\"chart\">\n<svg xmlns",
            "<p>DRAM dominates.</p>",
            "<th scope=\"col\" class=\"num\"><button type=\"button\">energy (pJ)</button></th>",
            "<td class=\"num\">340 k</td>",
        ];
        let mut at = 0;
        for part in order {
            let found = html[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} after {at}"));
            at += found + part.len();
        }
        assert!(html.contains("<a href=\"#s2-energy-per-layer\">Energy per layer</a>"));
        assert!(!html.contains("<?xml"));
        // Balanced tags: every opened element is closed.
        for tag in [
            "section", "table", "thead", "tbody", "tr", "figure", "dl", "div", "p", "nav", "main",
            "script", "style", "svg",
        ] {
            let open = html.matches(&format!("<{tag}>")).count()
                + html.matches(&format!("<{tag} ")).count();
            let close = html.matches(&format!("</{tag}>")).count();
            assert_eq!(open, close, "<{tag}>: {open} opened, {close} closed");
        }
        assert_eq!(html.matches("<section").count(), 2);
    }

    #[test]
    fn user_text_is_escaped() {
        let html = page().render();
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(html.contains("<h1>alexnet &lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
        assert!(html.contains("<title>alexnet &lt;script&gt;"));
        assert!(html.contains("row-stationary &amp; batch 1"));
        assert!(html.contains("<td>fc&lt;1&gt;</td>"));
        assert!(html.contains("&lt;b&gt;hover&lt;/b&gt;"));
    }

    #[test]
    fn self_contained() {
        let html = page().render();
        let lower = html.to_lowercase();
        for attr in ["src=", "href="] {
            for (i, _) in lower.match_indices(attr) {
                let value = lower[i + attr.len()..].trim_start_matches(['"', '\'']);
                assert!(
                    value.starts_with('#'),
                    "{attr} pointing outside: {}",
                    &html[i..i + 40]
                );
            }
        }
        // The only address: the SVG namespace.
        let addresses: Vec<&str> = lower
            .match_indices("http")
            .map(|(i, _)| &html[i..i + 26])
            .collect();
        assert!(
            addresses
                .iter()
                .all(|a| a.starts_with("http://www.w3.org/2000/svg")),
            "{addresses:?}"
        );
        assert!(!lower.contains("@import") && !lower.contains("url("));
    }

    #[test]
    fn anchors_are_ascii_and_unique() {
        assert_eq!(anchor(0, "Energy per layer"), "s1-energy-per-layer");
        assert_eq!(
            anchor(4, "µ-arch: <PIM> vs. Eyeriss!"),
            "s5-arch-pim-vs-eyeriss"
        );
        assert_eq!(anchor(1, "Σ"), "s2");
    }
}
