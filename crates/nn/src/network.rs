//! A trainable network over joule's IR: forward (inference and training), backward, masks.

use crate::buffers;
use crate::chain::{training_chains, Chain};
use crate::layers::{self, BatchNormCache};
use crate::quant::{quantize_weights, LayerQuant};
use crate::{NnError, Rng};
use joule_model::ops::Side;
use joule_model::{Dims, Graph, LoopNest, Node, NodeId, NodeShapes, Op, Shape, Tensor, Value};
use std::sync::OnceLock;

/// A batch of activations in NCHW order.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMap {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl FeatureMap {
    pub fn new(shape: Shape, data: Vec<f32>) -> Result<FeatureMap, NnError> {
        if shape.elements() as usize != data.len() {
            return Err(NnError::Input(format!(
                "shape {shape} needs {} values, got {}",
                shape.elements(),
                data.len()
            )));
        }
        Ok(FeatureMap { shape, data })
    }
}

/// What a node's backward pass needs beyond its inputs and output.
#[derive(Debug)]
pub(crate) enum Aux {
    None,
    Argmax(Vec<u32>),
    /// A fused batch norm, ReLU and pooling's maxima ([`layers::PooledCache`]).
    Pooled(layers::PooledCache),
    BatchNorm {
        cache: BatchNormCache,
        running_mean: Vec<f32>,
        running_var: Vec<f32>,
    },
    Lrn(Vec<f32>),
    Dropout(Vec<f32>),
}

/// Everything one forward pass produced: every node's output and the caches backward reads.
#[derive(Debug)]
pub struct Trace {
    input: FeatureMap,
    shapes: Vec<NodeShapes>,
    outputs: Vec<Vec<f32>>,
    aux: Vec<Aux>,
    /// Per node, the quantized input and weights a fake-quantized layer computed with.
    quantized: Vec<Option<Quantized>>,
    /// The nodes a training pass ran as one ([`chain`]): the outputs they hide are empty.
    chains: Vec<Chain>,
}

impl Drop for Trace {
    /// Every output back to the thread's pool of recycled buffers, for the next step's.
    fn drop(&mut self) {
        self.outputs.drain(..).for_each(buffers::recycle);
        for aux in self.aux.drain(..) {
            if let Aux::Pooled(kept) = aux {
                buffers::recycle(kept.x_at);
            }
        }
    }
}

/// What a fake-quantized CONV or FC layer computed with: backward differentiates through
/// these values and passes the gradient straight through to the float ones (STE).
#[derive(Debug)]
struct Quantized {
    input: Option<Vec<f32>>,
    weights: Option<Vec<f32>>,
}

impl Trace {
    /// The output of node `id`.
    ///
    /// # Panics
    /// For a batch norm a training pass ran together with the ReLU after it, or such a ReLU
    /// with the pooling after it: nothing else reads their outputs, and the trace keeps none.
    /// The logits node's and the graph output's are always kept.
    pub fn output(&self, id: NodeId) -> FeatureMap {
        assert!(!self.hidden(id.0), "{}", self.hidden_message(id.0));
        FeatureMap {
            shape: self.shapes[id.0].output,
            data: self.outputs[id.0].clone(),
        }
    }

    /// Whether node `i`'s output was fused away.
    fn hidden(&self, i: usize) -> bool {
        self.chains.iter().any(|c| c.hides(i))
    }

    fn hidden_message(&self, i: usize) -> String {
        format!(
            "a training trace keeps no output for node {i}: it ran fused with the nodes after it"
        )
    }

    fn value(&self, v: Value) -> &[f32] {
        match v {
            Value::Input => &self.input.data,
            Value::Node(id) => &self.outputs[id.0],
        }
    }
}

/// Gradients of every learned tensor (`params[node][index]`, in the nodes' parameter order),
/// and of the network input when asked for.
#[derive(Clone, Debug)]
pub struct Gradients {
    pub params: Vec<Vec<Vec<f32>>>,
    pub input: Option<Vec<f32>>,
}

impl Drop for Gradients {
    /// Every gradient back to the thread's pool of recycled buffers, for the next step's.
    fn drop(&mut self) {
        self.params.drain(..).flatten().for_each(buffers::recycle);
        self.input.take().into_iter().for_each(buffers::recycle);
    }
}

/// A network built from an IR [`Graph`]: its learned tensors live in the graph's
/// `Node.params`, so training writes straight back into the IR.
#[derive(Clone, Debug)]
pub struct Network {
    graph: Graph,
    masks: Vec<Option<Vec<f32>>>,
    /// Fake quantization of CONV and FC layers ([`Network::set_quant`]).
    quant: Vec<Option<LayerQuant>>,
    /// CONV filters prepared for their kernel, built by the first pass that needs them.
    packed: PackCache,
    /// The inference plan of the last input shape ([`crate::infer`]).
    plan: crate::infer::PlanCache,
}

/// Per node, its filters prepared for the kernel ([`layers::Filters`]: packed for the
/// product, or Winograd-transformed). Emptied by every method that takes `&mut Network` (the
/// only way to change a weight), so it never outlives them.
#[derive(Clone, Default)]
struct PackCache(Vec<OnceLock<Option<layers::Filters>>>);

impl std::fmt::Debug for PackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.iter().filter(|c| c.get().is_some()).count();
        write!(f, "PackCache({built} of {} built)", self.0.len())
    }
}

/// Whether parameter `index` of `op` is learned by gradient descent (batch-norm running
/// statistics are not).
pub fn trainable(op: &Op, index: usize) -> bool {
    !matches!(op, Op::BatchNorm(_)) || index < 2
}

impl Network {
    /// Builds a network, initialising (He uniform, seeded) every node that has no parameters
    /// yet and checking the shapes of those that do.
    pub fn new(mut graph: Graph, seed: u64) -> Result<Network, NnError> {
        let input = graph.resolve_input(None)?;
        let shapes = graph.infer(Shape { n: 1, ..input })?;
        let rng = Rng::new(seed);
        for (i, shape) in shapes.iter().enumerate() {
            let node = graph.node_mut(NodeId(i));
            if !node.params.is_empty() {
                continue;
            }
            let mut rng = rng.fork(i as u64);
            node.params = node
                .op
                .param_dims(&shape.input_dims)
                .into_iter()
                .enumerate()
                .map(|(index, dims)| init(&node.op, index, dims, &mut rng))
                .collect();
        }
        graph.infer(Shape { n: 1, ..input })?;
        let masks = vec![None; graph.len()];
        let quant = vec![None; graph.len()];
        let packed = PackCache((0..graph.len()).map(|_| OnceLock::new()).collect());
        Ok(Network {
            graph,
            masks,
            quant,
            packed,
            plan: Default::default(),
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Mutable access to node parameters; call [`Network::apply_masks`] afterwards if masks
    /// are set.
    pub fn params_mut(&mut self, id: NodeId) -> &mut Vec<Tensor> {
        self.weights_change();
        &mut self.graph.node_mut(id).params
    }

    /// Drops every packed copy of the weights and the inference plan: called by each `&mut
    /// self` method first.
    fn weights_change(&mut self) {
        self.packed.0.iter_mut().for_each(|c| *c = OnceLock::new());
        self.plan = Default::default();
    }

    /// The inference plan's cache.
    pub(crate) fn plan_cache(&self) -> &crate::infer::PlanCache {
        &self.plan
    }

    /// CONV or FC node `i`'s weights prepared for its kernel ([`layers::prepare_filters`];
    /// an FC's packed for the product) on the first call after the weights last changed;
    /// `None` where the kernel reads them as they are, or the node has none.
    pub(crate) fn prepared_filters(&self, i: usize, nest: &LoopNest) -> Option<&layers::Filters> {
        let node = self.graph.nodes().get(i)?;
        let weight = node.params.first()?;
        let prepare = || match &node.op {
            Op::Conv(conv) => layers::prepare_filters(conv, nest, &weight.data),
            Op::FullyConnected(fc) if fc.outputs > 0 => {
                let (m, k) = (fc.outputs, weight.data.len() / fc.outputs);
                layers::prepare_fc(m, k, &weight.data)
            }
            _ => None,
        };
        match node.op {
            Op::Conv(_) | Op::FullyConnected(_) => self.packed.0[i].get_or_init(prepare).as_ref(),
            _ => None,
        }
    }

    /// The per-sample input shape (`n == 1`).
    pub fn input_shape(&self) -> Result<Shape, NnError> {
        Ok(Shape {
            n: 1,
            ..self.graph.resolve_input(None)?
        })
    }

    /// The node whose output the loss reads: the last node, or the input of a final softmax.
    pub fn logits_node(&self) -> NodeId {
        let last = self.graph.output().expect("a network has nodes");
        let node = self.graph.node(last);
        match (&node.op, node.inputs.as_slice()) {
            (Op::Softmax { .. }, [Value::Node(id)]) => *id,
            _ => last,
        }
    }

    /// Inference: the output of the last node for a batch. Computes the same values as
    /// [`Network::trace`], bit for bit, without keeping the other nodes' outputs.
    pub fn forward(&self, input: &FeatureMap) -> Result<FeatureMap, NnError> {
        self.infer(input, Vec::new())
    }

    /// [`Network::forward`] writing into `out`'s storage, which is reused when it is large
    /// enough: repeated calls then allocate and clear no output memory, as a layer inside a
    /// network does not (latency tables time single layers this way).
    pub fn forward_into(&self, input: &FeatureMap, out: &mut FeatureMap) -> Result<(), NnError> {
        let storage = std::mem::take(&mut out.data);
        *out = self.infer(input, storage)?;
        Ok(())
    }

    /// Inference keeping every node's output.
    pub fn trace(&self, input: &FeatureMap) -> Result<Trace, NnError> {
        self.execute(input, None)
    }

    /// A training forward pass: batch statistics in batch norm (whose running statistics are
    /// updated), dropout drawn from `rng`.
    pub fn forward_train(&mut self, input: &FeatureMap, rng: &mut Rng) -> Result<Trace, NnError> {
        self.weights_change();
        if let Some(node) = self.graph.nodes().iter().find(|n| !trains(&n.op)) {
            return Err(NnError::Unsupported {
                node: node.name.clone(),
                kind: node.op.kind(),
                detail: "training through this op is not supported (inference only)".into(),
            });
        }
        let mut trace = self.execute(input, Some(rng))?;
        for (i, aux) in trace.aux.iter_mut().enumerate() {
            if let Aux::BatchNorm {
                running_mean,
                running_var,
                ..
            } = aux
            {
                let params = &mut self.graph.node_mut(NodeId(i)).params;
                params[2].data = std::mem::take(running_mean);
                params[3].data = std::mem::take(running_var);
            }
        }
        Ok(trace)
    }

    /// Checks that `input` holds samples of the shape the network takes.
    pub(crate) fn check_input(&self, input: &FeatureMap) -> Result<(), NnError> {
        let expected = self.input_shape()?;
        if (input.shape.c, input.shape.h, input.shape.w) != (expected.c, expected.h, expected.w) {
            return Err(NnError::Input(format!(
                "network {:?} takes {}x{}x{} samples, got {}",
                self.graph.name, expected.c, expected.h, expected.w, input.shape
            )));
        }
        Ok(())
    }

    fn execute(&self, input: &FeatureMap, mut train: Option<&mut Rng>) -> Result<Trace, NnError> {
        self.check_input(input)?;
        let shapes = self.graph.infer(input.shape)?;
        let chains = match train {
            Some(_) => training_chains(&self.graph, &shapes, self.logits_node().0),
            None => Vec::new(),
        };
        let mut trace = Trace {
            input: input.clone(),
            shapes,
            outputs: Vec::with_capacity(self.graph.len()),
            aux: Vec::with_capacity(self.graph.len()),
            quantized: Vec::with_capacity(self.graph.len()),
            chains,
        };
        let mut chains = trace.chains.clone().into_iter().peekable();
        for (i, node) in self.graph.nodes().iter().enumerate() {
            if trace.outputs.len() > i {
                continue; // run with the chain before it
            }
            if let Some(chain) = chains.next_if(|c| c.first == i) {
                self.run_chain(chain, &mut trace);
                continue;
            }
            // Every node writes its output whole (as inference, which reuses buffers
            // unzeroed, relies on too; `tests/gradients.rs` runs every kind of node on
            // NaN-filled buffers to hold it to that).
            let mut y = buffers::overwritten(trace.shapes[i].output.elements() as usize);
            let mode = match train.as_deref_mut() {
                Some(rng) => Mode::Train(rng),
                None => Mode::Trace,
            };
            let (aux, quantized) = match &self.quant[i] {
                Some(quant) => {
                    let x = trace.value(node.inputs[0]);
                    let (qnode, qx) = fake_quantized(node, quant, x);
                    let xq = qx.as_deref().unwrap_or(x);
                    let aux = run_node(
                        qnode.as_ref().unwrap_or(node),
                        &trace.shapes[i],
                        &[xq],
                        &mut y,
                        mode,
                        None,
                    );
                    let weights = qnode.map(|mut n| std::mem::take(&mut n.params[0].data));
                    (aux, Some(Quantized { input: qx, weights }))
                }
                None => {
                    let inputs: Vec<&[f32]> = node.inputs.iter().map(|v| trace.value(*v)).collect();
                    let shapes = &trace.shapes[i];
                    let prepared = shapes
                        .loop_nest
                        .and_then(|nest| self.prepared_filters(i, &nest));
                    (
                        run_node(node, shapes, &inputs, &mut y, mode, prepared),
                        None,
                    )
                }
            };
            trace.outputs.push(y);
            trace.aux.push(aux);
            trace.quantized.push(quantized);
        }
        Ok(trace)
    }

    /// Runs a training chain's nodes as one pass, pushing each node's output (empty where
    /// it is hidden) and backward cache onto the trace.
    fn run_chain(&self, chain: Chain, trace: &mut Trace) {
        let nodes = self.graph.nodes();
        let node = &nodes[chain.first];
        let x = trace.value(node.inputs[0]);
        let xs = trace.shapes[chain.first].inputs[0];
        let out = trace.shapes[chain.last()].output;
        let mut y = buffers::overwritten(out.elements() as usize);
        if !chain.bn {
            let argmax = layers::relu_pool_train(xs, out, x, &mut y);
            trace.aux.extend([Aux::None, Aux::Argmax(argmax)]);
        } else {
            let Op::BatchNorm(bn) = &node.op else {
                unreachable!("the chain starts at a batch norm")
            };
            let (mut mean, mut var) = (node.params[2].data.clone(), node.params[3].data.clone());
            let params = layers::BatchNormParams {
                eps: bn.epsilon,
                scale: &node.params[0].data,
                bias: &node.params[1].data,
                running: (&mut mean, &mut var),
            };
            let (cache, pooled) = if chain.pool {
                let (cache, pooled) =
                    layers::batch_norm_relu_pool_train(xs, out, params, x, &mut y);
                (cache, Some(pooled))
            } else {
                (layers::batch_norm_relu_train(xs, params, x, &mut y), None)
            };
            trace.aux.push(Aux::BatchNorm {
                cache,
                running_mean: mean,
                running_var: var,
            });
            trace.aux.push(Aux::None);
            trace.aux.extend(pooled.map(Aux::Pooled));
        }
        trace
            .outputs
            .extend((chain.first..chain.last()).map(|_| Vec::new()));
        trace.outputs.push(y);
        trace
            .quantized
            .extend((chain.first..=chain.last()).map(|_| None));
    }

    /// Sets the fake quantization of a CONV or FC layer's weights and input: every forward
    /// pass computes with quantize-dequantized values, and backward passes gradients through
    /// them (STE, [`crate::quant`]). The float weights stay in the graph, so training
    /// updates them (quantization-aware training).
    pub fn set_quant(&mut self, id: NodeId, quant: LayerQuant) -> Result<(), NnError> {
        self.weights_change();
        let node = self.graph.node(id);
        if !matches!(node.op, Op::Conv(_) | Op::FullyConnected(_)) {
            return Err(NnError::Unsupported {
                node: node.name.clone(),
                kind: node.op.kind(),
                detail: "quantization applies to CONV and FC layers".into(),
            });
        }
        self.quant[id.0] = Some(quant);
        Ok(())
    }

    /// The fake quantization of node `id`, if any.
    pub fn quant(&self, id: NodeId) -> Option<&LayerQuant> {
        self.quant.get(id.0).and_then(|q| q.as_ref())
    }

    /// Removes every layer's fake quantization.
    pub fn clear_quant(&mut self) {
        self.weights_change();
        self.quant.iter_mut().for_each(|q| *q = None);
    }

    /// Writes every quantized layer's dequantized weights into the graph (they are exactly
    /// `code x step`), so the graph alone carries them; the quantizers stay set, and
    /// quantizing again leaves the weights unchanged.
    pub fn bake_weights(&mut self) {
        self.weights_change();
        for i in 0..self.quant.len() {
            if let Some(weight) = self.quant[i].and_then(|q| q.weight) {
                let node = self.graph.node_mut(NodeId(i));
                let channels = node.params[0].shape[0];
                node.params[0].data =
                    quantize_weights(&node.params[0].data, channels, weight).dequantized;
            }
        }
    }

    /// Backpropagates `d_output` (the gradient of the loss with respect to node `from`'s
    /// output, usually [`Network::logits_node`]) through the trace.
    pub fn backward(
        &self,
        trace: &Trace,
        from: NodeId,
        d_output: Vec<f32>,
        input_grad: bool,
    ) -> Gradients {
        let nodes = self.graph.nodes();
        let mut grads = Gradients {
            params: nodes
                .iter()
                .map(|n| n.params.iter().map(|t| buffers::zeroed(t.len())).collect())
                .collect(),
            input: None,
        };
        assert!(!trace.hidden(from.0), "{}", trace.hidden_message(from.0));
        let mut d: Vec<Option<Vec<f32>>> = vec![None; nodes.len()];
        d[from.0] = Some(d_output);
        for i in (0..=from.0).rev() {
            let Some(dy) = d[i].take() else { continue };
            if let Some(chain) = trace.chains.iter().find(|c| c.last() == i) {
                let node = &nodes[chain.first];
                let input = node.inputs[0];
                let xs = trace.shapes[chain.first].inputs[0];
                let mut dx = (input_grad || input != Value::Input)
                    .then(|| buffers::overwritten(xs.elements() as usize));
                let x = trace.value(input);
                let y = &trace.outputs[i];
                match (&trace.aux[chain.first], &trace.aux[i]) {
                    (Aux::BatchNorm { cache, .. }, argmax) => {
                        let scale = &node.params[0].data;
                        let (ds, rest) = grads.params[chain.first].split_at_mut(1);
                        let (ds, db) = (&mut ds[0], &mut rest[0]);
                        let dx = dx.as_deref_mut();
                        match argmax {
                            Aux::Pooled(kept) => {
                                let pooled = trace.shapes[i].output;
                                layers::batch_norm_relu_pool_backward(
                                    xs, pooled, scale, cache, x, y, kept, &dy, dx, ds, db,
                                )
                            }
                            _ => layers::batch_norm_relu_backward(
                                xs, scale, cache, x, y, &dy, dx, ds, db,
                            ),
                        }
                    }
                    (_, Aux::Argmax(argmax)) => {
                        if let Some(dx) = dx.as_deref_mut() {
                            let pooled = trace.shapes[i].output;
                            layers::relu_pool_backward(xs, pooled, y, argmax, &dy, dx)
                        }
                    }
                    _ => unreachable!("a chain without a batch norm ends in a pooling"),
                }
                if let Some(dx) = dx {
                    pass_back(dx, input, &mut grads.input, &mut d);
                }
                buffers::recycle(dy);
                continue;
            }
            let node = &nodes[i];
            let shapes = &trace.shapes[i];
            // A constant has no input: its shape stands in for one, and it reads nothing.
            let xs = shapes.inputs.first().copied().unwrap_or(shapes.output);
            let quantized = trace.quantized[i].as_ref();
            let float_x = node.inputs.first().map_or(&[][..], |v| trace.value(*v));
            let x = quantized
                .and_then(|q| q.input.as_deref())
                .unwrap_or(float_x);
            let weights = quantized
                .and_then(|q| q.weights.as_deref())
                .or(node.params.first().map(|t| t.data.as_slice()))
                .unwrap_or_default();
            let y = &trace.outputs[i];
            let wants = |v: &Value| input_grad || matches!(v, Value::Node(_));
            // These write their input gradients whole (the convolution and pooling zero
            // each sample's themselves before they add into it); the others add into
            // theirs, which must start at zero. Zeroing them all was 4% of vgg-small's
            // training time, and zeroing pooling's twice 2%.
            let whole = matches!(
                node.op,
                Op::Conv(_)
                    | Op::Activation(_)
                    | Op::Pool(_)
                    | Op::BatchNorm(_)
                    | Op::Flatten
                    | Op::Dropout { .. }
                    | Op::Add
            );
            let gradient = |len: usize| {
                if whole {
                    buffers::overwritten(len)
                } else {
                    buffers::zeroed(len)
                }
            };
            let mut dxs: Vec<Option<Vec<f32>>> = node
                .inputs
                .iter()
                .zip(&shapes.inputs)
                .map(|(v, s)| wants(v).then(|| gradient(s.elements() as usize)))
                .collect();
            let g = &mut grads.params[i];
            match &node.op {
                Op::Conv(conv) => {
                    let nest = shapes.loop_nest.expect("conv has a loop nest");
                    let (dw, db) = split_grads(g);
                    layers::conv_backward(
                        conv,
                        &nest,
                        x,
                        weights,
                        &dy,
                        dxs[0].as_deref_mut(),
                        dw,
                        db,
                    );
                }
                Op::FullyConnected(fc) => {
                    let (dw, db) = split_grads(g);
                    let k = xs.per_sample();
                    layers::fc_backward(
                        xs.n,
                        k,
                        fc.outputs,
                        x,
                        weights,
                        &dy,
                        dxs[0].as_deref_mut(),
                        dw,
                        db,
                    );
                }
                Op::Linear(_)
                | Op::MatMul
                | Op::Binary(_)
                | Op::Reduce(_)
                | Op::LayerNorm(_)
                | Op::Reshape(_)
                | Op::Squeeze { .. }
                | Op::Unsqueeze { .. }
                | Op::Transpose(_)
                | Op::Slice(_)
                | Op::Gather(_)
                | Op::Pad(_)
                | Op::Expand(_)
                | Op::Constant { .. }
                | Op::Concat { .. } => {
                    let inputs: Vec<&[f32]> = node.inputs.iter().map(|v| trace.value(*v)).collect();
                    nd_backward(node, shapes, &inputs, y, &dy, &mut dxs, g);
                }
                _ => {
                    let mut empty: [f32; 0] = [];
                    // A layer with parameters on an input that wants no gradient still
                    // needs its parameter gradients: it writes its dx into scratch.
                    let mut scratch: Vec<f32>;
                    let dx: &mut [f32] = match dxs[0].as_deref_mut() {
                        Some(dx) => dx,
                        None if node.inputs.len() == 1 && node.params.is_empty() => continue,
                        None if node.inputs.len() == 1 => {
                            scratch = vec![0f32; xs.elements() as usize];
                            &mut scratch
                        }
                        // Only multi-input ops can have later inputs that want a gradient.
                        None => &mut empty,
                    };
                    match (&node.op, &trace.aux[i]) {
                        (Op::Pool(pool), Aux::Argmax(a)) => {
                            layers::pool_backward(pool, xs, shapes.output, a, &dy, dx)
                        }
                        (Op::GlobalPool { kind }, a) => {
                            let a = if let Aux::Argmax(a) = a {
                                a.as_slice()
                            } else {
                                &[]
                            };
                            layers::global_pool_backward(*kind, xs, a, &dy, dx)
                        }
                        (Op::Activation(a), _) => layers::activation_backward(*a, x, y, &dy, dx),
                        (Op::BatchNorm(_), Aux::BatchNorm { cache, .. }) => {
                            let (ds, rest) = g.split_at_mut(1);
                            layers::batch_norm_backward(
                                xs,
                                &node.params[0].data,
                                cache,
                                x,
                                &dy,
                                dx,
                                &mut ds[0],
                                &mut rest[0],
                            );
                        }
                        (Op::BatchNorm(bn), _) => {
                            // Inference-mode batch norm: a per-channel affine map.
                            let hw = xs.h * xs.w;
                            let ps = [0, 1, 2, 3].map(|k| &node.params[k].data);
                            for (j, (dyc, dxc)) in dy.chunks(hw).zip(dx.chunks_mut(hw)).enumerate()
                            {
                                let c = j % xs.c;
                                let k = ps[0][c] / (ps[3][c] + bn.epsilon).sqrt();
                                dyc.iter().zip(dxc).for_each(|(a, b)| *b = a * k);
                                let xc = &x[j * hw..(j + 1) * hw];
                                let inv_std = 1.0 / (ps[3][c] + bn.epsilon).sqrt();
                                g[0][c] += dyc
                                    .iter()
                                    .zip(xc)
                                    .map(|(a, v)| a * (v - ps[2][c]) * inv_std)
                                    .sum::<f32>();
                                g[1][c] += dyc.iter().sum::<f32>();
                            }
                        }
                        (Op::Lrn(lrn), Aux::Lrn(base)) => {
                            layers::lrn_backward(lrn, xs, x, base, &dy, dx)
                        }
                        (Op::Softmax { axis }, _) => {
                            let view = softmax_view(&shapes.input_dims[0], *axis);
                            layers::softmax_backward(view, y, &dy, dx)
                        }
                        (Op::Dropout { .. }, Aux::Dropout(mask)) => dx
                            .iter_mut()
                            .zip(&dy)
                            .zip(mask)
                            .for_each(|((d, g), m)| *d = g * m),
                        (Op::Flatten | Op::Dropout { .. } | Op::Add, _) => {
                            if !dx.is_empty() {
                                dx.copy_from_slice(&dy)
                            }
                        }
                        (op, _) => unreachable!("{} has no backward here", op.kind()),
                    }
                    if let Op::Add = &node.op {
                        for dx in dxs.iter_mut().skip(1).flatten() {
                            dx.copy_from_slice(&dy);
                        }
                    }
                }
            }
            // STE through the input quantizer: zero where the clip saturated.
            if let (Some(act), Some(dx)) = (
                self.quant[i].and_then(|q| q.input),
                dxs.first_mut().and_then(|d| d.as_mut()),
            ) {
                act.ste(float_x, dx);
            }
            for (v, dx) in node.inputs.iter().zip(dxs) {
                if let Some(dx) = dx {
                    pass_back(dx, *v, &mut grads.input, &mut d);
                }
            }
            buffers::recycle(dy);
        }
        grads
    }

    /// Sets a weight mask (1 keeps, 0 prunes) on the filter / weight tensor of a CONV or FC
    /// node and zeroes the pruned weights; training keeps them at zero.
    pub fn set_mask(&mut self, id: NodeId, mask: Vec<f32>) -> Result<(), NnError> {
        self.weights_change();
        let node = self.graph.node(id);
        if node.params.is_empty() || !matches!(node.op, Op::Conv(_) | Op::FullyConnected(_)) {
            return Err(NnError::Unsupported {
                node: node.name.clone(),
                kind: node.op.kind(),
                detail: "masks apply to the weights of CONV and FC layers".into(),
            });
        }
        if mask.len() != node.params[0].len() {
            return Err(NnError::Input(format!(
                "mask for {:?} has {} values, its weights {}",
                node.name,
                mask.len(),
                node.params[0].len()
            )));
        }
        self.masks[id.0] = Some(mask);
        self.apply_masks();
        Ok(())
    }

    pub fn mask(&self, id: NodeId) -> Option<&[f32]> {
        self.masks.get(id.0).and_then(|m| m.as_deref())
    }

    /// Zeroes every masked weight.
    pub fn apply_masks(&mut self) {
        self.weights_change();
        for (i, mask) in self.masks.iter().enumerate() {
            if let Some(mask) = mask {
                let w = &mut self.graph.node_mut(NodeId(i)).params[0].data;
                w.iter_mut().zip(mask).for_each(|(w, m)| *w *= m);
            }
        }
    }

    /// Zeroes the gradients of masked weights, so optimiser state never moves them.
    pub fn mask_gradients(&self, grads: &mut Gradients) {
        for (i, mask) in self.masks.iter().enumerate() {
            if let Some(mask) = mask {
                grads.params[i][0]
                    .iter_mut()
                    .zip(mask)
                    .for_each(|(g, m)| *g *= m);
            }
        }
    }
}

/// Hands the gradient `dx` of value `v` to its producer: the first kept, later ones added.
fn pass_back(dx: Vec<f32>, v: Value, input: &mut Option<Vec<f32>>, d: &mut [Option<Vec<f32>>]) {
    let slot = match v {
        Value::Input => input,
        Value::Node(id) => &mut d[id.0],
    };
    match slot {
        Some(acc) => {
            acc.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
            buffers::recycle(dx);
        }
        None => *slot = Some(dx),
    }
}

/// How a forward pass runs: inference without bookkeeping, inference keeping what backward
/// needs, or training (batch statistics, dropout drawn from the generator).
pub(crate) enum Mode<'a> {
    Inference,
    Trace,
    Train(&'a mut Rng),
}

/// Runs one node on its input values, writing every element of `y`; returns what its
/// backward pass needs.
pub(crate) fn run_node(
    node: &Node,
    shapes: &NodeShapes,
    inputs: &[&[f32]],
    y: &mut [f32],
    mode: Mode,
    prepared: Option<&layers::Filters>,
) -> Aux {
    // A constant has no input; its kernel reads only its parameter.
    let x = inputs.first().copied().unwrap_or_default();
    let xs = shapes.inputs.first().copied().unwrap_or(shapes.output);
    let (dims, out) = (&shapes.input_dims, &shapes.output_dims);
    let p = |k: usize| node.params.get(k).map(|t| t.data.as_slice());
    let bias_only = |k: usize| layers::Epilogue {
        bias: p(k),
        ..Default::default()
    };
    match &node.op {
        Op::Conv(conv) => {
            let nest = shapes.loop_nest.expect("conv has a loop nest");
            let filter = &node.params[0].data;
            layers::conv_forward_prepared(conv, &nest, x, filter, prepared, &bias_only(1), y)
        }
        Op::FullyConnected(fc) => {
            let k = xs.per_sample();

            let weight = &node.params[0].data;
            layers::fc_forward_prepared(xs.n, k, fc.outputs, x, weight, prepared, &bias_only(1), y)
        }
        Op::Pool(pool) => match mode {
            Mode::Inference => layers::pool_inference(pool, xs, shapes.output, x, y),
            _ => return Aux::Argmax(layers::pool_forward(pool, xs, shapes.output, x, y)),
        },
        Op::GlobalPool { kind } => {
            return Aux::Argmax(layers::global_pool_forward(*kind, xs, x, y));
        }
        Op::Activation(a) => layers::activation_forward(*a, x, y),
        Op::BatchNorm(bn) => {
            let ps = [0, 1, 2, 3].map(|k| node.params[k].data.as_slice());
            if let Mode::Train(_) = mode {
                let mut mean = node.params[2].data.clone();
                let mut var = node.params[3].data.clone();
                let cache = layers::batch_norm_train(
                    xs,
                    bn.epsilon,
                    ps[0],
                    ps[1],
                    (&mut mean, &mut var),
                    x,
                    y,
                );
                return Aux::BatchNorm {
                    cache,
                    running_mean: mean,
                    running_var: var,
                };
            }
            layers::batch_norm_inference(xs, bn.epsilon, ps, x, y);
        }
        Op::Lrn(lrn) => return Aux::Lrn(layers::lrn_forward(lrn, xs, x, y)),
        Op::Add => layers::add_forward(inputs, None, y),
        Op::Concat { axis } => {
            let a = dims[0]
                .axis(*axis)
                .expect("shape inference checked the axis");
            layers::concat_forward(inputs, dims, a, y)
        }
        Op::Flatten => y.copy_from_slice(x),
        Op::Softmax { axis } => {
            layers::softmax_forward(softmax_view(&shapes.input_dims[0], *axis), x, y)
        }
        Op::Dropout { ratio } => match mode {
            Mode::Train(rng) if *ratio > 0.0 => {
                let keep = 1.0 - ratio;
                // A multiply by the kept-or-not bit, not a branch: the predictor misses
                // a fair coin's draws (vgg-small's dropout at batch 64: 0.29 -> 0.12 ms a
                // step, alternating epochs in one process). The same mask values.
                // (A ratio of 1 keeps nothing: no `0 * inf`.)
                let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
                let mask: Vec<f32> = (0..x.len())
                    .map(|_| (rng.uniform() < keep) as u8 as f32 * scale)
                    .collect();
                y.iter_mut()
                    .zip(x)
                    .zip(&mask)
                    .for_each(|((y, x), m)| *y = x * m);
                return Aux::Dropout(mask);
            }
            _ => y.copy_from_slice(x),
        },
        Op::Linear(fc) => {
            let k = dims[0].last().copied().unwrap_or(1).max(1);
            let rows = x.len() / k;
            layers::fc_forward(
                rows,
                k,
                fc.outputs,
                x,
                &node.params[0].data,
                &bias_only(1),
                y,
            )
        }
        Op::MatMul => layers::matmul_forward(inputs[0], &dims[0], inputs[1], &dims[1], y),
        Op::Binary(binary) => {
            let data = (x, &dims[0][..]);
            let (a, b) = match &binary.constant {
                None => (data, (inputs[1], &dims[1][..])),
                Some(c) => {
                    let constant = (node.params[0].data.as_slice(), &c.dims[..]);
                    match c.side {
                        Side::Left => (constant, data),
                        Side::Right => (data, constant),
                    }
                }
            };
            layers::binary_forward(binary.kind, a, b, out, y)
        }
        Op::Reduce(reduce) => layers::reduce_forward(reduce, x, &dims[0], y),
        Op::LayerNorm(ln) => {
            let inner = ln.normalized(&dims[0]).map_or(1, |d| d.iter().product());
            let bias = ln.bias.then(|| node.params[1].data.as_slice());
            layers::layer_norm_forward(x, inner, ln.epsilon, &node.params[0].data, bias, y)
        }
        Op::Reshape(_) | Op::Squeeze { .. } | Op::Unsqueeze { .. } => y.copy_from_slice(x),
        Op::Transpose(t) => layers::transpose_forward(x, &dims[0], &t.perm, y),
        Op::Slice(slice) => layers::slice_forward(x, &dims[0], &slice.axes, out, y),
        Op::Gather(gather) => layers::gather_forward(x, &dims[0], gather, y),
        Op::Pad(pad) => layers::pad_forward(x, &dims[0], pad, out, y),
        Op::Expand(_) => layers::broadcast_forward(x, &dims[0], out, y),
        Op::Constant { dims: d, .. } => layers::broadcast_forward(&node.params[0].data, d, out, y),
    }
    Aux::None
}

/// A softmax over `axis` as the softmax over the channels of an `outer x C x inner x 1` view.
fn softmax_view(dims: &Dims, axis: i64) -> Shape {
    let axis = dims.axis(axis).expect("shape inference checked the axis");
    Shape::new(
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
        1,
    )
}

/// Whether the engine trains through `op`. Every op the IR has now has a backward pass; the
/// match names each one (no wildcard) so that a new op must decide here.
fn trains(op: &Op) -> bool {
    match op {
        Op::Conv(_)
        | Op::FullyConnected(_)
        | Op::Pool(_)
        | Op::GlobalPool { .. }
        | Op::Activation(_)
        | Op::BatchNorm(_)
        | Op::Lrn(_)
        | Op::Add
        | Op::Concat { .. }
        | Op::Flatten
        | Op::Softmax { .. }
        | Op::Dropout { .. }
        | Op::Linear(_)
        | Op::MatMul
        | Op::Binary(_)
        | Op::Reduce(_)
        | Op::LayerNorm(_)
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::Slice(_)
        | Op::Gather(_)
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. }
        | Op::Pad(_)
        | Op::Expand(_)
        | Op::Constant { .. } => true,
    }
}

/// Backward of the N-d ops of imported models (and concatenation on any axis): adds the
/// inputs' gradients into `dxs` (where asked for) and the parameter gradients into `g`.
fn nd_backward(
    node: &Node,
    shapes: &NodeShapes,
    inputs: &[&[f32]],
    y: &[f32],
    dy: &[f32],
    dxs: &mut [Option<Vec<f32>>],
    g: &mut [Vec<f32>],
) {
    let (dims, out) = (&shapes.input_dims, &shapes.output_dims);
    let x = inputs.first().copied().unwrap_or_default();
    // The first two inputs' gradients (MatMul and Binary have two operands).
    let (first, rest) = dxs.split_at_mut(dxs.len().min(1));
    let dx0 = first.first_mut().and_then(|d| d.as_deref_mut());
    let dx1 = rest.first_mut().and_then(|d| d.as_deref_mut());
    match &node.op {
        Op::Linear(fc) => {
            let k = dims[0].last().copied().unwrap_or(1).max(1);
            let (dw, db) = split_grads(g);
            let weight = &node.params[0].data;
            layers::fc_backward(x.len() / k, k, fc.outputs, x, weight, dy, dx0, dw, db);
        }
        Op::MatMul => {
            layers::matmul_backward((inputs[0], &dims[0]), (inputs[1], &dims[1]), dy, dx0, dx1)
        }
        Op::Binary(binary) => {
            let data = (x, &dims[0][..]);
            match &binary.constant {
                None => layers::binary_backward(
                    binary.kind,
                    data,
                    (inputs[1], &dims[1][..]),
                    out,
                    dy,
                    dx0,
                    dx1,
                ),
                Some(c) => {
                    let constant = (node.params[0].data.as_slice(), &c.dims[..]);
                    let dc = Some(g[0].as_mut_slice());
                    match c.side {
                        Side::Left => {
                            layers::binary_backward(binary.kind, constant, data, out, dy, dc, dx0)
                        }
                        Side::Right => {
                            layers::binary_backward(binary.kind, data, constant, out, dy, dx0, dc)
                        }
                    }
                }
            }
        }
        Op::LayerNorm(ln) => {
            let inner = ln.normalized(&dims[0]).map_or(1, |d| d.iter().product());
            let (ds, rest) = g.split_at_mut(1);
            let db = rest.first_mut().map(|v| v.as_mut_slice());
            let scale = &node.params[0].data;
            layers::layer_norm_backward(x, inner, ln.epsilon, scale, dy, dx0, &mut ds[0], db);
        }
        Op::Constant { dims: d, .. } => layers::broadcast_backward(d, out, dy, &mut g[0]),
        Op::Concat { axis } => {
            let a = dims[0]
                .axis(*axis)
                .expect("shape inference checked the axis");
            layers::concat_backward(dims, a, dy, dxs);
        }
        op => {
            let Some(dx) = dx0 else { return };
            match op {
                Op::Reduce(r) => layers::reduce_backward(r, x, &dims[0], y, dy, dx),
                Op::Reshape(_) | Op::Squeeze { .. } | Op::Unsqueeze { .. } => {
                    dx.iter_mut().zip(dy).for_each(|(d, g)| *d += g)
                }
                Op::Transpose(t) => layers::transpose_backward(&dims[0], &t.perm, dy, dx),
                Op::Slice(s) => layers::slice_backward(&dims[0], &s.axes, out, dy, dx),
                Op::Gather(gather) => layers::gather_backward(&dims[0], gather, dy, dx),
                Op::Pad(pad) => layers::pad_backward(&dims[0], pad, out, dy, dx),
                Op::Expand(_) => layers::broadcast_backward(&dims[0], out, dy, dx),
                op => unreachable!("{} is not an N-d op", op.kind()),
            }
        }
    }
}

fn split_grads(g: &mut [Vec<f32>]) -> (&mut [f32], Option<&mut [f32]>) {
    let (w, rest) = g.split_first_mut().expect("weighted layer has a weight");
    (w, rest.first_mut().map(|b| b.as_mut_slice()))
}

/// He-uniform weights (bound `sqrt(6 / fan_in)`), zero biases; batch norm starts as identity.
fn init(op: &Op, index: usize, dims: Vec<usize>, rng: &mut Rng) -> Tensor {
    let len: usize = dims.iter().product();
    let data = match (op, index) {
        (Op::Conv(_) | Op::FullyConnected(_) | Op::Linear(_), 0) => {
            let fan_in: usize = dims[1..].iter().product();
            let bound = (6.0 / fan_in.max(1) as f32).sqrt();
            (0..len).map(|_| rng.symmetric(bound)).collect()
        }
        (Op::BatchNorm(_), 0 | 3) | (Op::LayerNorm(_), 0) => vec![1.0; len],
        _ => vec![0.0; len],
    };
    Tensor { shape: dims, data }
}

/// The quantized copy of a CONV or FC node (when its weights are quantized) and its
/// quantized input (when that is), for one forward pass.
pub(crate) fn fake_quantized(
    node: &Node,
    quant: &LayerQuant,
    x: &[f32],
) -> (Option<Node>, Option<Vec<f32>>) {
    let qnode = quant.weight.map(|weight| {
        let mut qnode = node.clone();
        let channels = node.params[0].shape[0];
        qnode.params[0].data = quantize_weights(&node.params[0].data, channels, weight).dequantized;
        qnode
    });
    let qx = quant.input.map(|act| {
        let mut out = vec![0f32; x.len()];
        act.fake_quant(x, &mut out);
        out
    });
    (qnode, qx)
}
