//! Which nodes a training pass runs as one: a batch norm, the ReLU that alone reads it, and
//! the 2x2 max pooling that alone reads that ([`crate::layers::batch_norm_relu_train`] and
//! its kin); or, with no batch norm, a ReLU and the 2x2 max pooling that alone reads it
//! ([`crate::layers::relu_pool_train`]). The trace then keeps no output for the batch norm,
//! nor for the ReLU when the pooling is fused too: nothing reads them but the fused nodes.

use crate::layers;
use joule_model::ops::Activation;
use joule_model::{Graph, NodeShapes, Op, Value};

/// From node `first`: a batch norm when `bn` (then its ReLU at `first + 1`), else the ReLU;
/// when `pool`, a whole-2x2 max pooling after the ReLU. A chain without a batch norm always
/// has its pooling (a ReLU alone is one pass already).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    pub first: usize,
    pub bn: bool,
    pub pool: bool,
}

impl Chain {
    /// The node whose output the chain's output is.
    pub fn last(&self) -> usize {
        self.first + usize::from(self.bn) + usize::from(self.pool)
    }

    /// Whether node `i`'s output is fused away (not kept in the trace).
    pub fn hides(&self, i: usize) -> bool {
        (self.first..self.last()).contains(&i)
    }
}

/// The chains of `graph` in node order. A node joins one only when the next node alone reads
/// it and is the graph's next node (so the trace's outputs stay in node order), and when
/// neither it nor any node in `kept` (the logits) is the graph output.
pub(crate) fn training_chains(graph: &Graph, shapes: &[NodeShapes], kept: usize) -> Vec<Chain> {
    let nodes = graph.nodes();
    let mut reads = vec![0usize; nodes.len()];
    for node in nodes {
        for v in &node.inputs {
            if let Value::Node(id) = v {
                reads[id.0] += 1;
            }
        }
    }
    for id in graph.output().into_iter().map(|id| id.0).chain([kept]) {
        reads[id] += 1;
    }
    // Node `i + 1` reads only `i`, and nothing else reads `i`.
    let feeds_next = |i: usize| {
        reads[i] == 1
            && nodes
                .get(i + 1)
                .is_some_and(|next| next.inputs == [Value::Node(joule_model::NodeId(i))])
    };
    let relu =
        |i: usize| matches!(nodes.get(i), Some(n) if n.op == Op::Activation(Activation::Relu));
    // The ReLU at `i` feeds a whole-2x2 max pooling.
    let pools = |i: usize| {
        feeds_next(i)
            && match &nodes[i + 1].op {
                Op::Pool(pool) => {
                    let s = &shapes[i + 1];
                    layers::whole_two_by_two(pool, s.inputs[0], s.output)
                }
                _ => false,
            }
    };
    let mut chains = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let chain = if matches!(nodes[i].op, Op::BatchNorm(_)) && relu(i + 1) && feeds_next(i) {
            Chain {
                first: i,
                bn: true,
                pool: pools(i + 1),
            }
        } else if relu(i) && pools(i) {
            Chain {
                first: i,
                bn: false,
                pool: true,
            }
        } else {
            i += 1;
            continue;
        };
        chains.push(chain);
        i = chain.last() + 1;
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::{BatchNorm, Conv, Pool};
    use joule_model::zoo;
    use joule_model::Shape;

    fn bn_chain(first: usize, pool: bool) -> Chain {
        Chain {
            first,
            bn: true,
            pool,
        }
    }

    /// vgg-small: every stage's batch norm, ReLU and pooling.
    #[test]
    fn chains_follow_sole_readers() {
        let g = zoo::build("vgg-small").unwrap();
        let shapes = g.infer(Shape::new(2, 1, 28, 28)).unwrap();
        let logits = g.output().unwrap().0;
        let chains = training_chains(&g, &shapes, logits);
        let bns: Vec<(&str, bool)> = chains
            .iter()
            .map(|c| (g.nodes()[c.first].name.as_str(), c.pool))
            .collect();
        assert_eq!(
            bns,
            [("conv1/bn", true), ("conv2/bn", true), ("conv3/bn", true)]
        );

        // A residual block behind a 3x3 stride-2 pooling: the stem's batch norm and ReLU
        // (not the pooling), the block's first pair; its second batch norm feeds an Add.
        let mut g = Graph::new("block", Some(Shape::new(1, 3, 16, 16)));
        let bn =
            |g: &mut Graph, name: &str, x| g.push(name, Op::BatchNorm(BatchNorm::default()), &[x]);
        let relu =
            |g: &mut Graph, name: &str, x| g.push(name, Op::Activation(Activation::Relu), &[x]);
        let x = g.push("stem", Op::Conv(Conv::new(8, 3, 1, 1)), &[Value::Input]);
        let x = bn(&mut g, "stem/bn", x);
        let x = relu(&mut g, "stem/relu", x);
        let x = g.push("pool", Op::Pool(Pool::max(3, 2, 1)), &[x]);
        let y = g.push("a", Op::Conv(Conv::new(8, 3, 1, 1)), &[x]);
        let y = bn(&mut g, "a/bn", y);
        let y = relu(&mut g, "a/relu", y);
        let y = g.push("b", Op::Conv(Conv::new(8, 3, 1, 1)), &[y]);
        let y = bn(&mut g, "b/bn", y);
        let y = g.push("add", Op::Add, &[y, x]);
        relu(&mut g, "out", y);
        let shapes = g.infer(Shape::new(2, 3, 16, 16)).unwrap();
        let chains = training_chains(&g, &shapes, g.output().unwrap().0);
        assert_eq!(chains, [bn_chain(1, false), bn_chain(5, false)]);
        for c in &chains {
            assert!(matches!(g.nodes()[c.first].op, Op::BatchNorm(_)));
            assert_eq!(g.nodes()[c.first + 1].op, Op::Activation(Activation::Relu));
        }
    }

    /// LeNet-5 (no batch norm): each CONV's ReLU and its 2x2 pooling; the FC layers' ReLUs
    /// (no pooling after them) stay on their own.
    #[test]
    fn a_relu_and_its_pooling_without_batch_norm() {
        let g = zoo::build("lenet5").unwrap();
        let shapes = g.infer(Shape::new(2, 1, 28, 28)).unwrap();
        let chains = training_chains(&g, &shapes, g.output().unwrap().0);
        let names: Vec<(&str, &str)> = chains
            .iter()
            .map(|c| {
                assert!(!c.bn && c.pool);
                let nodes = g.nodes();
                (nodes[c.first].name.as_str(), nodes[c.last()].name.as_str())
            })
            .collect();
        assert_eq!(names, [("conv1/relu", "pool1"), ("conv2/relu", "pool2")]);
    }

    /// A batch norm read twice, or one the loss reads, stays on its own.
    #[test]
    fn a_second_reader_or_the_logits_keep_the_output() {
        let mut g = Graph::new("t", Some(Shape::new(1, 2, 8, 8)));
        let x = g.push("conv", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
        let bn = g.push("bn", Op::BatchNorm(BatchNorm::default()), &[x]);
        let r = g.push("relu", Op::Activation(Activation::Relu), &[bn]);
        g.push("pool", Op::Pool(Pool::max(2, 2, 0)), &[r]);
        let shapes = g.infer(Shape::new(2, 2, 8, 8)).unwrap();
        let all = training_chains(&g, &shapes, 3);
        assert_eq!(all, [bn_chain(1, true)]);
        assert!(all[0].hides(1) && all[0].hides(2) && !all[0].hides(3));
        // The loss reading the ReLU: the pooling is not fused.
        assert_eq!(training_chains(&g, &shapes, 2), [bn_chain(1, false)]);
        // ... nor the batch norm, when it reads that: the ReLU and the pooling then.
        let relu_pool = Chain {
            first: 2,
            bn: false,
            pool: true,
        };
        assert_eq!(training_chains(&g, &shapes, 1), [relu_pool]);
        assert!(relu_pool.hides(2) && !relu_pool.hides(1) && !relu_pool.hides(3));
        assert_eq!(relu_pool.last(), 3);
    }
}
