//! The network DAG and shape inference.

use crate::limits;
use crate::ops::{LayerClass, LoopNest, Op};
use crate::{Dims, ModelError, Shape, Tensor};
use serde::{Deserialize, Serialize};

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

/// Where a node reads a tensor from: the graph input or an earlier node's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    Input,
    Node(NodeId),
}

/// One layer of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Value>,
    /// Learned tensors in the order of [`Op::param_shapes`]; empty when the network is a
    /// structure without weights (the zoo), which the training engine initialises.
    pub params: Vec<Tensor>,
}

/// What a model file declares about its input: its name and dimensions, fixed or symbolic.
/// A shape given on the command line must agree with every fixed dimension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    /// `Some(size)` where the file fixes the dimension, `None` where it is symbolic.
    pub dims: Vec<Option<usize>>,
}

impl InputSpec {
    /// Whether the batch axis (the first) is symbolic.
    pub fn dynamic_batch(&self) -> bool {
        matches!(self.dims.first(), Some(None))
    }
}

/// A network: nodes in topological order (every input refers to an earlier node), one input
/// tensor, and the last node as output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub name: String,
    /// The canonical input shape, if the network defines one (the zoo does; an ONNX file may
    /// leave dimensions symbolic; a symbolic batch is 1 here).
    pub input_shape: Option<Shape>,
    /// The input as a model file declares it (imported graphs); `None` for the zoo, whose
    /// input shape is only a default.
    #[serde(default)]
    pub input_spec: Option<InputSpec>,
    nodes: Vec<Node>,
}

/// A learned value that is NaN or infinite ([`Graph::first_non_finite`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    pub node: String,
    /// The parameter's index in [`Op::param_dims`] order (0: the weights).
    pub param: usize,
    /// Position of the value in the tensor, row-major.
    pub index: usize,
    pub value: f32,
}

/// Shapes around one node after inference.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeShapes {
    /// NCHW views of the inputs (see [`Dims::nchw`]).
    pub inputs: Vec<Shape>,
    /// NCHW view of the output.
    pub output: Shape,
    /// For CONV/FC/Linear/MatMul: the loop-nest bounds the energy engine maps.
    pub loop_nest: Option<LoopNest>,
    /// The inputs' dimensions at their own rank.
    pub input_dims: Vec<Dims>,
    /// The output's dimensions at its own rank.
    pub output_dims: Dims,
}

impl Graph {
    pub fn new(name: impl Into<String>, input_shape: Option<Shape>) -> Graph {
        Graph {
            name: name.into(),
            input_shape,
            input_spec: None,
            nodes: Vec::new(),
        }
    }

    /// Appends a node and returns the value it produces.
    ///
    /// # Panics
    /// If an input refers to a node that is not already in this graph: values only come
    /// from earlier `push` calls, so that is a programming error, not bad user input.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[Value]) -> Value {
        for input in inputs {
            if let Value::Node(NodeId(i)) = input {
                assert!(*i < self.nodes.len(), "input refers to a later node");
            }
        }
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            params: Vec::new(),
        });
        Value::Node(NodeId(self.nodes.len() - 1))
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The output node (the last one).
    pub fn output(&self) -> Option<NodeId> {
        self.nodes.len().checked_sub(1).map(NodeId)
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(NodeId)
    }

    /// The nodes that read `id`'s output.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs.contains(&Value::Node(id)))
            .map(NodeId)
            .collect()
    }

    /// The CONV and FC layers (Linear included), in order: the layers with weights.
    pub fn weighted_layers(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op.class(), LayerClass::Conv | LayerClass::Fc))
            .map(|(i, n)| (NodeId(i), n))
    }

    /// Checks the structure of a graph that came from outside the program (a checkpoint's
    /// JSON, an imported file): every input reads the graph input or an earlier node (so
    /// the graph has no cycle and every value is produced before it is used), and no two
    /// nodes share a name (names key the checkpoint's tensors and the run states). The
    /// error names the first offending node. [`Graph::push`] cannot build a graph that
    /// fails the first check; deserialization can.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.check_references()?;
        let mut seen = std::collections::HashMap::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(first) = seen.insert(node.name.as_str(), i) {
                return Err(ModelError::Structure {
                    model: self.name.clone(),
                    node: node.name.clone(),
                    detail: format!(
                        "node #{i} has the name of node #{first}: names must be unique"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Every input reads the graph input or an earlier node: the topological order that
    /// [`Graph::infer`] relies on (a later or missing node would index out of bounds).
    fn check_references(&self) -> Result<(), ModelError> {
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                let Value::Node(NodeId(j)) = *input else {
                    continue;
                };
                let detail = if j >= self.nodes.len() {
                    format!(
                        "reads node #{j}, which does not exist (the graph has {} nodes)",
                        self.nodes.len()
                    )
                } else if j >= i {
                    format!(
                        "node #{i} reads node #{j} ({:?}), which is not an earlier node (a cycle, or nodes out of order)",
                        self.nodes[j].name
                    )
                } else {
                    continue;
                };
                return Err(ModelError::Structure {
                    model: self.name.clone(),
                    node: node.name.clone(),
                    detail,
                });
            }
        }
        Ok(())
    }

    /// The first learned value that is NaN or infinite: its node, parameter index (as in
    /// [`Op::param_dims`]), position in the tensor and value. A diverged training run leaves
    /// such weights; every prediction of the network is then meaningless.
    pub fn first_non_finite(&self) -> Option<NonFinite> {
        self.nodes.iter().find_map(|node| {
            node.params.iter().enumerate().find_map(|(param, t)| {
                // Blocks checked without an early exit (the loop vectorises: a scan of
                // vgg-small's weights after every training step took 1% of it), then the
                // first bad block searched.
                const BLOCK: usize = 256;
                let block = t
                    .data
                    .chunks(BLOCK)
                    .position(|b| b.iter().fold(false, |bad, v| bad | !v.is_finite()))?;
                let index = block * BLOCK
                    + t.data[block * BLOCK..]
                        .iter()
                        .position(|v| !v.is_finite())?;
                Some(NonFinite {
                    node: node.name.clone(),
                    param,
                    index,
                    value: t.data[index],
                })
            })
        })
    }

    /// Resolves the input shape: the one given, else the graph's own. A given shape must
    /// agree with every dimension the model file fixes.
    pub fn resolve_input(&self, input: Option<Shape>) -> Result<Shape, ModelError> {
        if let (Some(given), Some(spec)) = (input, &self.input_spec) {
            let dims = self.input_dims(given);
            let rank_ok = dims.rank() == spec.dims.len();
            let clash = spec
                .dims
                .iter()
                .zip(dims.iter())
                .position(|(fixed, &got)| fixed.is_some_and(|f| f != got));
            if !rank_ok || clash.is_some() {
                let declared: Vec<String> = spec
                    .dims
                    .iter()
                    .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                    .collect();
                return Err(ModelError::InputContradicts {
                    model: self.name.clone(),
                    input: spec.name.clone(),
                    declared: declared.join("x"),
                    given,
                });
            }
        }
        input
            .or(self.input_shape)
            .ok_or_else(|| ModelError::MissingInputShape {
                model: self.name.clone(),
            })
    }

    /// The input's dimensions for an NCHW shape: `[N, F]` when the model file declares a
    /// rank-2 input, `[N, C, H, W]` otherwise.
    pub fn input_dims(&self, input: Shape) -> Dims {
        match &self.input_spec {
            Some(spec) if spec.dims.len() == 2 => Dims::new([input.n, input.per_sample()]),
            _ => Dims::from(input),
        }
    }

    /// Infers every node's shapes from the input shape, checking arity, shape compatibility
    /// and, where present, the shapes of the learned parameters; and, before computing with
    /// them, the sizes of [`crate::limits`]: the input, every op's attributes, every output
    /// and parameter tensor, every layer's MACs and their total.
    pub fn infer(&self, input: Shape) -> Result<Vec<NodeShapes>, ModelError> {
        if self.nodes.is_empty() {
            return Err(ModelError::Empty {
                model: self.name.clone(),
            });
        }
        self.check_references()?;
        let input_dims = self.input_dims(input);
        limits::check_tensor("its shape", &[input.n, input.c, input.h, input.w]).map_err(
            |detail| ModelError::Limit {
                model: self.name.clone(),
                place: "the input".into(),
                detail,
            },
        )?;
        let mut total_macs = 0u64;
        let mut shapes: Vec<NodeShapes> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let kind = node.op.kind();
            let (min, max) = node.op.arity();
            if node.inputs.len() < min || node.inputs.len() > max {
                let expected = if max == usize::MAX {
                    format!("at least {min}")
                } else if min == max {
                    format!("{min}")
                } else {
                    format!("{min} to {max}")
                };
                return Err(ModelError::Arity {
                    node: node.name.clone(),
                    kind,
                    expected,
                    got: node.inputs.len(),
                });
            }
            let dims: Vec<Dims> = node
                .inputs
                .iter()
                .map(|v| match v {
                    Value::Input => input_dims.clone(),
                    Value::Node(id) => shapes[id.0].output_dims.clone(),
                })
                .collect();
            let shape_error = |detail: String| ModelError::Shape {
                node: node.name.clone(),
                kind,
                detail,
            };
            let limit_error = |detail: String| ModelError::Limit {
                model: self.name.clone(),
                place: format!("node {:?} ({kind})", node.name),
                detail,
            };
            limits::check_op(&node.op).map_err(limit_error)?;
            let output_dims = node.op.output_dims(&dims, input.n).map_err(shape_error)?;
            limits::check_tensor("the output", &output_dims).map_err(limit_error)?;
            for param in node.op.param_dims(&dims) {
                limits::check_tensor("a parameter", &param).map_err(limit_error)?;
            }
            let spatial = match node.inputs.first() {
                Some(&v) => self.spatial_source(v, input, &shapes),
                None => output_dims.nchw(),
            };
            let loop_nest = node.op.loop_nest(&dims, spatial).map_err(shape_error)?;
            if let Some(nest) = &loop_nest {
                let n = nest;
                let macs = limits::checked_product(&[n.n, n.groups, n.m, n.c, n.p, n.q, n.r, n.s])
                    .ok_or_else(|| limit_error("its MAC count exceeds 64 bits".into()))?;
                total_macs = total_macs.checked_add(macs).ok_or_else(|| {
                    limit_error("the network's MAC count exceeds 64 bits here".into())
                })?;
                // Ifmap and filter extents of the nest (FC reads through a flatten).
                limits::check_tensor("the ifmap", &[n.n, n.groups * n.c, n.h, n.w])
                    .map_err(limit_error)?;
            }
            if !node.params.is_empty() {
                let expected = node.op.param_dims(&dims);
                if expected.len() != node.params.len() {
                    return Err(shape_error(format!(
                        "has {} parameter tensors, expected {}",
                        node.params.len(),
                        expected.len()
                    )));
                }
                for (index, (got, want)) in node.params.iter().zip(expected).enumerate() {
                    if got.shape != want {
                        return Err(ModelError::ParamShape {
                            node: node.name.clone(),
                            index,
                            got: got.shape.clone(),
                            expected: want,
                        });
                    }
                }
            }
            shapes.push(NodeShapes {
                inputs: dims.iter().map(Dims::nchw).collect(),
                output: output_dims.nchw(),
                loop_nest,
                input_dims: dims,
                output_dims,
            });
        }
        Ok(shapes)
    }

    /// The shape an FC layer's input had before flattening, so that the FC's filter keeps the
    /// `C x H x W` extent of the ifmap it covers.
    fn spatial_source(&self, mut value: Value, input: Shape, shapes: &[NodeShapes]) -> Shape {
        loop {
            match value {
                Value::Input => return input,
                Value::Node(id) => {
                    let node = &self.nodes[id.0];
                    if node.op.is_reshape_only() && node.inputs.len() == 1 {
                        value = node.inputs[0];
                    } else {
                        return shapes[id.0].output;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Activation, Conv, FullyConnected, Pool};

    fn tiny() -> Graph {
        let mut g = Graph::new("tiny", Some(Shape::new(1, 1, 8, 8)));
        let x = g.push("conv", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
        let x = g.push("relu", Op::Activation(Activation::Relu), &[x]);
        let x = g.push("pool", Op::Pool(Pool::max(2, 2, 0)), &[x]);
        let x = g.push("flat", Op::Flatten, &[x]);
        g.push(
            "fc",
            Op::FullyConnected(FullyConnected {
                outputs: 10,
                bias: true,
            }),
            &[x],
        );
        g
    }

    #[test]
    fn infers_shapes_and_fc_sees_through_flatten() {
        let g = tiny();
        let shapes = g.infer(Shape::new(2, 1, 8, 8)).unwrap();
        assert_eq!(shapes[0].output, Shape::new(2, 4, 8, 8));
        assert_eq!(shapes[2].output, Shape::new(2, 4, 4, 4));
        assert_eq!(shapes[3].output, Shape::new(2, 64, 1, 1));
        let fc = shapes[4].loop_nest.unwrap();
        assert_eq!((fc.n, fc.m, fc.c, fc.r, fc.s), (2, 10, 4, 4, 4));
    }

    #[test]
    fn concat_mismatch_names_the_node() {
        let mut g = Graph::new("bad", None);
        let a = g.push("a", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
        let b = g.push("b", Op::Conv(Conv::new(4, 3, 2, 1)), &[Value::Input]);
        g.push("join", Op::Concat { axis: 1 }, &[a, b]);
        let err = g.infer(Shape::new(1, 1, 8, 8)).unwrap_err();
        assert!(err.to_string().contains("\"join\""), "{err}");
        assert!(err.to_string().contains("Concat"), "{err}");
    }

    #[test]
    fn arity_and_param_shapes_are_checked() {
        let mut g = Graph::new("bad", None);
        g.push("sum", Op::Add, &[Value::Input]);
        assert!(matches!(
            g.infer(Shape::new(1, 1, 2, 2)),
            Err(ModelError::Arity { .. })
        ));

        let mut g = tiny();
        g.node_mut(NodeId(0)).params =
            vec![Tensor::zeros(vec![4, 1, 3, 3]), Tensor::zeros(vec![5])];
        let err = g.infer(Shape::new(1, 1, 8, 8)).unwrap_err();
        assert!(
            matches!(err, ModelError::ParamShape { index: 1, .. }),
            "{err}"
        );
    }

    /// A graph as a file could hold it: nodes with arbitrary references.
    fn from_json(nodes: &str) -> Graph {
        let json = format!(
            r#"{{"name":"edited","input_shape":{{"n":1,"c":1,"h":8,"w":8}},"nodes":{nodes}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    const RELU: &str = r#"{"op":"activation","type":"relu"}"#;

    fn node(name: &str, input: &str) -> String {
        format!(r#"{{"name":"{name}","op":{RELU},"inputs":[{input}],"params":[]}}"#)
    }

    #[test]
    fn missing_later_and_duplicate_nodes_are_errors_not_panics() {
        let ok = from_json(&format!(
            "[{},{}]",
            node("a", r#""Input""#),
            node("b", r#"{"Node":0}"#)
        ));
        assert!(ok.validate().is_ok());
        assert!(ok.infer(Shape::new(1, 1, 8, 8)).is_ok());

        let missing = from_json(&format!("[{}]", node("a", r#"{"Node":7}"#)));
        let err = missing.validate().unwrap_err().to_string();
        assert!(
            err.contains("\"a\"") && err.contains("does not exist"),
            "{err}"
        );
        // infer, the path every estimate takes, refuses it too instead of indexing past the end.
        assert!(matches!(
            missing.infer(Shape::new(1, 1, 8, 8)),
            Err(ModelError::Structure { .. })
        ));

        let cycle = from_json(&format!(
            "[{},{}]",
            node("a", r#"{"Node":1}"#),
            node("b", r#"{"Node":0}"#)
        ));
        let err = cycle.infer(Shape::new(1, 1, 8, 8)).unwrap_err().to_string();
        assert!(err.contains("not an earlier node"), "{err}");
        let itself = from_json(&format!("[{}]", node("a", r#"{"Node":0}"#)));
        assert!(itself.validate().is_err());

        let twins = from_json(&format!(
            "[{},{}]",
            node("a", r#""Input""#),
            node("a", r#"{"Node":0}"#)
        ));
        let err = twins.validate().unwrap_err().to_string();
        assert!(err.contains("names must be unique"), "{err}");
    }

    #[test]
    fn sizes_beyond_the_limits_are_errors_not_wrapped_numbers() {
        // 2^32 x 2^32 input: the MAC count used to wrap to 0.
        let err = tiny()
            .infer(Shape::new(1, 1, 1 << 32, 1 << 32))
            .unwrap_err();
        assert!(matches!(err, ModelError::Limit { .. }), "{err}");
        assert!(err.to_string().contains("the input"), "{err}");
        // 2^40 values in the input.
        let err = tiny()
            .infer(Shape::new(1, 1, 1 << 20, 1 << 20))
            .unwrap_err();
        assert!(err.to_string().contains("1099511627776"), "{err}");
        // Pads of 2^62 used to give a 9.2e18-wide output.
        let mut g = tiny();
        if let Op::Conv(conv) = &mut g.node_mut(NodeId(0)).op {
            conv.padding = crate::ops::Padding::uniform(1 << 62);
        }
        let err = g.infer(Shape::new(1, 1, 8, 8)).unwrap_err().to_string();
        assert!(err.contains("\"conv\"") && err.contains("pads"), "{err}");
        // Large but within the limits: counted exactly.
        let mut g = Graph::new("macs", None);
        let mut conv = Conv::new(1 << 12, 1, 1, 0);
        conv.r = 1;
        g.push("wide", Op::Conv(conv), &[Value::Input]);
        let fine = g.infer(Shape::new(1, 1 << 10, 1 << 10, 1 << 10)).unwrap();
        assert_eq!(fine[0].loop_nest.unwrap().macs(), 1 << 42);
        // A 2^30 x 2^34 weight matrix is beyond them.
        let mut g = Graph::new("macs", None);
        g.push(
            "fc",
            Op::FullyConnected(FullyConnected {
                outputs: 1 << 30,
                bias: false,
            }),
            &[Value::Input],
        );
        let err = g
            .infer(Shape::new(1, 1 << 12, 1 << 12, 1 << 10))
            .unwrap_err();
        assert!(matches!(err, ModelError::Limit { .. }), "{err}");
    }

    #[test]
    fn the_first_non_finite_weight_is_found() {
        let mut g = tiny();
        g.node_mut(NodeId(0)).params =
            vec![Tensor::zeros(vec![4, 1, 3, 3]), Tensor::zeros(vec![4])];
        assert_eq!(g.first_non_finite(), None);
        g.node_mut(NodeId(0)).params[1].data[2] = f32::NEG_INFINITY;
        let found = g.first_non_finite().unwrap();
        assert_eq!(
            (found.node.as_str(), found.param, found.index),
            ("conv", 1, 2)
        );
        assert_eq!(found.value, f32::NEG_INFINITY);
        // Past the first block of the scan, two bad values in one block: the first one.
        g.node_mut(NodeId(0)).params[0] = Tensor::zeros(vec![100, 1, 3, 3]);
        g.node_mut(NodeId(0)).params[0].data[700] = f32::NAN;
        g.node_mut(NodeId(0)).params[0].data[705] = f32::INFINITY;
        let found = g.first_non_finite().unwrap();
        assert_eq!((found.param, found.index), (0, 700));
        assert!(found.value.is_nan());
    }

    #[test]
    fn missing_input_shape_is_an_error() {
        let g = Graph::new("free", None);
        assert!(matches!(
            g.resolve_input(None),
            Err(ModelError::MissingInputShape { .. })
        ));
        assert_eq!(tiny().resolve_input(None).unwrap(), Shape::new(1, 1, 8, 8));
    }
}
