use thiserror::Error;

/// Everything that can be wrong with a network description. Variants name the node so that
/// a message points at the place to fix.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    #[error("no input shape is known for model {model:?}: pass --input-shape N,C,H,W")]
    MissingInputShape { model: String },
    #[error(
        "model {model:?}: input {input:?} is declared as {declared}; the input shape {given} contradicts it"
    )]
    InputContradicts {
        model: String,
        input: String,
        declared: String,
        given: crate::Shape,
    },
    #[error("node {node:?} ({kind}): {detail}")]
    Shape {
        node: String,
        kind: &'static str,
        detail: String,
    },
    #[error("node {node:?} ({kind}): takes {expected} inputs, got {got}")]
    Arity {
        node: String,
        kind: &'static str,
        expected: String,
        got: usize,
    },
    #[error("node {node:?}: parameter {index} has shape {got:?}, expected {expected:?}")]
    ParamShape {
        node: String,
        index: usize,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A size beyond [`crate::limits`]: `place` is the input or a node. (Callers name the
    /// model or its file; the message does not repeat it.)
    #[error("{place}: {detail}")]
    Limit {
        model: String,
        place: String,
        detail: String,
    },
    /// A graph whose structure is broken (a node reading a missing or later node, two
    /// nodes of one name): possible in a file, never in a graph built with `Graph::push`.
    #[error("model {model:?}: node {node:?}: {detail}")]
    Structure {
        model: String,
        node: String,
        detail: String,
    },
    #[error("model {model:?} has no layers")]
    Empty { model: String },
    #[error("unknown model {name:?}; `joule zoo` lists the built-in models")]
    UnknownModel { name: String },
}
