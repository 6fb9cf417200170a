//! vgg-small: a VGG-style CNN for 28x28 grey-scale images (MNIST, Fashion-MNIST), sized to
//! train on two CPU cores in minutes.

use super::Net;
use crate::ops::{Activation, Conv, Op, Pool};
use crate::{Graph, Shape, Value};

/// Three stages of 3x3 CONV (padded, no bias) + batch norm + ReLU, each followed by 2x2 max
/// pooling: 32 filters at 28x28, 64 at 14x14, 128 at 7x7 (pooled to 3x3); then FC 1152 -> 512
/// with ReLU and dropout 0.3, and FC 512 -> 10. 687,392 weights (CONV 92,448, FC 594,944),
/// 8.0 M MACs per image.
pub fn vgg_small() -> Graph {
    let act = Some(Activation::Relu);
    let mut net = Net::new("vgg-small", Shape::new(1, 1, 28, 28));
    let mut x = Value::Input;
    for (stage, filters) in [32, 64, 128].into_iter().enumerate() {
        let n = stage + 1;
        x = net.conv_bn(&format!("conv{n}"), x, Conv::new(filters, 3, 1, 1), act);
        x = net.pool(&format!("pool{n}"), x, Pool::max(2, 2, 0));
    }
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("fc1", x, 512);
    let x = net.relu("fc1/relu", x);
    let x = net.dropout("drop1", x, 0.3);
    net.fc("fc2", x, 10);
    net.finish()
}
