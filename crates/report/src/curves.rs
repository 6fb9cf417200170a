//! Line charts of trade-offs such as accuracy against energy, rendered to an SVG string by
//! [`curves_svg`]: one line per [`Curve`] (points joined in x order), and optionally a Pareto
//! [`Front`] drawn as a step line through the non-dominated points ([`pareto_front`]).

use crate::chart::ChartError;
use crate::font::ensure_font;
use crate::style::{self, by_x, draw_error, point_title, Hovers};
use plotters::prelude::*;

/// One line: a name and its `(x, y)` points, joined in x order whatever order they come in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curve {
    /// The legend name.
    pub name: String,
    /// `(x, y)` in the axes' units; points with a NaN or infinite coordinate are skipped.
    pub points: Vec<(f64, f64)>,
    /// Dashed (for baselines).
    pub dashed: bool,
}

/// A Pareto front over candidate points: lower x (energy, latency) is better; higher y is better
/// when `maximize_y` (accuracy), lower otherwise (error). Only the non-dominated points are
/// drawn, marked, and joined by a step line: for every x, the best y reachable at that cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Front {
    /// The legend name, e.g. `Pareto front`.
    pub name: String,
    /// Candidate points; the dominated ones are not drawn.
    pub points: Vec<(f64, f64)>,
    /// Higher y is better (accuracy); otherwise lower y is (error, energy).
    pub maximize_y: bool,
}

/// A chart of curves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curves {
    /// What the chart shows (no file names).
    pub title: String,
    /// The x quantity and its unit, e.g. `energy (µJ)`.
    pub x_label: String,
    /// The y quantity and its unit, e.g. `top-1 accuracy (%)`.
    pub y_label: String,
    /// One line each, coloured in palette order.
    pub curves: Vec<Curve>,
    /// A Pareto front drawn over the curves, in black.
    pub front: Option<Front>,
}

/// The non-dominated points of `points`, by increasing x: a point stays unless another has no
/// larger x and a y at least as good (larger when `maximize_y`, else smaller), better in one of
/// the two. Duplicates appear once; points with a NaN or infinite coordinate are ignored.
///
/// ```
/// use joule_report::curves::pareto_front;
///
/// let front = pareto_front(&[(3.0, 98.0), (1.0, 95.0), (2.0, 94.0)], true);
/// assert_eq!(front, [(1.0, 95.0), (3.0, 98.0)]);
/// ```
pub fn pareto_front(points: &[(f64, f64)], maximize_y: bool) -> Vec<(f64, f64)> {
    let better = |a: f64, b: f64| if maximize_y { a > b } else { a < b };
    let mut sorted = by_x(points);
    // Same x: the best y first, so the others are dominated by it.
    sorted.sort_by(|a, b| {
        let y = if maximize_y {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        a.0.total_cmp(&b.0).then(y)
    });
    let mut front: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        // Every kept point has x <= p.x: p survives only with a strictly better y.
        if front.last().is_none_or(|last| better(p.1, last.1)) {
            front.push(p);
        }
    }
    front
}

/// The step line through a front sorted by x: from each point, across to the next point's x,
/// then up (or down) to it.
fn steps(front: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut line = Vec::with_capacity(2 * front.len());
    for (i, &p) in front.iter().enumerate() {
        if i > 0 {
            line.push((p.0, front[i - 1].1));
        }
        line.push(p);
    }
    line
}

/// Draws `chart` (800 x 520) and returns the SVG document. Every point carries a `<title>`
/// with its curve and exact coordinates (shown on hover).
pub fn curves_svg(chart: &Curves) -> Result<String, ChartError> {
    ensure_font()?;
    let front = chart
        .front
        .as_ref()
        .map(|f| (f, pareto_front(&f.points, f.maximize_y)));
    let all = || {
        chart
            .curves
            .iter()
            .flat_map(|c| c.points.iter().copied())
            .chain(front.iter().flat_map(|(_, p)| p.iter().copied()))
    };
    let x = style::padded_range(all().map(|p| p.0), 0.05);
    let y = style::padded_range(all().map(|p| p.1), 0.05);
    let err = draw_error(&chart.title);
    let mut svg = String::new();
    let mut hovers = Hovers::default();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut plot = style::xy_chart(
            &root,
            &chart.title,
            (&chart.x_label, x),
            (&chart.y_label, y),
        )?;
        let axes = |p: (f64, f64)| ((chart.x_label.as_str(), p.0), (chart.y_label.as_str(), p.1));
        for (k, curve) in chart.curves.iter().enumerate() {
            let color = style::color(k);
            let line_style = color.stroke_width(2);
            let points = by_x(&curve.points);
            let series = if curve.dashed {
                plot.draw_series(DashedLineSeries::new(points.clone(), 6, 4, line_style))
            } else {
                plot.draw_series(LineSeries::new(points.clone(), line_style))
            };
            let dashed = curve.dashed;
            series
                .map_err(&err)?
                .label(curve.name.clone())
                .legend(move |(x, y)| {
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 7, y)], line_style)
                    } else {
                        PathElement::new(vec![(x, y), (x + 18, y)], line_style)
                    }
                });
            plot.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(&err)?;
            for &p in &points {
                let (px, py) = axes(p);
                hovers.circle(plot.backend_coord(&p), 6, &point_title(&curve.name, px, py));
            }
        }
        if let Some((spec, points)) = &front {
            let black = BLACK.stroke_width(2);
            plot.draw_series(LineSeries::new(steps(points), black))
                .map_err(&err)?;
            plot.draw_series(points.iter().map(|&p| Circle::new(p, 5, black)))
                .map_err(&err)?
                .label(spec.name.clone())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (18, 0)], black)
                        + Circle::new((9, 0), 4, black)
                });
            for &p in points {
                let (px, py) = axes(p);
                hovers.circle(plot.backend_coord(&p), 7, &point_title(&spec.name, px, py));
            }
        }
        style::legend(&mut plot, &chart.title, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(&err)?;
    }
    Ok(hovers.splice(svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::style::texts;

    #[test]
    fn pareto_front_by_hand() {
        // x energy (lower is better), y accuracy (higher is better).
        let points = [
            (3.0, 98.0),
            (2.0, 97.5),
            (1.0, 95.0),
            (2.5, 96.0), // (2, 97.5) is cheaper and better
            (1.0, 94.0), // (1, 95) is as cheap and better
            (4.0, 98.0), // (3, 98) is cheaper and as good
            (3.0, 98.0), // a duplicate
            (f64::NAN, 99.0),
            (0.5, f64::INFINITY),
        ];
        assert_eq!(
            pareto_front(&points, true),
            [(1.0, 95.0), (2.0, 97.5), (3.0, 98.0)]
        );
        // y error (lower is better): the cheapest point with the lowest error wins outright.
        assert_eq!(pareto_front(&points, false), [(1.0, 94.0)]);
        let errors = [(1.0, 0.3), (2.0, 0.2), (2.0, 0.25), (3.0, 0.2), (4.0, 0.1)];
        assert_eq!(
            pareto_front(&errors, false),
            [(1.0, 0.3), (2.0, 0.2), (4.0, 0.1)]
        );
        assert!(pareto_front(&[], true).is_empty());
    }

    #[test]
    fn steps_go_across_then_up() {
        assert_eq!(
            steps(&[(1.0, 95.0), (2.0, 97.5), (3.0, 98.0)]),
            [
                (1.0, 95.0),
                (2.0, 95.0),
                (2.0, 97.5),
                (3.0, 97.5),
                (3.0, 98.0)
            ]
        );
        assert_eq!(steps(&[(1.0, 2.0)]), [(1.0, 2.0)]);
    }

    fn chart() -> Curves {
        Curves {
            title: "accuracy vs energy".into(),
            x_label: "energy (µJ)".into(),
            y_label: "accuracy (%)".into(),
            curves: vec![
                Curve {
                    name: "fc1".into(),
                    // History order, not x order.
                    points: vec![(3.0, 98.0), (1.0, 95.0), (2.0, 97.5)],
                    dashed: false,
                },
                Curve {
                    name: "fc1 baseline".into(),
                    points: vec![(3.0, 98.0), (2.0, 90.0)],
                    dashed: true,
                },
            ],
            front: Some(Front {
                name: "Pareto front".into(),
                points: vec![(3.0, 98.0), (1.0, 95.0), (2.0, 97.5), (2.0, 90.0)],
                maximize_y: true,
            }),
        }
    }

    #[test]
    fn lines_legend_front_and_hover_titles() {
        let svg = curves_svg(&chart()).unwrap();
        assert!(svg.starts_with("<svg"));
        let texts = texts(&svg);
        for name in [
            "fc1",
            "fc1 baseline",
            "Pareto front",
            "energy (µJ)",
            "accuracy vs energy",
        ] {
            assert!(
                texts.iter().any(|t| t == name),
                "{name} missing from {texts:?}"
            );
        }
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() >= 3);
        // 3 + 2 curve points and 3 front points, each with its exact coordinates.
        assert_eq!(svg.matches("<title>").count(), 8, "{svg}");
        assert!(svg.contains("<title>fc1\nenergy (µJ): 2\naccuracy (%): 97.5</title>"));
        assert!(svg.contains("<title>Pareto front\nenergy (µJ): 1\naccuracy (%): 95</title>"));
        // The dominated (2, 90) is on the baseline but not on the front.
        assert!(!svg.contains("<title>Pareto front\nenergy (µJ): 2\naccuracy (%): 90</title>"));
    }

    /// The x pixel coordinates of every `<polyline>`'s points.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline")
            .skip(1)
            .map(|l| {
                let points = l
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                points
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn lines_run_left_to_right_and_the_front_is_a_staircase() {
        let svg = curves_svg(&chart()).unwrap();
        let lines = polylines(&svg);
        // fc1 (3 points), the front (5 points: 3 + 2 corners); the dashed baseline is segments.
        let fc1 = lines.iter().find(|l| l.len() == 3).expect("fc1 line");
        assert!(fc1.windows(2).all(|w| w[0].0 < w[1].0), "zig-zag: {fc1:?}");
        let front = lines.iter().find(|l| l.len() == 5).expect("front line");
        for w in front.windows(2) {
            let horizontal = (w[0].1 - w[1].1).abs() < 0.5;
            let vertical = (w[0].0 - w[1].0).abs() < 0.5;
            assert!(horizontal ^ vertical, "not a step: {front:?}");
        }
    }
}
