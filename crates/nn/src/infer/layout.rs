//! Which steps' outputs the inference path keeps in channel blocks
//! ([`crate::kernels::blocks`]) rather than planes. A run of depthwise and 1x1 layers (an
//! inverted residual block, with its addition) then passes blocks from layer to layer: the
//! depthwise kernel reads and writes them without the transposes in and out of planes it
//! pays on planes, and the 1x1 kernel reads its ifmap where it lies. The blocked kernel
//! (3x3 and strided layers, with a max pooling after them) reads blocks as it reads planes
//! (only its taps' offsets differ) and writes them as its own output layout, and the
//! element-wise steps (additions, activations) take them as they are, so a residual
//! network passes blocks from its first layer to its global pooling, which reads them.

use super::Step;
use crate::layers;
use joule_model::ops::PoolKind;
use joule_model::{Node, NodeShapes, Op, Value};

/// What a step does with channel blocks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads and writes either layout ([`layers::conv_forward_blocks`]).
    Either,
    /// Reads planes, writes either ([`layers::writes_channel_blocks`]).
    Writes,
    /// Element-wise over inputs of the output's shape: any layout, the same for all.
    Same,
    /// Reads either, writes planes (a global pooling).
    Reads,
    /// Planes only.
    Planes,
}

/// For every node, whether its output (a step's: the step's last node) is kept in channel
/// blocks: where the step can write
/// them, every reader can read them, and each addition's inputs and output agree; never the
/// network's output. `plain(first)`: the step of node `first` runs on planes whatever it
/// is (fake-quantized weights); `output`: the network's output node.
pub(super) fn plan(
    nodes: &[Node],
    steps: &[Step],
    shapes: &[NodeShapes],
    output: usize,
    plain: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let mut step_of = vec![usize::MAX; nodes.len()];
    for (s, step) in steps.iter().enumerate() {
        step_of[step.last] = s;
    }
    let producer = |v: &Value| match v {
        Value::Node(id) => Some(step_of[id.0]),
        Value::Input => None,
    };
    // The steps whose output step `s` reads, but for a residual operand.
    let producers = |s: usize| nodes[steps[s].first].inputs.iter().map(producer);
    // The step whose output is step `s`'s residual operand (`Some(None)`: the network's
    // input), read in the layout of the step's output.
    let residual = |s: usize| steps[s].residual.map(|r| producer(&r.other));
    // A CONV step's pooling, if any, runs on blocks where it is a max pooling (on the
    // blocked kernel's layers only).
    let max_pooled = |step: &Step| match step.pool.map(|j| &nodes[j].op) {
        None => true,
        Some(Op::Pool(pool)) => pool.kind == PoolKind::Max,
        Some(_) => false,
    };
    let kinds: Vec<Kind> = steps
        .iter()
        .map(|step| {
            let (node, shape) = (&nodes[step.first], &shapes[step.first]);
            match (&node.op, shape.loop_nest) {
                _ if plain(step.first) => Kind::Planes,
                (Op::Conv(conv), Some(nest))
                    if step.pool.is_none() && layers::channel_blocks(conv, &nest) =>
                {
                    Kind::Either
                }
                (Op::Conv(conv), Some(nest))
                    if max_pooled(step) && layers::reads_channel_blocks(conv, &nest) =>
                {
                    Kind::Either
                }
                (Op::Conv(conv), Some(nest))
                    if max_pooled(step) && layers::writes_channel_blocks(conv, &nest) =>
                {
                    Kind::Writes
                }
                (Op::Add, _) if shape.input_dims.iter().all(|d| *d == shape.output_dims) => {
                    Kind::Same
                }
                (Op::Activation(_), _) => Kind::Same,
                (Op::GlobalPool { .. }, _) => Kind::Reads,
                _ => Kind::Planes,
            }
        })
        .collect();
    // Each step's readers, and whether they read it as a residual (in either layout).
    let mut readers = vec![Vec::new(); steps.len()];
    for s in 0..steps.len() {
        for p in producers(s).flatten() {
            readers[p].push((s, false));
        }
        if let Some(Some(p)) = residual(s) {
            readers[p].push((s, true));
        }
    }
    let mut blocks: Vec<bool> = (0..steps.len())
        .map(|s| {
            !matches!(kinds[s], Kind::Planes | Kind::Reads)
                && steps[s].last != output
                && !readers[s].is_empty()
                && readers[s].iter().all(|&(r, residual)| {
                    residual || matches!(kinds[r], Kind::Either | Kind::Same | Kind::Reads)
                })
        })
        .collect();
    // An addition's inputs and output in one layout, a step's residual operand and output
    // too: planes for all where one is in planes (the network's input among them), until
    // nothing changes.
    loop {
        let mut changed = false;
        for s in 0..steps.len() {
            if let Some(p) = residual(s) {
                if blocks[s] != p.is_some_and(|p| blocks[p]) {
                    blocks[s] = false;
                    p.into_iter().for_each(|p| blocks[p] = false);
                    changed = true;
                }
            }
        }
        for s in (0..steps.len()).filter(|&s| kinds[s] == Kind::Same) {
            let inputs: Vec<Option<usize>> = producers(s).collect();
            let all = inputs.iter().all(|p| p.is_some_and(|p| blocks[p])) && blocks[s];
            if !all && (blocks[s] || inputs.iter().flatten().any(|&p| blocks[p])) {
                blocks[s] = false;
                inputs.into_iter().flatten().for_each(|p| blocks[p] = false);
                changed = true;
            }
        }
        if !changed {
            let mut of_node = vec![false; nodes.len()];
            for (step, b) in steps.iter().zip(blocks) {
                of_node[step.last] = b;
            }
            return of_node;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::{Activation, BatchNorm, Conv, FullyConnected, Pool, PoolKind};
    use joule_model::{zoo, Graph, Shape};

    /// The steps kept in blocks, by their first node's name.
    fn blocked(name: &str) -> Vec<String> {
        blocked_in(zoo::build(name).unwrap())
    }

    fn blocked_in(graph: Graph) -> Vec<String> {
        let input = Shape {
            n: 2,
            ..graph.resolve_input(None).unwrap()
        };
        let shapes = graph.infer(input).unwrap();
        let nodes = graph.nodes();
        let (steps, _) = super::super::schedule(nodes, true);
        let output = graph.output().unwrap().0;
        let blocks = plan(nodes, &steps, &shapes, output, |_| false);
        steps
            .iter()
            .filter(|s| blocks[s.last])
            .map(|s| nodes[s.first].name.clone())
            .collect()
    }

    /// MobileNet-V2-style at 28x28: every depthwise and 1x1 layer after the stem writes
    /// blocks, the head too (the global pooling reads them), and so do the projections that
    /// take in the residual additions (their other operands in blocks too).
    #[test]
    fn inverted_residual_blocks_pass_channel_blocks() {
        if !crate::kernels::pointwise::runs(8, 8) {
            panic!("this test needs AVX2 and FMA: channel blocks run only there");
        }
        let got = blocked("mobilenetv2-28");
        let want = stem_blocks().into_iter().chain([
            "block1/dw",
            "block1/project",
            "block2/expand",
            "block2/dw",
            "block2/project",
            "block3/expand",
            "block3/dw",
            "block3/project",
            "block4/expand",
            "block4/dw",
            "block4/project",
            "head",
        ]);
        assert_eq!(got, want.collect::<Vec<_>>());
    }

    /// The stem of the MobileNet-style zoo models (3x3 over one channel, stride 1) when it
    /// writes blocks: on AVX-512 machines, where it runs on the blocked kernel (the AVX2
    /// machines run it on the direct kernel, on planes).
    fn stem_blocks() -> Option<&'static str> {
        (!crate::sgemm::avx2_only()).then_some("stem")
    }

    /// MobileNet-V3-style: a squeeze-excitation's pooling and product read the depthwise
    /// layer's output (planes only), so that layer writes planes, while the expansion before
    /// it writes blocks and the projection after it reads planes and writes blocks (taking in
    /// the addition after it). The excitation's first 1x1 layer writes blocks for the second where it has
    /// whole blocks of filters (24 of block 4's, not 18 of block 3's or 4 of block 1's).
    #[test]
    fn squeeze_excitation_keeps_its_input_in_planes() {
        if !crate::kernels::pointwise::runs(8, 8) {
            panic!("this test needs AVX2 and FMA: channel blocks run only there");
        }
        let got = blocked("mobilenetv3-28");
        let want = stem_blocks().into_iter().chain([
            "block1/project",
            "block2/expand",
            "block2/dw",
            "block2/project",
            "block3/expand",
            "block3/project",
            "block4/expand",
            "block4/se/fc1",
            "block4/project",
            "head",
        ]);
        assert_eq!(got, want.collect::<Vec<_>>());
    }

    /// A stem CONV over 3 channels at stride 2 (the blocked kernel on planes) writes blocks
    /// for the depthwise layer after it; that layer's reader, a 1x1 layer, takes blocks; the
    /// 1x1 layer writes blocks for a global pooling, which writes planes (the output).
    #[test]
    fn a_stem_writes_blocks_for_a_depthwise_layer() {
        if !crate::kernels::pointwise::runs(8, 8) {
            panic!("this test needs AVX2 and FMA: channel blocks run only there");
        }
        let mut g = Graph::new("stem", Some(Shape::new(1, 3, 17, 17)));
        let stem = g.push("stem", Op::Conv(Conv::new(16, 3, 2, 1)), &[Value::Input]);
        let act = g.push("act", Op::Activation(Activation::Relu6), &[stem]);
        let dw = g.push(
            "dw",
            Op::Conv(Conv::new(16, 3, 1, 1).with_groups(16)),
            &[act],
        );
        let pw = g.push("pw", Op::Conv(Conv::new(8, 1, 1, 0)), &[dw]);
        let kind = PoolKind::Average;
        g.push("pool", Op::GlobalPool { kind }, &[pw]);
        assert_eq!(blocked_in(g), ["stem", "dw", "pw"]);
    }

    /// A residual network on 7x7 maps (where every 3x3 layer runs on the blocked kernel,
    /// Winograd excluded on every machine): a stem with its max pooling, an identity block,
    /// a block at stride 2 with a 1x1 shortcut, then global pooling and an FC layer.
    fn residual() -> Graph {
        let mut g = Graph::new("residual", Some(Shape::new(1, 8, 14, 14)));
        let conv = |g: &mut Graph, name: &str, m: usize, k: usize, st: usize, x: Value| {
            let c = g.push(name, Op::Conv(Conv::new(m, k, st, k / 2)), &[x]);
            let bn = g.push(
                format!("{name}/bn"),
                Op::BatchNorm(BatchNorm::default()),
                &[c],
            );
            (c, bn)
        };
        let relu = |g: &mut Graph, name: &str, x: Value| {
            g.push(name, Op::Activation(Activation::Relu), &[x])
        };
        let (_, bn) = conv(&mut g, "stem", 16, 3, 1, Value::Input);
        let r = relu(&mut g, "stem/relu", bn);
        let x = g.push("stem/pool", Op::Pool(Pool::max(2, 2, 0)), &[r]);
        let (_, bn) = conv(&mut g, "b1/conv1", 16, 3, 1, x);
        let r = relu(&mut g, "b1/relu1", bn);
        let (_, bn) = conv(&mut g, "b1/conv2", 16, 3, 1, r);
        let add = g.push("b1/add", Op::Add, &[bn, x]);
        let x = relu(&mut g, "b1/relu", add);
        let (_, bn) = conv(&mut g, "b2/conv1", 32, 3, 2, x);
        let r = relu(&mut g, "b2/relu1", bn);
        let (_, bn) = conv(&mut g, "b2/conv2", 32, 3, 1, r);
        let (_, short) = conv(&mut g, "b2/short", 32, 1, 2, x);
        let add = g.push("b2/add", Op::Add, &[bn, short]);
        let x = relu(&mut g, "b2/relu", add);
        let kind = PoolKind::Average;
        let x = g.push("pool", Op::GlobalPool { kind }, &[x]);
        let x = g.push("flatten", Op::Flatten, &[x]);
        let fc = FullyConnected {
            outputs: 10,
            bias: true,
        };
        g.push("fc", Op::FullyConnected(fc), &[x]);
        g
    }

    /// Every step of [`residual`] up to its global pooling keeps blocks: the blocked kernel
    /// reads them (the stem writes them through its max pooling), the additions are taken in
    /// by the CONV steps before them (`b1/conv2`'s, and `b2/short`'s, computed after
    /// `b2/conv2`), with the ReLU after them, and read their other operand in blocks, the
    /// pooling reads them.
    #[test]
    fn residual_blocks_pass_channel_blocks() {
        let want = [
            "stem", "b1/conv1", "b1/conv2", "b2/conv1", "b2/conv2", "b2/short",
        ];
        assert_eq!(blocked_in(residual()), want);
        let g = residual();
        let (steps, _) = super::super::schedule(g.nodes(), true);
        let name = |i: usize| g.nodes()[i].name.as_str();
        let taken: Vec<_> = steps
            .iter()
            .filter_map(|s| {
                s.residual
                    .map(|r| (name(s.first), name(r.add), name(s.last)))
            })
            .collect();
        let want = [
            ("b1/conv2", "b1/add", "b1/relu"),
            ("b2/short", "b2/add", "b2/relu"),
        ];
        assert_eq!(taken, want);
    }

    /// [`residual`] through the inference path (its channel blocks) computes what a trace
    /// computes, bit for bit, at batch 3 and 1 (the blocked kernel's halves).
    #[test]
    fn residual_forward_equals_the_trace_bit_for_bit() {
        let net = crate::Network::new(residual(), 5).unwrap();
        forward_is_the_trace(&net, &[(3, 1), (1, 2)]);
    }

    /// `net`'s inference pass computes what its trace computes, bit for bit, on seeded
    /// inputs of each `(batch, seed)`.
    fn forward_is_the_trace(net: &crate::Network, batches: &[(usize, u64)]) {
        let last = net.graph().output().unwrap();
        for &(n, seed) in batches {
            let mut rng = crate::Rng::new(seed);
            let shape = Shape {
                n,
                ..net.input_shape().unwrap()
            };
            let data = (0..shape.elements()).map(|_| rng.uniform() - 0.5).collect();
            let x = crate::FeatureMap::new(shape, data).unwrap();
            let got = net.forward(&x).unwrap();
            let want = net.trace(&x).unwrap().output(last);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.data), bits(&want.data), "batch {n}");
        }
    }

    /// Additions taken into CONV steps in each way the step runs them: one whose other
    /// operand is a block in blocks, with a sigmoid after it (not a clipping activation:
    /// run after the tile's epilogue), and one adding the network's input as the first
    /// operand into the network's output (planes: added after the layer), at batch 2 and 1;
    /// the values a trace computes, bit for bit.
    #[test]
    fn additions_taken_into_conv_steps_give_the_trace_bits() {
        let mut g = Graph::new("sums", Some(Shape::new(1, 16, 9, 9)));
        let c1 = g.push("c1", Op::Conv(Conv::new(16, 3, 1, 1)), &[Value::Input]);
        let r1 = g.push("r1", Op::Activation(Activation::Relu), &[c1]);
        let c2 = g.push("c2", Op::Conv(Conv::new(16, 3, 1, 1)), &[r1]);
        let bn = g.push("c2/bn", Op::BatchNorm(BatchNorm::default()), &[c2]);
        let add = g.push("add2", Op::Add, &[r1, bn]);
        let s2 = g.push("s2", Op::Activation(Activation::Sigmoid), &[add]);
        let c3 = g.push("c3", Op::Conv(Conv::new(16, 3, 1, 1)), &[s2]);
        g.push("add3", Op::Add, &[Value::Input, c3]);
        let (steps, _) = super::super::schedule(g.nodes(), true);
        let taken: Vec<_> = steps.iter().filter_map(|s| s.residual).collect();
        assert_eq!(taken.len(), 2, "both additions taken in: {steps:?}");
        assert!(
            taken.iter().all(|r| r.first),
            "each adds its residual first"
        );
        assert_eq!(blocked_in(g.clone()), ["c1", "c2"], "c2 adds in blocks");
        let net = crate::Network::new(g, 11).unwrap();
        forward_is_the_trace(&net, &[(2, 2), (1, 1)]);
    }

    /// The kept plan follows the input shape (batch 3, 1, 3 again) and the weights (scaled
    /// between passes, and a layer fake-quantized, which runs it on planes): every pass
    /// computes what a trace computes, bit for bit.
    #[test]
    fn the_kept_plan_follows_shapes_and_weights() {
        let mut net = crate::Network::new(residual(), 7).unwrap();
        let last = net.graph().output().unwrap();
        let sample = net.input_shape().unwrap();
        let input = |n: usize| {
            let mut rng = crate::Rng::new(n as u64);
            let shape = Shape { n, ..sample };
            let data = (0..shape.elements()).map(|_| rng.uniform() - 0.5).collect();
            crate::FeatureMap::new(shape, data).unwrap()
        };
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let check = |net: &crate::Network, n: usize, what: &str| {
            let x = input(n);
            let got = net.forward(&x).unwrap();
            let want = net.trace(&x).unwrap().output(last);
            assert_eq!(got.shape, want.shape, "{what}, batch {n}");
            assert_eq!(bits(&got.data), bits(&want.data), "{what}, batch {n}");
            got
        };
        let before = check(&net, 3, "as built");
        check(&net, 1, "as built");
        check(&net, 3, "as built");
        let conv = joule_model::NodeId(
            net.graph()
                .nodes()
                .iter()
                .position(|n| n.name == "b1/conv2")
                .unwrap(),
        );
        net.params_mut(conv)[0]
            .data
            .iter_mut()
            .for_each(|w| *w *= 1.5);
        let after = check(&net, 3, "weights scaled");
        assert_ne!(
            bits(&before.data),
            bits(&after.data),
            "the new weights are used"
        );
        let quant = crate::quant::LayerQuant {
            weight: Some(crate::quant::WeightQuant {
                scheme: crate::quant::WeightScheme::Uniform,
                bits: 4,
            }),
            input: None,
        };
        net.set_quant(conv, quant).unwrap();
        check(&net, 3, "fake-quantized");
        check(&net, 1, "fake-quantized");
    }
}
