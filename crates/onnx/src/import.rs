//! Graph-level import: resolve tensor names to IR values or constants, fold what is known at
//! import time, apply the op table node by node, keep what the graph output depends on, and
//! validate shapes when the input is known.
//!
//! Shapes are followed during import wherever the input's shape is known, because exporters
//! compute `Reshape` targets from activations' shapes (`Shape -> Gather -> Concat`). A dynamic
//! batch axis is followed at two batch sizes; a computed size that scales with the batch
//! becomes [`Extent::Batch`](joule_model::ops::Extent::Batch), so the imported graph works at
//! any batch size.

use crate::fold;
use crate::fuse::{self, Rewritable};
use crate::node::NodeCtx;
use crate::ops::{builder, Layer, Mapping, Operand};
use crate::proto::{ModelProto, NodeProto, ValueInfoProto};
use crate::tensor::Constant;
use crate::ImportError;
use joule_model::ops::{BinaryKind, Extent};
use joule_model::{Dims, Graph, InputSpec, ModelError, NodeId, Op, Shape, Tensor, Value};
use std::collections::{HashMap, HashSet};

/// The batch sizes a dynamic batch axis is followed at.
const DYNAMIC_BATCHES: [usize; 2] = [1, 2];

/// A node before compaction into the IR graph.
#[derive(Clone)]
struct Pending {
    name: String,
    op: Op,
    inputs: Vec<Value>,
    params: Vec<Tensor>,
    flatten_to: Option<usize>,
    /// Output dims at each batch size of `Importer::batches` (empty when unknown).
    dims: Vec<Dims>,
}

struct Importer {
    opset: i64,
    consts: HashMap<String, Constant>,
    /// Batch-dependent constants, one value per batch size.
    varying: HashMap<String, Vec<Constant>>,
    values: HashMap<String, Value>,
    pending: Vec<Pending>,
    /// Batch sizes shapes are followed at; empty when the input's shape is unknown.
    batches: Vec<usize>,
    input_dims: Vec<Dims>,
}

pub(crate) fn import_model(model: &ModelProto, fallback_name: &str) -> Result<Graph, ImportError> {
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    if graph.node.is_empty() {
        return Err(ImportError::NoGraph);
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(13, |o| o.version);

    let mut consts: HashMap<String, Constant> = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), Constant::from_proto(t)?);
    }
    let data_inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let input = match data_inputs.as_slice() {
        [one] => *one,
        [] => return Err(ImportError::Input("the graph has no data input".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
            return Err(ImportError::Input(format!(
                "joule supports one data input, the graph has {names:?}"
            )));
        }
    };
    let spec = input_spec(input)?;
    let (input_shape, batches, input_dims) = match &spec {
        Some(spec) if spec.dims[1..].iter().all(Option::is_some) => {
            let batches = match spec.dims[0] {
                Some(n) => vec![n],
                None => DYNAMIC_BATCHES.to_vec(),
            };
            let rest: Vec<usize> = spec.dims[1..].iter().flatten().copied().collect();
            let dims = batches
                .iter()
                .map(|&n| Dims([vec![n], rest.clone()].concat()))
                .collect::<Vec<_>>();
            (Some(dims[0].nchw()), batches, dims)
        }
        _ => (None, Vec::new(), Vec::new()),
    };

    let mut importer = Importer {
        opset,
        consts,
        varying: HashMap::new(),
        values: HashMap::from([(input.name.clone(), Value::Input)]),
        pending: Vec::new(),
        batches,
        input_dims,
    };
    for (index, proto) in graph.node.iter().enumerate() {
        importer.node(proto, index)?;
    }

    let output_name = graph
        .output
        .first()
        .map(|o| o.name.clone())
        .ok_or_else(|| ImportError::Output(String::new()))?;
    let output = match importer.values.get(&output_name) {
        Some(Value::Node(id)) => *id,
        _ => return Err(ImportError::Output(output_name)),
    };
    let name = if graph.name.is_empty() {
        fallback_name.to_string()
    } else {
        graph.name.clone()
    };
    let mut output = output;
    fuse::layer_norms(&mut importer.pending, &mut output);
    let (mut built, flatten_checks) = compact(&name, input_shape, importer.pending, output);
    built.input_spec = spec;
    built.validate()?;
    if let Some(shape) = built.input_shape {
        check(&built, shape, &flatten_checks)?;
    }
    Ok(built)
}

impl Importer {
    fn node(&mut self, proto: &NodeProto, index: usize) -> Result<(), ImportError> {
        let name = if !proto.name.is_empty() {
            proto.name.clone()
        } else if let Some(out) = proto.output.first().filter(|o| !o.is_empty()) {
            out.clone()
        } else {
            format!("{}_{index}", proto.op_type)
        };
        let dims = proto
            .input
            .iter()
            .map(|i| match self.values.get(i) {
                Some(v) if !self.batches.is_empty() => Some(self.dims(*v, 0).clone()),
                _ => None,
            })
            .collect();
        let ctx = NodeCtx {
            proto,
            name,
            consts: &self.consts,
            varying: &self.varying,
            batches: &self.batches,
            dims,
            opset: self.opset,
        };
        if !proto.domain.is_empty() && proto.domain != "ai.onnx" {
            return Err(ImportError::Unsupported {
                node: ctx.name.clone(),
                op_type: format!("{}:{}", proto.domain, proto.op_type),
            });
        }
        // ONNX values are assigned once (the checker's rule): a second writer of a name
        // would silently replace the first node's output and drop a layer.
        if let Some(taken) = proto.output.iter().find(|o| {
            !o.is_empty()
                && (self.values.contains_key(*o)
                    || self.consts.contains_key(*o)
                    || self.varying.contains_key(*o))
        }) {
            return Err(ImportError::DuplicateOutput {
                node: ctx.name.clone(),
                op_type: proto.op_type.clone(),
                output: taken.clone(),
            });
        }
        let output = proto.output.first().cloned().unwrap_or_default();
        let known = |i: usize| ctx.is_constant(i) || !ctx.has_input(i);
        if proto.op_type == "Shape" && !ctx.is_constant(0) {
            let folded = self.shape_of(&ctx)?;
            self.store(output, folded);
            return Ok(());
        }
        if fold::foldable(&proto.op_type) && (0..proto.input.len()).all(known) {
            let folded = self.fold(&ctx)?;
            self.store(output, folded);
            return Ok(());
        }
        let build = builder(&proto.op_type).ok_or_else(|| ImportError::Unsupported {
            node: ctx.name.clone(),
            op_type: proto.op_type.clone(),
        })?;
        let mapping = build(&ctx)?;
        let name = ctx.name.clone();
        match mapping {
            Mapping::Alias => {
                let v = self.data(proto, &name, 0)?;
                self.values.insert(output, v);
            }
            Mapping::Layer(Layer {
                op,
                params,
                inputs,
                flatten_to,
            }) => {
                let inputs = inputs
                    .into_iter()
                    .map(|i| self.data(proto, &name, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let v = self.push(name, op, inputs, params, flatten_to)?;
                self.values.insert(output, v);
            }
            Mapping::PerOutput(ops) => {
                let source = self.data(proto, &name, 0)?;
                for (op, out) in ops.into_iter().zip(&proto.output) {
                    let v = self.push(format!("{name}:{out}"), op, vec![source], vec![], None)?;
                    self.values.insert(out.clone(), v);
                }
            }
            Mapping::Steps(steps) => {
                let last = steps.len() - 1;
                let mut made: Vec<Value> = Vec::with_capacity(steps.len());
                for (index, step) in steps.into_iter().enumerate() {
                    let inputs = step
                        .inputs
                        .iter()
                        .map(|operand| match *operand {
                            Operand::Input(i) => self.data(proto, &name, i),
                            Operand::Step(s) => Ok(made[s]),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let step_name = if index == last {
                        name.clone()
                    } else {
                        format!("{name}:{}_{index}", step.op.kind())
                    };
                    made.push(self.push(step_name, step.op, inputs, vec![], None)?);
                }
                self.values.insert(output, made[last]);
            }
            Mapping::Bias { data_input, bias } => {
                let source = self.data(proto, &name, data_input)?;
                let v = self.bias(&name, source, bias, data_input)?;
                self.values.insert(output, v);
            }
        }
        Ok(())
    }

    /// Output dims of `value` at batch size number `world`.
    fn dims(&self, value: Value, world: usize) -> &Dims {
        match value {
            Value::Input => &self.input_dims[world],
            Value::Node(id) => &self.pending[id.0].dims[world],
        }
    }

    /// The IR value read as input `index`: an activation, or a constant entering the graph
    /// as a node of its own.
    fn data(&mut self, proto: &NodeProto, node: &str, index: usize) -> Result<Value, ImportError> {
        let error = |detail: &str| ImportError::NodeInput {
            node: node.to_string(),
            op_type: proto.op_type.clone(),
            input: proto.input.get(index).cloned().unwrap_or_default(),
            detail: detail.into(),
        };
        let tensor = proto
            .input
            .get(index)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error("missing data input"))?;
        if let Some(v) = self.values.get(tensor) {
            return Ok(*v);
        }
        let (base, target) = if let Some(c) = self.consts.get(tensor) {
            let target = c.dims.iter().map(|&d| Extent::Fixed(d)).collect();
            (c.clone(), target)
        } else if let Some(worlds) = self.varying.get(tensor) {
            let target = batch_broadcast(worlds, &self.batches).ok_or_else(|| {
                error("depends on the batch size in a way joule cannot represent")
            })?;
            (worlds[0].clone(), target)
        } else {
            return Err(error(
                "is not produced by any earlier node or the graph input",
            ));
        };
        let op = Op::Constant {
            dims: base.dims.clone(),
            target,
        };
        let v = self.push(tensor.clone(), op, vec![], vec![base.to_tensor()], None)?;
        self.values.insert(tensor.clone(), v);
        Ok(v)
    }

    /// Appends an IR node, following its output shape where shapes are known.
    fn push(
        &mut self,
        name: String,
        op: Op,
        inputs: Vec<Value>,
        params: Vec<Tensor>,
        flatten_to: Option<usize>,
    ) -> Result<Value, ImportError> {
        let mut dims = Vec::with_capacity(self.batches.len());
        for (world, &batch) in self.batches.iter().enumerate() {
            let input_dims: Vec<Dims> = inputs
                .iter()
                .map(|&v| self.dims(v, world).clone())
                .collect();
            let out = op.output_dims(&input_dims, batch).map_err(|detail| {
                ImportError::Model(ModelError::Shape {
                    node: name.clone(),
                    kind: op.kind(),
                    detail,
                })
            })?;
            dims.push(out);
        }
        self.pending.push(Pending {
            name,
            op,
            inputs,
            params,
            flatten_to,
            dims,
        });
        Ok(Value::Node(NodeId(self.pending.len() - 1)))
    }

    /// `x + constant`: the bias of a preceding bias-free FC/Linear layer when the constant
    /// is one value per output, else a broadcasting add of the constant.
    fn bias(
        &mut self,
        name: &str,
        source: Value,
        bias: Constant,
        data_input: usize,
    ) -> Result<Value, ImportError> {
        if let Value::Node(id) = source {
            let producer = &mut self.pending[id.0];
            let per_output = bias.dims.iter().rev().skip(1).all(|&d| d == 1);
            if let Op::FullyConnected(fc) | Op::Linear(fc) = &mut producer.op {
                if !fc.bias && bias.len() == fc.outputs && per_output {
                    fc.bias = true;
                    producer.params.push(bias.reshaped(vec![fc.outputs]));
                    return Ok(source);
                }
            }
        }
        let op = crate::ops::constant_operand(BinaryKind::Add, 1 - data_input, bias.dims.clone());
        self.push(
            name.to_string(),
            op,
            vec![source],
            vec![bias.to_tensor()],
            None,
        )
    }

    /// `Shape` of an activation, from the followed dims.
    fn shape_of(&self, ctx: &NodeCtx) -> Result<Vec<Constant>, ImportError> {
        let value = *ctx
            .proto
            .input
            .first()
            .filter(|_| ctx.has_input(0))
            .ok_or_else(|| ctx.input_error(0, "is missing"))
            .and_then(|name| {
                self.values
                    .get(name)
                    .ok_or_else(|| ctx.input_error(0, "is not produced by any earlier node"))
            })?;
        if self.batches.is_empty() {
            return Err(ctx.input_error(
                0,
                "the shape of an activation is needed, but the file leaves the input's shape symbolic",
            ));
        }
        let (start, end) = (ctx.int("start", 0)?, ctx.int("end", i64::MAX)?);
        Ok((0..self.batches.len())
            .map(|w| {
                let d = self.dims(value, w);
                let v: Vec<i64> = d[fold::shape_range(d.rank(), start, end)]
                    .iter()
                    .map(|&x| x as i64)
                    .collect();
                Constant::int(vec![v.len()], v)
            })
            .collect())
    }

    /// Folds a node on constant inputs, at every batch size where one depends on it.
    fn fold(&self, ctx: &NodeCtx) -> Result<Vec<Constant>, ImportError> {
        let depends = ctx.proto.input.iter().any(|i| self.varying.contains_key(i));
        let worlds = if depends { self.batches.len() } else { 1 };
        (0..worlds)
            .map(|w| {
                let inputs: Vec<Option<&Constant>> = ctx
                    .proto
                    .input
                    .iter()
                    .map(|i| {
                        self.consts
                            .get(i)
                            .or_else(|| self.varying.get(i).map(|v| &v[w]))
                    })
                    .collect();
                fold::fold(ctx, &inputs)
            })
            .collect()
    }

    /// Stores a folded value: one constant when every batch size gives the same.
    fn store(&mut self, name: String, mut worlds: Vec<Constant>) {
        let same = worlds
            .iter()
            .all(|c| c.dims == worlds[0].dims && c.values == worlds[0].values);
        if same {
            self.consts.insert(name, worlds.swap_remove(0));
        } else {
            self.varying.insert(name, worlds);
        }
    }
}

impl Rewritable for Pending {
    fn op(&self) -> &Op {
        &self.op
    }

    fn inputs(&self) -> &[Value] {
        &self.inputs
    }

    fn inputs_mut(&mut self) -> &mut Vec<Value> {
        &mut self.inputs
    }

    fn params(&self) -> &[Tensor] {
        &self.params
    }

    fn become_layer_norm(&mut self, op: Op, params: Vec<Tensor>, name: String, last: &Pending) {
        self.op = op;
        self.params = params;
        self.name = name;
        self.dims = last.dims.clone();
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn last_dim(&self) -> Option<usize> {
        self.dims.first().and_then(|d| d.last().copied())
    }
}

/// A batch-dependent constant as the broadcast of its value at the first batch size:
/// the target extents, if every batch size's value is that broadcast.
fn batch_broadcast(worlds: &[Constant], batches: &[usize]) -> Option<Vec<Extent>> {
    let base = &worlds[0];
    let target: Vec<Extent> = (0..base.dims.len())
        .map(|axis| {
            let first = base.dims[axis];
            if worlds.iter().all(|c| c.dims.get(axis) == Some(&first)) {
                return Some(Extent::Fixed(first));
            }
            let k = first / batches[0];
            let scales = k > 0
                && worlds
                    .iter()
                    .zip(batches)
                    .all(|(c, &b)| c.dims.get(axis) == Some(&(k * b)));
            scales.then_some(Extent::Batch(k))
        })
        .collect::<Option<_>>()?;
    let repeats = worlds.iter().all(|c| {
        let idx = joule_model::broadcast_indices(&base.dims, &c.dims);
        c.dims.len() == base.dims.len()
            && idx
                .iter()
                .zip(&c.values)
                .all(|(&i, &v)| base.values[i] == v)
    });
    repeats.then_some(target)
}

/// The IR graph of the nodes the output depends on, in their original order, and the
/// `(node index, width)` that flattening Reshapes state.
fn compact(
    name: &str,
    input: Option<Shape>,
    pending: Vec<Pending>,
    output: NodeId,
) -> (Graph, Vec<(usize, usize)>) {
    let mut needed: HashSet<usize> = HashSet::from([output.0]);
    for i in (0..=output.0).rev() {
        if needed.contains(&i) {
            for v in &pending[i].inputs {
                if let Value::Node(id) = v {
                    needed.insert(id.0);
                }
            }
        }
    }
    let mut graph = Graph::new(name, input);
    let mut remap: HashMap<usize, Value> = HashMap::new();
    let mut flatten_checks = Vec::new();
    for (i, node) in pending.into_iter().enumerate().take(output.0 + 1) {
        if !needed.contains(&i) {
            continue;
        }
        let inputs: Vec<Value> = node
            .inputs
            .iter()
            .map(|v| match v {
                Value::Input => Value::Input,
                Value::Node(id) => remap[&id.0],
            })
            .collect();
        let value = graph.push(node.name, node.op, &inputs);
        let Value::Node(new_id) = value else {
            unreachable!("push returns a node value")
        };
        graph.node_mut(new_id).params = node.params;
        if let Some(k) = node.flatten_to {
            flatten_checks.push((new_id.0, k));
        }
        remap.insert(i, value);
    }
    (graph, flatten_checks)
}

/// Shape inference over the imported graph, plus the widths that flattening Reshapes state.
fn check(
    graph: &Graph,
    input: Shape,
    flatten_checks: &[(usize, usize)],
) -> Result<(), ImportError> {
    let shapes = graph.infer(input)?;
    for &(id, k) in flatten_checks {
        let got = shapes[id].output.c;
        if got != k {
            return Err(ImportError::NodeInput {
                node: graph.nodes()[id].name.clone(),
                op_type: "Reshape".into(),
                input: "shape".into(),
                detail: format!("target width {k} but the input holds {got} values per sample"),
            });
        }
    }
    Ok(())
}

/// The input as the file declares it; `None` when it declares no shape. joule reads
/// N x C x H x W and N x F inputs.
fn input_spec(input: &ValueInfoProto) -> Result<Option<InputSpec>, ImportError> {
    let dims = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| &s.dim);
    let Some(dims) = dims else {
        return Ok(None);
    };
    let sizes: Vec<Option<usize>> = dims
        .iter()
        .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
        .collect();
    match sizes.len() {
        2 | 4 => Ok(Some(InputSpec {
            name: input.name.clone(),
            dims: sizes,
        })),
        rank => Err(ImportError::Input(format!(
            "input {:?} has rank {rank}; joule supports N x C x H x W and N x F inputs",
            input.name
        ))),
    }
}
