//! What every chart kind shares: the palette, font sizes, error mapping, and the hover layer
//! (transparent shapes with an SVG `<title>` over each bar segment and point).

use crate::chart::ChartError;
use crate::notation::TickFormat;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Okabe & Ito (2008), "Color Universal Design": eight colours told apart with every common
/// colour-vision deficiency. Black last (it is also the Pareto front and the diagonal); yellow
/// late (weak on white).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xb2), // blue
    RGBColor(0xe6, 0x9f, 0x00), // orange
    RGBColor(0x00, 0x9e, 0x73), // bluish green
    RGBColor(0xd5, 0x5e, 0x00), // vermillion
    RGBColor(0x56, 0xb4, 0xe9), // sky blue
    RGBColor(0xcc, 0x79, 0xa7), // reddish purple
    RGBColor(0xf0, 0xe4, 0x42), // yellow
    RGBColor(0x00, 0x00, 0x00), // black
];

/// The colour of series `k` (cycling past eight).
pub(crate) fn color(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

pub(crate) const FONT: &str = "sans-serif";
// Sizes as plotters takes them; the SVG gets them divided by 1.24 (22 -> 17.7 px).
pub(crate) const TITLE_SIZE: u32 = 22;
pub(crate) const LABEL_SIZE: u32 = 17;
pub(crate) const TICK_SIZE: u32 = 15;
pub(crate) const LEGEND_SIZE: u32 = 16;

/// Maps a plotters error to [`ChartError::Draw`] for the chart titled `title`.
pub(crate) fn draw_error<E>(title: &str) -> impl Fn(E) -> ChartError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| ChartError::Draw {
        title: title.to_string(),
        source: Box::new(e),
    }
}

/// `lo..hi` of the finite `values`, widened by `pad` of the span on each side (`0..1` if none).
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * pad).max(hi.abs() * 1e-3).max(1e-12);
    (lo - pad, hi + pad)
}

/// The title's font size: [`TITLE_SIZE`], smaller for a title that would not fit `width`
/// pixels with a margin (a long one was cut off at both edges), never below 11.
pub(crate) fn title_size(title: &str, width: u32) -> u32 {
    let room = width.saturating_sub(40) as f64;
    let wide = (FONT, TITLE_SIZE).into_font().box_size(title).map_or(
        0.6 * TITLE_SIZE as f64 * title.chars().count() as f64,
        |(w, _)| w as f64,
    );
    if wide <= room {
        TITLE_SIZE
    } else {
        ((TITLE_SIZE as f64 * room / wide).floor() as u32).max(11)
    }
}

/// A chart with two linear axes (curves, scatter).
pub(crate) type XyChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled chart with linear axes over `x` and `y` on `root`, its mesh and axis labels drawn
/// (tick labels as [`TickFormat`] makes them).
pub(crate) fn xy_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    (x_label, x): (&str, (f64, f64)),
    (y_label, y): (&str, (f64, f64)),
) -> Result<XyChart<'a, 'b>, ChartError> {
    let err = draw_error(title);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, title_size(title, root.dim_in_pixel().0)))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(&err)?;
    let (x_ticks, y_ticks) = (
        TickFormat::linear(x.0, x.1, 10),
        TickFormat::linear(y.0, y.1, 10),
    );
    chart
        .configure_mesh()
        .max_light_lines(4)
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.15))
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| x_ticks.label(*v))
        .y_label_formatter(&|v| y_ticks.label(*v))
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .draw()
        .map_err(&err)?;
    Ok(chart)
}

/// The legend box at `position`.
pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut XyChart<'a, 'b>,
    title: &str,
    position: SeriesLabelPosition,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(position)
        .label_font((FONT, LEGEND_SIZE))
        .draw()
        .map_err(draw_error(title))
}

/// The tooltip of a point: the series, then each axis with the exact value.
pub(crate) fn point_title(
    series: &str,
    (x_label, x): (&str, f64),
    (y_label, y): (&str, f64),
) -> String {
    format!("{series}\n{x_label}: {}\n{y_label}: {}", exact(x), exact(y))
}

/// `points` sorted by x (then y), non-finite points dropped: the order a line joins them in.
pub(crate) fn by_x(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    sorted
}

/// `text` safe inside XML (and HTML) text and attribute values.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An exact value for a tooltip: Rust's shortest round-trip form, with [`crate::eng`] beside it
/// when that reads differently (`1234567.8 (1.23 M)`).
pub(crate) fn exact(value: f64) -> String {
    let short = crate::eng(value);
    let full = format!("{value}");
    if short == full {
        full
    } else {
        format!("{full} ({short})")
    }
}

/// Invisible shapes with a `<title>` child, drawn above the chart: hovering shows the title.
/// plotters writes no `<title>`, so the shapes are collected while drawing (in backend pixel
/// coordinates) and spliced in before `</svg>` once the document is complete.
#[derive(Debug, Default)]
pub(crate) struct Hovers {
    shapes: Vec<String>,
}

impl Hovers {
    /// A rectangle between two corners (any order).
    pub(crate) fn rect(&mut self, a: (i32, i32), b: (i32, i32), title: &str) {
        let (x, y) = (a.0.min(b.0), a.1.min(b.1));
        let (w, h) = ((a.0 - b.0).abs(), (a.1 - b.1).abs());
        self.shapes.push(format!(
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fff" fill-opacity="0"><title>{}</title></rect>"##,
            escape_xml(title)
        ));
    }

    /// A circle of radius `r` around `center`.
    pub(crate) fn circle(&mut self, center: (i32, i32), r: i32, title: &str) {
        self.shapes.push(format!(
            r##"<circle cx="{}" cy="{}" r="{r}" fill="#fff" fill-opacity="0"><title>{}</title></circle>"##,
            center.0,
            center.1,
            escape_xml(title)
        ));
    }

    /// `svg` with the shapes inserted before its closing tag.
    pub(crate) fn splice(self, mut svg: String) -> String {
        if self.shapes.is_empty() {
            return svg;
        }
        let mut layer = String::from("<g class=\"hover\">\n");
        for shape in &self.shapes {
            layer.push_str(shape);
            layer.push('\n');
        }
        layer.push_str("</g>\n");
        match svg.rfind("</svg>") {
            Some(end) => svg.insert_str(end, &layer),
            None => svg.push_str(&layer),
        }
        svg
    }
}

/// The text of every `<text>` element of `svg`, trimmed (tests look for labels with it).
#[cfg(test)]
pub(crate) fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let inner = t.split_once('>').map_or("", |(_, rest)| rest);
            inner
                .split("</text>")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A title too long for the chart is set smaller until it fits (it was cut off at both
    /// edges); a short one keeps the full size.
    #[test]
    fn long_titles_shrink_to_fit() {
        crate::font::ensure_font().unwrap();
        assert_eq!(title_size("energy per layer", 800), TITLE_SIZE);
        let long = "mobilenetv3-28-fashion on eyeriss: accuracy vs energy per inference \
                    (original: 35768.1 thousand MAC-energy units)";
        let size = title_size(long, 800);
        assert!(size < TITLE_SIZE, "{size}");
        let width = (FONT, size).into_font().box_size(long).unwrap().0;
        assert!(width <= 760, "{width} px at size {size}");
    }

    #[test]
    fn hovers_escape_and_go_before_the_closing_tag() {
        let mut h = Hovers::default();
        h.rect((10, 40), (4, 20), "a < b & \"c\"");
        h.circle((3, 4), 5, "p");
        let svg = h.splice("<svg>\n<rect/>\n</svg>\n".into());
        assert!(svg.ends_with("</g>\n</svg>\n"), "{svg}");
        assert!(
            svg.contains(r#"x="4" y="20" width="6" height="20""#),
            "{svg}"
        );
        assert!(svg.contains("<title>a &lt; b &amp; &quot;c&quot;</title>"));
        assert!(svg.contains(r#"<circle cx="3" cy="4" r="5""#));
    }

    #[test]
    fn exact_values_keep_every_digit() {
        assert_eq!(exact(2.0), "2");
        assert_eq!(exact(1234567.891), "1234567.891 (1.23 M)");
        assert_eq!(exact(0.1 + 0.2), "0.30000000000000004 (300 m)");
    }
}
