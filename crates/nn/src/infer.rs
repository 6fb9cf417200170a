//! The inference path behind [`Network::forward`]: unlike a [`Trace`](crate::Trace) it keeps
//! no node's output longer than its last reader needs it, reuses freed buffers (and keeps a
//! few per thread for the next call), records nothing for a backward pass, and runs a CONV or
//! FC together with the inference-mode batch norm and activation that follow it in one pass
//! over the ofmap; a pooling after a CONV step runs with it, a few samples at a time, while
//! their ofmaps are in cache. Every value is computed as [`Network::trace`] computes it, bit
//! for bit.

use crate::buffers;
use crate::layers::{self, Epilogue};
use crate::network::{fake_quantized, run_node, Mode};
use crate::{FeatureMap, Network, NnError};
use joule_model::ops::Pool;
use joule_model::{LoopNest, Node, NodeId, NodeShapes, Op, Shape, Value};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

mod layout;

/// MACs from which an inference pass runs inside rayon's pool ([`Network::forward`]).
const POOL_MACS: u64 = 1 << 20;

/// Bytes of freed activation buffers a thread keeps for its next inference.
const KEPT_BYTES: usize = 64 << 20;

thread_local! {
    static KEPT: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
}

/// One step of the schedule: node `first`, and when `first` is a CONV or FC, the batch norm
/// and the activation that only it reads, fused into its output pass, and after a CONV the
/// pooling that only reads that ([`conv_then_pool`]); when `first` is an addition, the
/// activation that only it reads ([`layers::add_forward`]). The step's output is `last`'s.
/// A CONV whose output (after its batch norm) only an addition of two reads takes that
/// addition and the activation after it as `residual` (ResNet's `relu(bn(conv) + skip)`)
/// where the other operand is computed before it ([`Residual`]).
#[derive(Clone, Copy, Debug)]
struct Step {
    first: usize,
    last: usize,
    norm: Option<usize>,
    activation: Option<usize>,
    pool: Option<usize>,
    residual: Option<Residual>,
}

/// The addition a CONV step takes in: the node, its other operand, and whether that is
/// the sum's first operand.
#[derive(Clone, Copy, Debug)]
struct Residual {
    add: usize,
    other: Value,
    first: bool,
}

/// The steps in order, and for every node the step that reads its output last;
/// `residuals`: whether CONV steps take in the additions after them ([`Step`]).
fn schedule(nodes: &[Node], residuals: bool) -> (Vec<Step>, Vec<usize>) {
    let mut readers = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        for v in &node.inputs {
            if let Value::Node(id) = v {
                readers[id.0].push(i);
            }
        }
    }
    // The node that alone reads `i`'s output, if it reads nothing else.
    let sole_reader = |i: usize| match readers[i].as_slice() {
        [j] if nodes[*j].inputs.len() == 1 => Some(*j),
        _ => None,
    };
    let mut steps = Vec::with_capacity(nodes.len());
    let mut fused = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        if fused[i] {
            continue;
        }
        let mut step = Step {
            first: i,
            last: i,
            norm: None,
            activation: None,
            pool: None,
            residual: None,
        };
        if matches!(node.op, Op::Conv(_) | Op::FullyConnected(_)) {
            if let Some(j) = sole_reader(step.last) {
                if matches!(nodes[j].op, Op::BatchNorm(_)) {
                    step.norm = Some(j);
                    step.last = j;
                }
            }
            if let Some(j) = sole_reader(step.last) {
                if matches!(nodes[j].op, Op::Activation(_)) {
                    step.activation = Some(j);
                    step.last = j;
                }
            }
            if let Some(j) = sole_reader(step.last) {
                if matches!(node.op, Op::Conv(_)) && matches!(nodes[j].op, Op::Pool(_)) {
                    step.pool = Some(j);
                    step.last = j;
                }
            }
            let alone = step.activation.is_none() && step.pool.is_none();
            if let (true, true, [j]) = (
                residuals && alone,
                matches!(node.op, Op::Conv(_)),
                readers[step.last].as_slice(),
            ) {
                if let Some(residual) = residual_of(nodes, i, step.last, *j) {
                    step.residual = Some(residual);
                    step.last = *j;
                    if let Some(k) = sole_reader(*j) {
                        if matches!(nodes[k].op, Op::Activation(_)) {
                            step.activation = Some(k);
                            step.last = k;
                        }
                    }
                }
            }
        }
        if matches!(node.op, Op::Add) {
            if let Some(j) = sole_reader(i) {
                if matches!(nodes[j].op, Op::Activation(_)) {
                    step.activation = Some(j);
                    step.last = j;
                }
            }
        }
        for j in step
            .norm
            .into_iter()
            .chain(step.activation)
            .chain(step.pool)
            .chain(step.residual.map(|r| r.add))
        {
            fused[j] = true;
        }
        steps.push(step);
    }
    let mut last_read = vec![usize::MAX; nodes.len()];
    for (s, step) in steps.iter().enumerate() {
        for v in step_inputs(nodes, step) {
            if let Value::Node(id) = v {
                last_read[id.0] = s;
            }
        }
    }
    (steps, last_read)
}

/// The values a step reads: its first node's inputs, and its residual's other operand.
fn step_inputs<'a>(nodes: &'a [Node], step: &Step) -> impl Iterator<Item = Value> + 'a {
    let inputs = nodes[step.first].inputs.iter().copied();
    inputs.chain(step.residual.map(|r| r.other))
}

/// The residual connection a CONV step (node `first`, its output `out`'s) takes in from
/// `add`, the only node reading `out`: where `add` sums `out` and one other value computed
/// before the CONV (the network's input, or a node before it in the graph's order, which
/// the steps follow).
fn residual_of(nodes: &[Node], first: usize, out: usize, add: usize) -> Option<Residual> {
    let inputs = &nodes[add].inputs;
    if !matches!(nodes[add].op, Op::Add) || inputs.len() != 2 {
        return None;
    }
    let own = inputs.iter().position(|v| *v == Value::Node(NodeId(out)))?;
    let other = inputs[1 - own];
    let before = match other {
        Value::Input => true,
        Value::Node(id) => id.0 < first,
    };
    before.then_some(Residual {
        add,
        other,
        first: own == 1,
    })
}

/// For every node of a graph, the CONV, FC or addition node whose step the engine runs it
/// in (its batch norm and activation), or `None` when it runs on its own. Latency tables key a
/// fused step as one entry, since that is what the engine times. A pooling after a CONV
/// step stays an entry of its own: the engine runs it with the step only to read the
/// step's output from cache, on large batches.
pub fn fused_into(nodes: &[Node]) -> Vec<Option<usize>> {
    let mut into = vec![None; nodes.len()];
    // The additions stay entries of their own: a table's probe is one chain of ops.
    for step in schedule(nodes, false).0 {
        for j in step.norm.into_iter().chain(step.activation) {
            into[j] = Some(step.first);
        }
    }
    into
}

/// What an inference pass on one input shape works out before it computes anything: the
/// shapes, the steps, where each output is read last and which outputs stay in channel
/// blocks. Built once per input shape and kept ([`PlanCache`]): building it on every pass
/// (shape inference, the schedule, the layout plan, their allocations) took 8% of
/// vgg-small's time at batch 1.
struct Plan {
    input: Shape,
    shapes: Vec<NodeShapes>,
    macs: u64,
    steps: Vec<Step>,
    last_read: Vec<usize>,
    blocks: Vec<bool>,
}

/// The [`Plan`] of the last input shape a network ran on; emptied with the prepared
/// filters whenever the network changes.
#[derive(Default)]
pub(crate) struct PlanCache(Mutex<Option<Arc<Plan>>>);

impl Clone for PlanCache {
    fn clone(&self) -> Self {
        PlanCache::default()
    }
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.lock().map(|p| p.is_some()).unwrap_or(false);
        write!(f, "PlanCache({})", if built { "built" } else { "empty" })
    }
}

/// Freed activation buffers, reused for later outputs.
struct Buffers(Vec<Vec<f32>>);

impl Buffers {
    fn take() -> Buffers {
        Buffers(KEPT.take())
    }

    /// A buffer of at least `len` values; its contents are stale, the kernel writes every
    /// one of the first `len`. Buffers keep their length so that reusing one does not clear
    /// it again.
    fn get(&mut self, len: usize) -> Vec<f32> {
        let best = (0..self.0.len())
            .filter(|&i| self.0[i].capacity() >= len)
            .min_by_key(|&i| self.0[i].capacity());
        let mut buffer = match best {
            Some(i) => self.0.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        buffer
    }

    fn put(&mut self, buffer: Vec<f32>) {
        self.0.push(buffer);
    }

    /// Keeps the smallest buffers, up to [`KEPT_BYTES`], for this thread's next call.
    fn keep(mut self) {
        self.0.sort_by_key(Vec::capacity);
        let mut bytes = 0;
        self.0.retain(|b| {
            bytes += b.capacity() * std::mem::size_of::<f32>();
            bytes <= KEPT_BYTES
        });
        KEPT.set(self.0);
    }
}

impl Network {
    /// Inference-mode forward pass returning only the last node's output, written into
    /// `storage` when its capacity suffices (else a new buffer).
    pub(crate) fn infer(
        &self,
        input: &FeatureMap,
        storage: Vec<f32>,
    ) -> Result<FeatureMap, NnError> {
        // A pass big enough to split its layers runs on one of rayon's threads: the splits
        // (two halves of a batch-1 CONV, its lowering, its packing, an FC's rows) are then
        // joins inside the pool, not jobs sent from outside it that wait for a sleeping
        // thread to wake (which made batch-1 times bimodal). A small one (LeNet-5 at batch
        // 1) splits nothing and stays here: the hand-off alone would double its time.
        self.check_input(input)?;
        let plan = self.plan(input.shape)?;
        if plan.macs >= POOL_MACS {
            rayon::scope(|_| crate::threads::pass(|| self.infer_in_pool(input, &plan, storage)))
        } else {
            self.infer_in_pool(input, &plan, storage)
        }
    }

    /// The [`Plan`] for inputs of `shape`: the kept one, or a new one kept in its place.
    fn plan(&self, shape: Shape) -> Result<Arc<Plan>, NnError> {
        let cache = self.plan_cache();
        if let Some(plan) = cache.0.lock().ok().and_then(|p| p.clone()) {
            if plan.input == shape {
                return Ok(plan);
            }
        }
        let graph = self.graph();
        let nodes = graph.nodes();
        let shapes = graph.infer(shape)?;
        let macs = shapes
            .iter()
            .filter_map(|s| s.loop_nest)
            .map(|l| l.macs())
            .sum();
        let output = graph.output().expect("a network has nodes").0;
        let (steps, last_read) = schedule(nodes, true);
        let quantized = |i: usize| self.quant(joule_model::NodeId(i)).is_some();
        let blocks = layout::plan(nodes, &steps, &shapes, output, quantized);
        let plan = Arc::new(Plan {
            input: shape,
            shapes,
            macs,
            steps,
            last_read,
            blocks,
        });
        if let Ok(mut kept) = cache.0.lock() {
            *kept = Some(Arc::clone(&plan));
        }
        Ok(plan)
    }

    fn infer_in_pool(
        &self,
        input: &FeatureMap,
        plan: &Plan,
        mut storage: Vec<f32>,
    ) -> Result<FeatureMap, NnError> {
        let graph = self.graph();
        let nodes = graph.nodes();
        let output = graph.output().expect("a network has nodes").0;
        let (shapes, steps, last_read, blocks) =
            (&plan.shapes, &plan.steps, &plan.last_read, &plan.blocks);
        let mut buffers = Buffers::take();
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; nodes.len()];
        let mut reused = false;
        for (s, step) in steps.iter().enumerate() {
            let node = &nodes[step.first];
            let len = shapes[step.last].output.elements() as usize;
            let moved = match (&node.op, node.inputs.first()) {
                (Op::Flatten | Op::Dropout { .. }, Some(&Value::Node(id)))
                    if last_read[id.0] == s =>
                {
                    slots[id.0].take()
                }
                _ => None,
            };
            let y = match moved {
                Some(y) => y,
                None => {
                    let mut y = if step.last == output {
                        if storage.capacity() >= len {
                            reused = true;
                            let mut y = std::mem::take(&mut storage);
                            // Within capacity: only a grown tail is cleared.
                            y.resize(len.max(y.len()), 0.0);
                            y
                        } else {
                            vec![0.0; len]
                        }
                    } else {
                        buffers.get(len)
                    };
                    let inputs: Vec<&[f32]> = node
                        .inputs
                        .iter()
                        .map(|v| match v {
                            Value::Input => input.data.as_slice(),
                            Value::Node(id) => {
                                let len = shapes[id.0].output.elements() as usize;
                                &slots[id.0].as_deref().expect("scheduled earlier")[..len]
                            }
                        })
                        .collect();
                    let residual = step.residual.map(|r| layers::Residual {
                        values: match r.other {
                            Value::Input => input.data.as_slice(),
                            Value::Node(id) => {
                                slots[id.0].as_deref().expect("computed before the step")
                            }
                        },
                        first: r.first,
                    });
                    match self.quant(joule_model::NodeId(step.first)) {
                        Some(quant) => {
                            let (qnode, qx) = fake_quantized(node, quant, inputs[0]);
                            let xq = [qx.as_deref().unwrap_or(inputs[0])];
                            let first = qnode.as_ref().unwrap_or(node);
                            let out = shapes[step.last].output;
                            let (y, shapes) = (&mut y[..len], &shapes[step.first]);
                            run_step(
                                nodes,
                                first,
                                shapes,
                                out,
                                step,
                                (&xq, residual),
                                None,
                                (false, false),
                                y,
                            );
                        }
                        None => {
                            // The filters as the kernel wants them, prepared once per weights.
                            let packed = shapes[step.first]
                                .loop_nest
                                .and_then(|nest| self.prepared_filters(step.first, &nest));
                            let out = shapes[step.last].output;
                            let shapes = &shapes[step.first];
                            let y = &mut y[..len];
                            let x_blocks = match node.inputs.first() {
                                Some(Value::Node(id)) => blocks[id.0],
                                _ => false,
                            };
                            let layout = (x_blocks, blocks[step.last]);
                            let inputs = (&inputs[..], residual);
                            run_step(nodes, node, shapes, out, step, inputs, packed, layout, y)
                        }
                    }
                    y
                }
            };
            for v in step_inputs(nodes, step) {
                if let Value::Node(id) = v {
                    if last_read[id.0] == s {
                        if let Some(buffer) = slots[id.0].take() {
                            buffers.put(buffer);
                        }
                    }
                }
            }
            slots[step.last] = Some(y);
        }
        let mut data = slots[output].take().expect("the output is computed");
        data.truncate(shapes[output].output.elements() as usize);
        if !reused {
            data.shrink_to_fit();
        }
        slots.into_iter().flatten().for_each(|b| buffers.put(b));
        buffers.keep();
        Ok(FeatureMap {
            shape: shapes[output].output,
            data,
        })
    }
}

/// Runs one step: a fused CONV or FC, or any other node on its own. `node` is the step's
/// first node (a fake-quantized copy of it when its weights are quantized), `out` the
/// step's output shape; `inputs`: the node's, and the step's residual operand (in the
/// output's layout); `(x_blocks, y_blocks)`: its first input and its output in channel
/// blocks ([`layout::plan`] chose where).
#[allow(clippy::too_many_arguments)]
fn run_step(
    nodes: &[Node],
    node: &Node,
    shapes: &joule_model::NodeShapes,
    out: Shape,
    step: &Step,
    (inputs, residual): (&[&[f32]], Option<layers::Residual>),
    packed: Option<&layers::Filters>,
    (x_blocks, y_blocks): (bool, bool),
    y: &mut [f32],
) {
    let affine = step.norm.map(|j| {
        let norm = &nodes[j];
        let Op::BatchNorm(bn) = &norm.op else {
            unreachable!("scheduled as a batch norm")
        };
        layers::batch_norm_affine(
            bn.epsilon,
            [0, 1, 2, 3].map(|k| norm.params[k].data.as_slice()),
        )
    });
    let activation = step.activation.map(|j| match nodes[j].op {
        Op::Activation(a) => a,
        _ => unreachable!("scheduled as an activation"),
    });
    // A residual the kernel does not add in its epilogue is added after it, in one pass
    // with the activation.
    let (residual, after) = match (&node.op, shapes.loop_nest, residual) {
        (Op::Conv(op), Some(nest), Some(r)) if layers::adds_residual(op, &nest, y_blocks) => {
            (Some(r), None)
        }
        (_, _, r) => (None, r),
    };
    let epilogue = Epilogue {
        bias: node.params.get(1).map(|t| t.data.as_slice()),
        affine: affine.as_ref().map(|(k, b)| (k.as_slice(), b.as_slice())),
        activation: activation.filter(|_| after.is_none()),
    };
    match &node.op {
        Op::Conv(op) => {
            let nest = shapes.loop_nest.expect("conv has a loop nest");
            let (x, xs) = (inputs[0], shapes.inputs[0]);
            let filter = &node.params[0].data;
            let conv = |nest: &LoopNest, x: &[f32], y: &mut [f32]| {
                let e = &epilogue;
                if x_blocks || y_blocks {
                    let layout = (x_blocks, y_blocks);
                    let r = residual;
                    layers::conv_forward_blocks(op, nest, x, filter, packed, e, layout, r, y)
                } else {
                    layers::conv_forward_prepared(op, nest, x, filter, packed, e, y)
                }
            };
            match step.pool.map(|j| &nodes[j].op) {
                Some(Op::Pool(pool))
                    if layers::pools_in_tile(op, &nest, pool, packed, &epilogue) =>
                {
                    let layout = (x_blocks, y_blocks);
                    layers::conv_pool_forward(op, &nest, x, packed, &epilogue, layout, y)
                }
                Some(Op::Pool(pool)) => {
                    // Winograd's choice depends on the batch: it runs the batch whole.
                    let whole = matches!(packed, Some(layers::Filters::Winograd(..)));
                    let pooling = (pool, shapes.output, out, y_blocks);
                    conv_then_pool(&nest, xs, x, &conv, pooling, whole, y)
                }
                _ => conv(&nest, x, y),
            }
        }
        Op::FullyConnected(fc) => {
            let (x, xs) = (inputs[0], shapes.inputs[0]);
            let k = xs.per_sample();
            let weight = &node.params[0].data;
            layers::fc_forward_prepared(xs.n, k, fc.outputs, x, weight, packed, &epilogue, y)
        }
        Op::Add => layers::add_forward(inputs, epilogue.activation, y),
        Op::GlobalPool { kind } if x_blocks => {
            layers::global_pool_blocks(*kind, shapes.inputs[0], inputs[0], y);
        }
        _ => {
            // Element-wise on blocks as on planes: the plan keeps a step's inputs and
            // output in one layout ([`layout::plan`]).
            run_node(node, shapes, inputs, y, Mode::Inference, None);
        }
    }
    if let Some(r) = after {
        layers::add_residual(y, r, activation);
    }
}

/// A CONV step run on samples: `(nest, x, y)`.
type ConvOn<'a> = dyn Fn(&LoopNest, &[f32], &mut [f32]) + 'a;

/// Bytes of a CONV step's output from which its pooling runs a few samples at a time.
/// Below it the output stays in cache anyway (LeNet-5 at batch 64: 1.2 MB), and the extra
/// calls cost 2-3%.
const POOL_CHUNK_FROM: usize = 2 << 20;

/// Bytes of CONV output a thread computes and pools at a time: within its share of L2.
const POOL_CHUNK_BYTES: usize = 384 << 10;

/// `y = pool(conv(x))`: `conv` (the step's fused CONV) on a few samples at a time into
/// scratch, each chunk pooled while it is in cache. Run whole, vgg-small's first pooling
/// read 6.4 MB back from memory at batch 64: alternating in one process, chunked took
/// 0.91-0.93 of the network's time on one thread, 0.94-0.96 (median) on two. Each sample's
/// values do not depend on the others in the chunk (the kernels' sums run per output), so
/// the bits are the whole batch's; `whole` runs it in one chunk. `blocks`: `conv` writes
/// channel blocks, and the pooling reads and writes them.
fn conv_then_pool(
    nest: &LoopNest,
    xs: Shape,
    x: &[f32],
    conv: &ConvOn,
    (pool, conv_out, out, blocks): (&Pool, Shape, Shape, bool),
    whole: bool,
    y: &mut [f32],
) {
    let n = nest.n;
    let (in_len, mid_len, out_len) = (xs.per_sample(), conv_out.per_sample(), out.per_sample());
    let threads = rayon::current_num_threads().max(1);
    let chunk = if whole || n * mid_len * 4 < POOL_CHUNK_FROM {
        n
    } else {
        (threads * (POOL_CHUNK_BYTES / (mid_len * 4)).max(1)).min(n)
    };
    let mut scratch = buffers::overwritten(chunk * mid_len);
    for first in (0..n).step_by(chunk.max(1)) {
        let count = chunk.min(n - first);
        let samples = |len: usize| first * len..(first + count) * len;
        let mid = &mut scratch[..count * mid_len];
        conv(&LoopNest { n: count, ..*nest }, &x[samples(in_len)], mid);
        let (mid_shape, out_shape) = (
            Shape {
                n: count,
                ..conv_out
            },
            Shape { n: count, ..out },
        );
        let y = &mut y[samples(out_len)];
        if blocks {
            layers::pool_inference_blocks(pool, mid_shape, out_shape, mid, y);
        } else {
            layers::pool_inference(pool, mid_shape, out_shape, mid, y);
        }
    }
    buffers::recycle(scratch);
}
