//! GoogLeNet (Inception v1, Szegedy et al. 2015), as in Caffe's bvlc_googlenet.

use super::Net;
use crate::ops::{Conv, Op, Pool, PoolKind};
use crate::{Graph, Shape, Value};

/// Output channels of one inception module's four branches:
/// 1x1; 3x3 reduce -> 3x3; 5x5 reduce -> 5x5; pool -> 1x1 projection.
struct Inception {
    name: &'static str,
    b1: usize,
    b3_reduce: usize,
    b3: usize,
    b5_reduce: usize,
    b5: usize,
    pool_proj: usize,
}

const fn module(
    name: &'static str,
    b1: usize,
    b3_reduce: usize,
    b3: usize,
    b5_reduce: usize,
    b5: usize,
    pool_proj: usize,
) -> Inception {
    Inception {
        name,
        b1,
        b3_reduce,
        b3,
        b5_reduce,
        b5,
        pool_proj,
    }
}

fn inception(net: &mut Net, x: Value, m: &Inception) -> Value {
    let n = m.name;
    let b1 = net.conv_relu(&format!("{n}/1x1"), x, Conv::new(m.b1, 1, 1, 0));
    let b3 = net.conv_relu(
        &format!("{n}/3x3_reduce"),
        x,
        Conv::new(m.b3_reduce, 1, 1, 0),
    );
    let b3 = net.conv_relu(&format!("{n}/3x3"), b3, Conv::new(m.b3, 3, 1, 1));
    let b5 = net.conv_relu(
        &format!("{n}/5x5_reduce"),
        x,
        Conv::new(m.b5_reduce, 1, 1, 0),
    );
    let b5 = net.conv_relu(&format!("{n}/5x5"), b5, Conv::new(m.b5, 5, 1, 2));
    let bp = net.pool(&format!("{n}/pool"), x, Pool::max(3, 1, 1));
    let bp = net.conv_relu(
        &format!("{n}/pool_proj"),
        bp,
        Conv::new(m.pool_proj, 1, 1, 0),
    );
    net.op(
        format!("{n}/output"),
        Op::Concat { axis: 1 },
        &[b1, b3, b5, bp],
    )
}

/// Pooling rounds down (112 -> 55 -> 27 -> 13 -> 6), which gives the 1.43 G MACs of the
/// tutorial table that joule's energy results are compared with; Caffe's ceil rounding
/// (112 -> 56 -> 28 -> 14 -> 7) gives 1.58 G. Weights are the same either way.
pub fn googlenet() -> Graph {
    let mut net = Net::new("googlenet", Shape::new(1, 3, 224, 224));
    let x = net.conv_relu("conv1/7x7_s2", Value::Input, Conv::new(64, 7, 2, 3));
    let x = net.pool("pool1/3x3_s2", x, Pool::max(3, 2, 0));
    let x = net.lrn("pool1/norm1", x);
    let x = net.conv_relu("conv2/3x3_reduce", x, Conv::new(64, 1, 1, 0));
    let x = net.conv_relu("conv2/3x3", x, Conv::new(192, 3, 1, 1));
    let x = net.lrn("conv2/norm2", x);
    let mut x = net.pool("pool2/3x3_s2", x, Pool::max(3, 2, 0));
    let stages: [&[Inception]; 3] = [
        &[
            module("inception_3a", 64, 96, 128, 16, 32, 32),
            module("inception_3b", 128, 128, 192, 32, 96, 64),
        ],
        &[
            module("inception_4a", 192, 96, 208, 16, 48, 64),
            module("inception_4b", 160, 112, 224, 24, 64, 64),
            module("inception_4c", 128, 128, 256, 24, 64, 64),
            module("inception_4d", 112, 144, 288, 32, 64, 64),
            module("inception_4e", 256, 160, 320, 32, 128, 128),
        ],
        &[
            module("inception_5a", 256, 160, 320, 32, 128, 128),
            module("inception_5b", 384, 192, 384, 48, 128, 128),
        ],
    ];
    for (i, stage) in stages.iter().enumerate() {
        for m in *stage {
            x = inception(&mut net, x, m);
        }
        if i + 1 < stages.len() {
            x = net.pool(&format!("pool{}/3x3_s2", i + 3), x, Pool::max(3, 2, 0));
        }
    }
    let x = net.op(
        "pool5/7x7_s1",
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    let x = net.dropout("pool5/drop", x, 0.4);
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("loss3/classifier", x, 1000);
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}
