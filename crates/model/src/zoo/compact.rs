//! Networks designed for few weights: MobileNet v1 and SqueezeNet v1.0.

use super::Net;
use crate::ops::{Activation, Conv, Op, Pool, PoolKind};
use crate::{Graph, Shape, Value};

/// MobileNet v1 (Howard et al. 2017), width multiplier 1.0, 224x224: a standard 3x3 CONV
/// then 13 depthwise-separable blocks, each a depthwise 3x3 and a pointwise 1x1, both with
/// batch norm and ReLU6 (the released TensorFlow model's activation).
pub fn mobilenet() -> Graph {
    let act = Some(Activation::Relu6);
    let mut net = Net::new("mobilenet", Shape::new(1, 3, 224, 224));
    let mut x = net.conv_bn("conv1", Value::Input, Conv::new(32, 3, 2, 1), act);
    let blocks: [(usize, usize); 13] = [
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    ];
    let mut channels = 32;
    for (i, &(filters, stride)) in blocks.iter().enumerate() {
        let n = i + 2;
        x = net.conv_bn(
            &format!("conv{n}/dw"),
            x,
            Conv::new(channels, 3, stride, 1).with_groups(channels),
            act,
        );
        x = net.conv_bn(&format!("conv{n}/pw"), x, Conv::new(filters, 1, 1, 0), act);
        channels = filters;
    }
    let x = net.op(
        "pool",
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("fc", x, 1000);
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}

/// SqueezeNet v1.0 (Iandola et al. 2016): fire modules of a 1x1 squeeze layer feeding 1x1
/// and 3x3 expand layers whose outputs are concatenated; the classifier is a 1x1 CONV and
/// global average pooling, so the network has no FC layer.
pub fn squeezenet() -> Graph {
    let mut net = Net::new("squeezenet", Shape::new(1, 3, 227, 227));
    let x = net.conv_relu("conv1", Value::Input, Conv::new(96, 7, 2, 0));
    let mut x = net.pool("pool1", x, Pool::max(3, 2, 0).ceil());
    let fires: [(usize, usize); 8] = [
        (16, 64),
        (16, 64),
        (32, 128),
        (32, 128),
        (48, 192),
        (48, 192),
        (64, 256),
        (64, 256),
    ];
    for (i, &(squeeze, expand)) in fires.iter().enumerate() {
        let n = format!("fire{}", i + 2);
        let s = net.conv_relu(&format!("{n}/squeeze1x1"), x, Conv::new(squeeze, 1, 1, 0));
        let e1 = net.conv_relu(&format!("{n}/expand1x1"), s, Conv::new(expand, 1, 1, 0));
        let e3 = net.conv_relu(&format!("{n}/expand3x3"), s, Conv::new(expand, 3, 1, 1));
        x = net.op(format!("{n}/concat"), Op::Concat { axis: 1 }, &[e1, e3]);
        // Max pooling after fire4 and fire8, as in the paper's Table 1.
        if n == "fire4" || n == "fire8" {
            let p = if n == "fire4" { "pool4" } else { "pool8" };
            x = net.pool(p, x, Pool::max(3, 2, 0).ceil());
        }
    }
    let x = net.dropout("drop9", x, 0.5);
    let x = net.conv_relu("conv10", x, Conv::new(1000, 1, 1, 0));
    let x = net.op(
        "pool10",
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}
