//! The accuracy-energy Pareto set across layers: which layer to simplify, and how far, for
//! the accuracy one needs (the seed's point is that the answer changes with the accuracy).

use super::sweep::LayerSweep;
use serde::{Deserialize, Serialize};

/// A non-dominated configuration on one hardware model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoPoint {
    pub hardware: String,
    pub layer: String,
    pub kept: usize,
    /// Test accuracy (reported only).
    pub accuracy: f64,
    /// Validation accuracy: what the front is built on (`None` in summaries made before).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    pub params: usize,
    pub energy: f64,
}

/// The configurations within the threshold, over all `sweeps`, that no other beats on both
/// energy (on hardware `index`) and validation accuracy (the test split never selects);
/// by increasing energy.
pub fn pareto(sweeps: &[LayerSweep], index: usize) -> Vec<ParetoPoint> {
    let mut candidates: Vec<ParetoPoint> = sweeps
        .iter()
        .flat_map(|s| {
            s.points.iter().filter(|p| p.within).filter_map(move |p| {
                let e = p.energy.get(index)?;
                Some(ParetoPoint {
                    hardware: e.hardware.clone(),
                    layer: s.layer.clone(),
                    kept: p.kept,
                    accuracy: p.accuracy,
                    validation_accuracy: Some(p.validation_accuracy?),
                    params: p.params,
                    energy: e.total,
                })
            })
        })
        .collect();
    let v = |p: &ParetoPoint| p.validation_accuracy.unwrap_or(f64::NEG_INFINITY);
    candidates.sort_by(|a, b| a.energy.total_cmp(&b.energy).then(v(b).total_cmp(&v(a))));
    let mut front: Vec<ParetoPoint> = Vec::new();
    for c in candidates {
        // Sorted by energy: keep a point only if it is more accurate than every cheaper one.
        if front.last().is_none_or(|last| v(&c) > v(last)) {
            front.push(c);
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::super::sweep::{Baseline, Energy, Point};
    use super::*;

    fn point(kept: usize, accuracy: f64, energy: f64) -> Point {
        Point {
            kept,
            accuracy,
            validation_accuracy: Some(accuracy),
            params: kept,
            energy: vec![Energy {
                hardware: "hw".into(),
                unit: "pJ".into(),
                mac: 0.0,
                rf: 0.0,
                array: 0.0,
                buffer: 0.0,
                dram: 0.0,
                total: energy,
            }],
            reconstruction_error: 0.0,
            within: true,
            baseline: Baseline {
                accuracy: 0.0,
                reconstruction_error: 0.0,
            },
            neurons: vec![],
        }
    }

    fn sweep(layer: &str, points: Vec<Point>) -> LayerSweep {
        let mut s = LayerSweep::empty(layer);
        s.points = points;
        s
    }

    #[test]
    fn front_keeps_only_non_dominated_points_across_layers() {
        let a = sweep(
            "fc1",
            vec![
                point(3, 0.98, 10.0),
                point(2, 0.95, 6.0),
                point(1, 0.90, 5.0),
            ],
        );
        let mut b = sweep("fc2", vec![point(3, 0.97, 8.0), point(2, 0.96, 9.0)]);
        // Past the threshold: never on the front.
        b.points.push(Point {
            within: false,
            ..point(1, 0.99, 1.0)
        });
        let front = pareto(&[a, b], 0);
        let got: Vec<(&str, usize)> = front.iter().map(|p| (p.layer.as_str(), p.kept)).collect();
        // (fc2, 2) is dominated by (fc2, 3): cheaper and more accurate.
        assert_eq!(got, vec![("fc1", 1), ("fc1", 2), ("fc2", 3), ("fc1", 3)]);
    }

    #[test]
    fn the_front_is_built_on_validation_accuracy_and_never_on_test_accuracy() {
        // Validation says fc1 p=2 (0.95) beats fc1 p=1 (0.90); the test accuracies say the
        // opposite and are scrambled: the front must not change.
        let with_test = |tests: [f64; 3]| {
            let mut s = sweep(
                "fc1",
                vec![
                    point(3, 0.98, 10.0),
                    point(2, 0.95, 6.0),
                    point(1, 0.90, 5.0),
                ],
            );
            for (p, t) in s.points.iter_mut().zip(tests) {
                p.accuracy = t;
            }
            pareto(&[s], 0)
        };
        let kept = |f: &[ParetoPoint]| f.iter().map(|p| p.kept).collect::<Vec<_>>();
        let honest = with_test([0.98, 0.95, 0.90]);
        let scrambled = with_test([0.10, 0.50, 0.99]);
        assert_eq!(kept(&honest), vec![1, 2, 3]);
        assert_eq!(kept(&scrambled), vec![1, 2, 3]);
        // The test accuracy is still what the front reports.
        assert_eq!(scrambled[2].accuracy, 0.10);
        assert_eq!(scrambled[2].validation_accuracy, Some(0.98));
        // A point with no validation accuracy (an old summary) is never on a front.
        let mut old = sweep("fc1", vec![point(3, 0.98, 10.0)]);
        old.points[0].validation_accuracy = None;
        assert!(pareto(&[old], 0).is_empty());
    }
}
