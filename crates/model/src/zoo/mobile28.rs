//! Compact networks for 28x28 grey-scale images (MNIST, Fashion-MNIST), sized to train on
//! two CPU cores in minutes: a MobileNet-V2-style network (inverted residuals, linear
//! bottlenecks) and a MobileNet-V3-style one (squeeze-and-excitation, hard swish). They are
//! what the compressors meet when the network is already compact (issue 17).

use super::Net;
use crate::ops::{Activation, Binary, BinaryKind, Conv, Op, PoolKind};
use crate::{Graph, Shape, Value};

/// PyTorch's hard sigmoid, `relu6(x + 3) / 6`: MobileNet-V3's gate.
const HARD_SIGMOID: Activation = Activation::HardSigmoid {
    alpha: 1.0 / 6.0,
    beta: 0.5,
};

/// One inverted residual block: a 1x1 expansion to `expanded` channels (skipped when it
/// equals the input's), a depthwise 3x3 with `stride`, an optional squeeze-and-excitation
/// (a quarter of the channels, ReLU, hard-sigmoid gate), and a linear 1x1 projection to
/// `out`; a residual Add when the shape allows it (stride 1, `out == input`).
#[allow(clippy::too_many_arguments)]
fn inverted_residual(
    net: &mut Net,
    name: &str,
    x: Value,
    input: usize,
    expanded: usize,
    out: usize,
    stride: usize,
    se: bool,
    act: Activation,
) -> Value {
    let mut y = x;
    if expanded != input {
        y = net.conv_bn(
            &format!("{name}/expand"),
            y,
            Conv::new(expanded, 1, 1, 0),
            Some(act),
        );
    }
    y = net.conv_bn(
        &format!("{name}/dw"),
        y,
        Conv::new(expanded, 3, stride, 1).with_groups(expanded),
        Some(act),
    );
    if se {
        y = squeeze_excitation(net, &format!("{name}/se"), y, expanded);
    }
    y = net.conv_bn(&format!("{name}/project"), y, Conv::new(out, 1, 1, 0), None);
    if stride == 1 && out == input {
        y = net.op(format!("{name}/add"), Op::Add, &[y, x]);
    }
    y
}

/// Squeeze-and-excitation as torchvision's MobileNet-V3 has it: global average, 1x1 CONV to
/// `channels / 4` (ReLU), 1x1 CONV back (hard sigmoid), and the input scaled per channel.
fn squeeze_excitation(net: &mut Net, name: &str, x: Value, channels: usize) -> Value {
    let s = net.op(
        format!("{name}/pool"),
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    let s = net.conv(&format!("{name}/fc1"), s, Conv::new(channels / 4, 1, 1, 0));
    let s = net.relu(format!("{name}/fc1/relu"), s);
    let s = net.conv(&format!("{name}/fc2"), s, Conv::new(channels, 1, 1, 0));
    let s = net.op(format!("{name}/gate"), Op::Activation(HARD_SIGMOID), &[s]);
    net.op(
        format!("{name}/scale"),
        Op::Binary(Binary {
            kind: BinaryKind::Mul,
            constant: None,
        }),
        &[x, s],
    )
}

/// The head shared by both: 1x1 CONV to 128 (batch norm, `act`), global average pooling,
/// FC 128 -> 10.
fn head(net: &mut Net, x: Value, act: Activation) {
    let x = net.conv_bn("head", x, Conv::new(128, 1, 1, 0), Some(act));
    let x = net.op(
        "pool",
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    let x = net.op("flatten", Op::Flatten, &[x]);
    net.fc("fc", x, 10);
}

/// MobileNet-V2-style (Sandler et al. 2018), ReLU6 after every expansion and depthwise
/// layer, linear bottlenecks: a 3x3 stem of 16 filters at 28x28, then blocks
/// (expansion t, output c, stride s) = (1, 16, 2) at 14x14, (4, 16, 1) with a residual,
/// (4, 32, 2) at 7x7, (4, 32, 1) with a residual; head 1x1 to 128, pool, FC to 10.
/// 21,536 weights, 1.69 M MACs per image (counted in `crates/model/tests/zoo_figures.rs`).
pub fn mobilenet_v2_28() -> Graph {
    let act = Activation::Relu6;
    let mut net = Net::new("mobilenetv2-28", Shape::new(1, 1, 28, 28));
    let x = net.conv_bn("stem", Value::Input, Conv::new(16, 3, 1, 1), Some(act));
    let x = inverted_residual(&mut net, "block1", x, 16, 16, 16, 2, false, act);
    let x = inverted_residual(&mut net, "block2", x, 16, 64, 16, 1, false, act);
    let x = inverted_residual(&mut net, "block3", x, 16, 64, 32, 2, false, act);
    let x = inverted_residual(&mut net, "block4", x, 32, 128, 32, 1, false, act);
    head(&mut net, x, act);
    net.finish()
}

/// MobileNet-V3-style (Howard et al. 2019; EfficientNet's MBConv with SE): a 3x3 stem of
/// 16 filters with hard swish; blocks (expanded, output, stride, SE, activation) =
/// (16, 16, 2, SE, ReLU) at 14x14, (48, 24, 2, -, ReLU) at 7x7, (72, 24, 1, SE, hard swish)
/// with a residual, (96, 32, 1, SE, hard swish); head 1x1 to 128 with hard swish, pool, FC
/// to 10. 24,664 CONV and 1,280 FC weights, 1.13 M MACs per image (counted in
/// `crates/model/tests/zoo_figures.rs`).
pub fn mobilenet_v3_28() -> Graph {
    let (relu, hswish) = (Activation::Relu, Activation::HardSwish);
    let mut net = Net::new("mobilenetv3-28", Shape::new(1, 1, 28, 28));
    let x = net.conv_bn("stem", Value::Input, Conv::new(16, 3, 1, 1), Some(hswish));
    let x = inverted_residual(&mut net, "block1", x, 16, 16, 16, 2, true, relu);
    let x = inverted_residual(&mut net, "block2", x, 16, 48, 24, 2, false, relu);
    let x = inverted_residual(&mut net, "block3", x, 24, 72, 24, 1, true, hswish);
    let x = inverted_residual(&mut net, "block4", x, 24, 96, 32, 1, true, hswish);
    head(&mut net, x, hswish);
    net.finish()
}
