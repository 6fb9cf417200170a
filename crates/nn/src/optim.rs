//! Optimisers: SGD with momentum and weight decay, and Adam.

use crate::network::{trainable, Gradients, Network};
use joule_model::NodeId;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// An optimiser updates a network's trainable tensors from their gradients.
pub trait Optimizer {
    /// One update with learning rate `lr`.
    fn step(&mut self, network: &mut Network, grads: &Gradients, lr: f32);
}

/// Which optimiser to build, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Sgd {
        momentum: f32,
        weight_decay: f32,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    pub fn build(self) -> Box<dyn Optimizer + Send> {
        match self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
            } => Box::new(Sgd::new(momentum, weight_decay)),
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Box::new(Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                t: 0,
                m: Vec::new(),
                v: Vec::new(),
            }),
        }
    }
}

/// `v = momentum * v + (g + weight_decay * w); w -= lr * v` (PyTorch's formulation).
pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
    velocity: Vec<Vec<Vec<f32>>>,
}

impl Sgd {
    pub fn new(momentum: f32, weight_decay: f32) -> Sgd {
        Sgd {
            momentum,
            weight_decay,
            velocity: Vec::new(),
        }
    }
}

fn zeros_like(grads: &Gradients) -> Vec<Vec<Vec<f32>>> {
    grads
        .params
        .iter()
        .map(|n| n.iter().map(|g| vec![0.0; g.len()]).collect())
        .collect()
}

/// Values a task of an update from tensors of two tasks' values (vgg-small's FC weights):
/// each value is updated alone, so the split does not change a bit. On one core the update
/// and the scan for non-finite weights after it took 2% of a vgg-small step. Smaller
/// tensors stay on the calling thread, where a hand-off to the pool costs more than they do.
const VALUES_A_TASK: usize = 1 << 15;

/// Calls `update(node, index, weights, gradient, state...)` for every trainable tensor.
fn for_each_trainable(
    network: &mut Network,
    grads: &Gradients,
    mut update: impl FnMut(usize, usize, &mut [f32], &[f32]),
) {
    for (i, node_grads) in grads.params.iter().enumerate() {
        let op = network.graph().node(NodeId(i)).op.clone();
        for (k, g) in node_grads.iter().enumerate() {
            if trainable(&op, k) {
                let w = &mut network.params_mut(NodeId(i))[k].data;
                update(i, k, w, g);
            }
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, network: &mut Network, grads: &Gradients, lr: f32) {
        if self.velocity.is_empty() {
            self.velocity = zeros_like(grads);
        }
        let (momentum, decay) = (self.momentum, self.weight_decay);
        let velocity = &mut self.velocity;
        let update = |w: &mut [f32], g: &[f32], v: &mut [f32]| {
            for ((w, g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = momentum * *v + g + decay * *w;
                *w -= lr * *v;
            }
        };
        for_each_trainable(network, grads, |i, k, w, g| {
            let v = &mut velocity[i][k];
            if w.len() < 2 * VALUES_A_TASK {
                return update(w, g, v);
            }
            w.par_chunks_mut(VALUES_A_TASK)
                .zip(g.par_chunks(VALUES_A_TASK))
                .zip(v.par_chunks_mut(VALUES_A_TASK))
                .for_each(|((w, g), v)| update(w, g, v));
        });
        network.apply_masks();
    }
}

/// Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient.
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    t: i32,
    m: Vec<Vec<Vec<f32>>>,
    v: Vec<Vec<Vec<f32>>>,
}

impl Optimizer for Adam {
    fn step(&mut self, network: &mut Network, grads: &Gradients, lr: f32) {
        if self.m.is_empty() {
            self.m = zeros_like(grads);
            self.v = zeros_like(grads);
        }
        self.t += 1;
        let (b1, b2, eps, decay) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let (ms, vs) = (&mut self.m, &mut self.v);
        let update = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((w, g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g + decay * *w;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        };
        for_each_trainable(network, grads, |i, k, w, g| {
            let (m, v) = (&mut ms[i][k], &mut vs[i][k]);
            if w.len() < 2 * VALUES_A_TASK {
                return update(w, g, m, v);
            }
            w.par_chunks_mut(VALUES_A_TASK)
                .zip(g.par_chunks(VALUES_A_TASK))
                .zip(m.par_chunks_mut(VALUES_A_TASK))
                .zip(v.par_chunks_mut(VALUES_A_TASK))
                .for_each(|(((w, g), m), v)| update(w, g, m, v));
        });
        network.apply_masks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::FullyConnected;
    use joule_model::{Graph, Op, Shape, Value};

    /// An FC layer of 300 x 300 weights (more than two tasks' values) and 300 biases (fewer).
    fn network() -> Network {
        let mut g = Graph::new("wide", Some(Shape::new(1, 300, 1, 1)));
        let fc = FullyConnected {
            outputs: 300,
            bias: true,
        };
        g.push("fc", Op::FullyConnected(fc), &[Value::Input]);
        Network::new(g, 3).unwrap()
    }

    fn gradients(net: &Network, step: usize) -> Gradients {
        let params = net.graph().node(NodeId(0)).params.iter();
        let params = params
            .map(|t| {
                let values = 0..t.data.len();
                values
                    .map(|i| ((i * 7919 + step * 31) % 101) as f32 / 50.0 - 1.0)
                    .collect()
            })
            .collect();
        Gradients {
            params: vec![params],
            input: None,
        }
    }

    /// The layer's weights and biases are `want`, bit for bit.
    fn assert_weights(net: &Network, want: &[Vec<f32>]) {
        for (got, want) in net.graph().node(NodeId(0)).params.iter().zip(want) {
            let same = got
                .data
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same && got.data.len() == want.len());
        }
    }

    /// Every value as its formula gives it, one at a time (what the tasks must equal).
    #[test]
    fn updates_in_tasks_equal_the_formulas_value_by_value() {
        const { assert!(300 * 300 > 2 * VALUES_A_TASK && 300 < 2 * VALUES_A_TASK) };
        let (lr, momentum, decay) = (0.05f32, 0.9f32, 1e-3f32);
        let mut net = network();
        let params = net.graph().node(NodeId(0)).params.iter();
        let mut want: Vec<Vec<f32>> = params.map(|t| t.data.clone()).collect();
        let mut velocity: Vec<Vec<f32>> = want.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut sgd = Sgd::new(momentum, decay);
        for step in 0..3 {
            let grads = gradients(&net, step);
            for ((w, v), g) in want.iter_mut().zip(&mut velocity).zip(&grads.params[0]) {
                for i in 0..w.len() {
                    v[i] = momentum * v[i] + g[i] + decay * w[i];
                    w[i] -= lr * v[i];
                }
            }
            sgd.step(&mut net, &grads, lr);
        }
        assert_weights(&net, &want);

        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut net = network();
        let params = net.graph().node(NodeId(0)).params.iter();
        let mut want: Vec<Vec<f32>> = params.map(|t| t.data.clone()).collect();
        let mut m: Vec<Vec<f32>> = want.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut v = m.clone();
        let mut adam = OptimizerConfig::Adam {
            beta1: b1,
            beta2: b2,
            eps,
            weight_decay: decay,
        }
        .build();
        for step in 0..3 {
            let grads = gradients(&net, step);
            let (c1, c2) = (
                1.0 - b1.powi(step as i32 + 1),
                1.0 - b2.powi(step as i32 + 1),
            );
            for (((w, m), v), g) in want
                .iter_mut()
                .zip(&mut m)
                .zip(&mut v)
                .zip(&grads.params[0])
            {
                for i in 0..w.len() {
                    let g = g[i] + decay * w[i];
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    w[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                }
            }
            adam.step(&mut net, &grads, lr);
        }
        assert_weights(&net, &want);
    }
}
