//! The network DAG and shape inference.

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
    /// and, where present, the shapes of the learned parameters.
    pub fn infer(&self, input: Shape) -> Result<Vec<NodeShapes>, ModelError> {
        if self.nodes.is_empty() {
            return Err(ModelError::Empty {
                model: self.name.clone(),
            });
        }
        let input_dims = self.input_dims(input);
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
            let output_dims = node.op.output_dims(&dims, input.n).map_err(shape_error)?;
            let spatial = match node.inputs.first() {
                Some(&v) => self.spatial_source(v, input, &shapes),
                None => output_dims.nchw(),
            };
            let loop_nest = node.op.loop_nest(&dims, spatial).map_err(shape_error)?;
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
        g.push("join", Op::Concat, &[a, b]);
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
