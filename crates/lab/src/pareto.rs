//! The Pareto front of a trade-off: the points no other point beats on both cost (x, lower
//! is better) and quality (y, higher is better).

/// The non-dominated points of `points`, by increasing cost (and so increasing quality).
/// Non-finite points are ignored.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    // Cheapest first; among equal costs the best quality first.
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if front.last().is_none_or(|last| p.1 > last.1) {
            front.push(p);
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_points_nothing_beats() {
        // (0.5, 97) beats (0.6, 96); (0.7, 97) ties 97 at a higher cost; (1.0, 98) is the best.
        let points = [
            (1.0, 98.0),
            (0.6, 96.0),
            (0.5, 97.0),
            (0.7, 97.0),
            (0.3, 90.0),
            (f64::NAN, 99.0),
        ];
        assert_eq!(
            pareto_front(&points),
            vec![(0.3, 90.0), (0.5, 97.0), (1.0, 98.0)]
        );
        assert!(pareto_front(&[]).is_empty());
    }
}
