//! Rewrites over the imported nodes: the layer norm that exporters write out before opset 17
//! (`ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul scale, Add shift`) becomes
//! one `LayerNorm`, as `LayerNormalization` imports from opset 17, so both opsets give the
//! same graph, statistics and energy.

use joule_model::ops::{Activation, Binary, BinaryKind, LayerNorm, Reduce, ReduceKind};
use joule_model::{NodeId, Op, Tensor, Value};

/// What the rewrite needs of a node.
pub(crate) trait Rewritable {
    fn op(&self) -> &Op;
    fn inputs(&self) -> &[Value];
    fn inputs_mut(&mut self) -> &mut Vec<Value>;
    fn params(&self) -> &[Tensor];
    /// Becomes the fused layer norm, with the dims (at each batch size) of `last`.
    fn become_layer_norm(&mut self, op: Op, params: Vec<Tensor>, name: String, last: &Self);
    fn name(&self) -> &str;
    /// The size of the output's last axis, where shapes are known.
    fn last_dim(&self) -> Option<usize>;
}

/// Fuses every decomposed layer norm; `output` follows a fused node.
pub(crate) fn layer_norms<N: Rewritable + Clone>(nodes: &mut [N], output: &mut NodeId) {
    for start in 0..nodes.len() {
        let Some((last, op, params)) = match_layer_norm(nodes, start) else {
            continue;
        };
        let tail = nodes[last].clone();
        let name = tail.name().to_string();
        nodes[start].become_layer_norm(op, params, name, &tail);
        for node in nodes.iter_mut().skip(last + 1) {
            for v in node.inputs_mut() {
                if *v == Value::Node(NodeId(last)) {
                    *v = Value::Node(NodeId(start));
                }
            }
        }
        if *output == NodeId(last) {
            *output = NodeId(start);
        }
    }
}

fn consumers<N: Rewritable>(nodes: &[N], id: usize) -> Vec<usize> {
    (id + 1..nodes.len())
        .filter(|&j| nodes[j].inputs().contains(&Value::Node(NodeId(id))))
        .collect()
}

/// The one consumer of `id`, if it has exactly one.
fn sole<N: Rewritable>(nodes: &[N], id: usize) -> Option<usize> {
    match consumers(nodes, id).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// A binary op of `kind` on node `id` and a scalar-or-vector constant: the constant.
fn with_constant<N: Rewritable>(nodes: &[N], id: usize, kind: BinaryKind) -> Option<&Tensor> {
    match nodes[id].op() {
        Op::Binary(Binary {
            kind: k,
            constant: Some(_),
        }) if *k == kind => nodes[id].params().first(),
        _ => None,
    }
}

/// Trailing axes as a negative first axis: `[-1]` is -1, `[-2, -1]` is -2.
fn trailing(axes: &[i64]) -> Option<i64> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let k = sorted.len() as i64;
    (k > 0 && sorted.iter().enumerate().all(|(i, &a)| a == i as i64 - k)).then_some(-k)
}

/// The node index that ends a decomposed layer norm starting at `start`, the fused op and
/// its parameters.
fn match_layer_norm<N: Rewritable>(nodes: &[N], start: usize) -> Option<(usize, Op, Vec<Tensor>)> {
    let Op::Reduce(Reduce {
        kind: ReduceKind::Mean,
        axes,
        keep_dims: true,
    }) = nodes[start].op()
    else {
        return None;
    };
    let axis = trailing(axes)?;
    let x = *nodes[start].inputs().first()?;
    let is = |id: usize, op: &Op| nodes[id].op() == op;
    let two_operands = |kind| {
        Op::Binary(Binary {
            kind,
            constant: None,
        })
    };
    // x - mean
    let sub = sole(nodes, start)?;
    if !is(sub, &two_operands(BinaryKind::Sub))
        || nodes[sub].inputs() != [x, Value::Node(NodeId(start))]
    {
        return None;
    }
    // (x - mean)^2 and (x - mean) / std read the difference.
    let (mut pow, mut div) = match consumers(nodes, sub).as_slice() {
        [a, b] => (*a, *b),
        _ => return None,
    };
    if with_constant(nodes, pow, BinaryKind::Pow).is_none() {
        std::mem::swap(&mut pow, &mut div);
    }
    let exponent = with_constant(nodes, pow, BinaryKind::Pow)?;
    if exponent.data != [2.0] || !is(div, &two_operands(BinaryKind::Div)) {
        return None;
    }
    let var = sole(nodes, pow)?;
    if nodes[var].op() != nodes[start].op() {
        return None;
    }
    let plus_eps = sole(nodes, var)?;
    let eps = with_constant(nodes, plus_eps, BinaryKind::Add)?;
    let [epsilon] = eps.data[..] else {
        return None;
    };
    let sqrt = sole(nodes, plus_eps)?;
    if !is(sqrt, &Op::Activation(Activation::Sqrt))
        || sole(nodes, sqrt)? != div
        || nodes[div].inputs() != [Value::Node(NodeId(sub)), Value::Node(NodeId(sqrt))]
    {
        return None;
    }
    // Optional scale and shift, one value per normalised element.
    let mut last = div;
    let mut scale = None;
    let mut shift = None;
    if let Some(next) = sole(nodes, last) {
        if let Some(gamma) = with_constant(nodes, next, BinaryKind::Mul) {
            scale = Some(gamma.clone());
            last = next;
        }
    }
    if let Some(next) = sole(nodes, last) {
        if let Some(beta) = with_constant(nodes, next, BinaryKind::Add) {
            shift = Some(beta.clone());
            last = next;
        }
    }
    let size = scale
        .as_ref()
        .or(shift.as_ref())
        .map(|t| t.shape.iter().product::<usize>());
    // Without a scale or shift, or with one that broadcasts, leave it unfused.
    let size = size?;
    if nodes[sub].last_dim() != Some(size) {
        return None;
    }
    let flat = |t: Option<Tensor>, fill: f32| -> Option<Tensor> {
        let data = match t {
            Some(t) if t.len() == size => t.data,
            Some(_) => return None,
            None => vec![fill; size],
        };
        Some(Tensor {
            shape: vec![size],
            data,
        })
    };
    if axis != -1 {
        return None; // a vector of scales covers one axis
    }
    let mut params = vec![flat(scale, 1.0)?];
    if shift.is_some() {
        params.push(flat(shift, 0.0)?);
    }
    let op = Op::LayerNorm(LayerNorm {
        axis,
        epsilon,
        bias: params.len() == 2,
    });
    Some((last, op, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_axes() {
        assert_eq!(trailing(&[-1]), Some(-1));
        assert_eq!(trailing(&[-1, -2]), Some(-2));
        assert_eq!(trailing(&[-2]), None);
        assert_eq!(trailing(&[2]), None);
        assert_eq!(trailing(&[]), None);
    }
}
