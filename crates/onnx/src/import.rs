//! Graph-level import: resolve tensor names to IR values, apply the op table node by node,
//! keep what the graph output depends on, and validate shapes when the input is known.

use crate::node::NodeCtx;
use crate::ops::{builder, Layer, Mapping};
use crate::proto::{ModelProto, ValueInfoProto};
use crate::tensor::Constant;
use crate::ImportError;
use joule_model::{Graph, NodeId, Op, Shape, Tensor, Value};
use std::collections::{HashMap, HashSet};

/// A node before compaction into the IR graph.
struct Pending {
    name: String,
    op: Op,
    inputs: Vec<Value>,
    params: Vec<Tensor>,
    flatten_to: Option<usize>,
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

    let mut values: HashMap<String, Value> = HashMap::new();
    values.insert(input.name.clone(), Value::Input);
    let mut pending: Vec<Pending> = Vec::new();
    for (index, proto) in graph.node.iter().enumerate() {
        let name = if !proto.name.is_empty() {
            proto.name.clone()
        } else if let Some(out) = proto.output.first().filter(|o| !o.is_empty()) {
            out.clone()
        } else {
            format!("{}_{index}", proto.op_type)
        };
        let ctx = NodeCtx {
            proto,
            name,
            consts: &consts,
            opset,
        };
        if !proto.domain.is_empty() && proto.domain != "ai.onnx" {
            return Err(ImportError::Unsupported {
                node: ctx.name.clone(),
                op_type: format!("{}:{}", proto.domain, proto.op_type),
            });
        }
        let build = builder(&proto.op_type).ok_or_else(|| ImportError::Unsupported {
            node: ctx.name.clone(),
            op_type: proto.op_type.clone(),
        })?;
        let output = proto.output.first().cloned().unwrap_or_default();
        let data = |i: usize| -> Result<Value, ImportError> {
            let tensor = proto
                .input
                .get(i)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ctx.input_error(i, "missing data input"))?;
            values.get(tensor).copied().ok_or_else(|| {
                ctx.input_error(i, "is not produced by any earlier node or the graph input")
            })
        };
        match build(&ctx)? {
            Mapping::Constant(c) => {
                consts.insert(output, c);
            }
            Mapping::Alias => {
                let v = data(0)?;
                values.insert(output, v);
            }
            Mapping::Layer(Layer {
                op,
                params,
                flatten_to,
            }) => {
                let inputs = vec![data(0)?];
                pending.push(Pending {
                    name: ctx.name.clone(),
                    op,
                    inputs,
                    params,
                    flatten_to,
                });
                values.insert(output, Value::Node(NodeId(pending.len() - 1)));
            }
            Mapping::Join(op) => {
                let inputs = (0..proto.input.len()).map(data).collect::<Result<_, _>>()?;
                pending.push(Pending {
                    name: ctx.name.clone(),
                    op,
                    inputs,
                    params: vec![],
                    flatten_to: None,
                });
                values.insert(output, Value::Node(NodeId(pending.len() - 1)));
            }
            Mapping::Bias { data_input, bias } => {
                let source = data(data_input)?;
                fold_bias(&ctx, &mut pending, source, &bias)?;
                values.insert(output, source);
            }
        }
    }

    let output_name = graph
        .output
        .first()
        .map(|o| o.name.clone())
        .ok_or_else(|| ImportError::Output(String::new()))?;
    let output = match values.get(&output_name) {
        Some(Value::Node(id)) => *id,
        _ => return Err(ImportError::Output(output_name)),
    };
    let name = if graph.name.is_empty() {
        fallback_name.to_string()
    } else {
        graph.name.clone()
    };
    let (built, flatten_checks) = compact(&name, input_shape(input)?, pending, output);
    if let Some(shape) = built.input_shape {
        check(&built, shape, &flatten_checks)?;
    }
    Ok(built)
}

/// `MatMul` then `Add(x, b)`: the constant becomes the FC's bias.
fn fold_bias(
    ctx: &NodeCtx,
    pending: &mut [Pending],
    source: Value,
    bias: &Constant,
) -> Result<(), ImportError> {
    let Value::Node(id) = source else {
        return Err(ctx.input_error(0, "adding a constant to the graph input is not supported"));
    };
    let producer = &mut pending[id.0];
    match &mut producer.op {
        Op::FullyConnected(fc) if !fc.bias && bias.len() == fc.outputs => {
            fc.bias = true;
            producer.params.push(bias.reshaped(vec![fc.outputs]));
            Ok(())
        }
        _ => Err(ctx.input_error(
            0,
            "a constant operand of Add is supported only as the bias of a preceding MatMul",
        )),
    }
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

/// The input's NCHW shape (or N x F for flat inputs); `None` when a dimension other than
/// the batch is symbolic. A symbolic batch is taken as 1.
fn input_shape(input: &ValueInfoProto) -> Result<Option<Shape>, ImportError> {
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
    let batch = sizes.first().copied().flatten().unwrap_or(1);
    let rest: Option<Vec<usize>> = sizes.iter().skip(1).copied().collect();
    match (sizes.len(), rest) {
        (4, Some(r)) => Ok(Some(Shape::new(batch, r[0], r[1], r[2]))),
        (2, Some(r)) => Ok(Some(Shape::new(batch, r[0], 1, 1))),
        (2 | 4, None) => Ok(None),
        (rank, _) => Err(ImportError::Input(format!(
            "input {:?} has rank {rank}; joule supports N x C x H x W and N x F inputs",
            input.name
        ))),
    }
}
