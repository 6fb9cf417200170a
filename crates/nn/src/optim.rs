//! Optimisers: SGD with momentum and weight decay, and Adam.

use crate::network::{trainable, Gradients, Network};
use joule_model::NodeId;
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
        for_each_trainable(network, grads, |i, k, w, g| {
            for ((w, g), v) in w.iter_mut().zip(g).zip(velocity[i][k].iter_mut()) {
                *v = momentum * *v + g + decay * *w;
                *w -= lr * *v;
            }
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
        for_each_trainable(network, grads, |i, k, w, g| {
            for (((w, g), m), v) in w
                .iter_mut()
                .zip(g)
                .zip(ms[i][k].iter_mut())
                .zip(vs[i][k].iter_mut())
            {
                let g = g + decay * *w;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        });
        network.apply_masks();
    }
}
