//! The plain feed-forward networks: LeNet-5, LeNet-300-100, AlexNet, VGG-16.

use super::Net;
use crate::ops::{Conv, Op, Pool};
use crate::{Graph, Shape, Value};

/// LeNet-5 on 28x28 inputs. conv1 pads by 2 so that it sees the 32x32 field of the original
/// paper (whose digits were 28x28 centred in 32x32): conv1 gives 28x28x6, conv2 10x10x16, and
/// fc1 covers 16x5x5 = 400 inputs. The final classifier is a trainable FC (84 -> 10) where the
/// original had a fixed RBF layer; the tutorial's table does not count it.
pub fn lenet5() -> Graph {
    let mut net = Net::new("lenet5", Shape::new(1, 1, 28, 28));
    let x = net.conv_relu("conv1", Value::Input, Conv::new(6, 5, 1, 2));
    let x = net.pool("pool1", x, Pool::max(2, 2, 0));
    let x = net.conv_relu("conv2", x, Conv::new(16, 5, 1, 0));
    let x = net.pool("pool2", x, Pool::max(2, 2, 0));
    classifier(&mut net, x, [120, 84, 10]);
    net.finish()
}

/// Flatten, then FC layers `fc1..fc3` with ReLU between them.
fn classifier(net: &mut Net, x: Value, widths: [usize; 3]) {
    let mut x = net.op("flatten", Op::Flatten, &[x]);
    for (i, &m) in widths.iter().enumerate() {
        let name = format!("fc{}", i + 1);
        x = net.fc(&name, x, m);
        if i + 1 < widths.len() {
            x = net.relu(format!("{name}/relu"), x);
        }
    }
}

/// LeNet-300-100 (LeCun et al. 1998; the MLP of Han et al. 2015).
pub fn lenet300() -> Graph {
    let mut net = Net::new("lenet300", Shape::new(1, 1, 28, 28));
    classifier(&mut net, Value::Input, [300, 100, 10]);
    net.finish()
}

/// AlexNet as in Krizhevsky et al. 2012 / Caffe's bvlc_alexnet: conv2, conv4 and conv5 split
/// into two groups (the two-GPU layout), LRN after conv1 and conv2.
pub fn alexnet() -> Graph {
    let mut net = Net::new("alexnet", Shape::new(1, 3, 227, 227));
    let x = net.conv_relu("conv1", Value::Input, Conv::new(96, 11, 4, 0));
    let x = net.lrn("norm1", x);
    let x = net.pool("pool1", x, Pool::max(3, 2, 0));
    let x = net.conv_relu("conv2", x, Conv::new(256, 5, 1, 2).with_groups(2));
    let x = net.lrn("norm2", x);
    let x = net.pool("pool2", x, Pool::max(3, 2, 0));
    let x = net.conv_relu("conv3", x, Conv::new(384, 3, 1, 1));
    let x = net.conv_relu("conv4", x, Conv::new(384, 3, 1, 1).with_groups(2));
    let x = net.conv_relu("conv5", x, Conv::new(256, 3, 1, 1).with_groups(2));
    let x = net.pool("pool5", x, Pool::max(3, 2, 0));
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("fc1", x, 4096);
    let x = net.relu("fc1/relu", x);
    let x = net.dropout("drop1", x, 0.5);
    let x = net.fc("fc2", x, 4096);
    let x = net.relu("fc2/relu", x);
    let x = net.dropout("drop2", x, 0.5);
    let x = net.fc("fc3", x, 1000);
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}

/// VGG-16, configuration D of Simonyan & Zisserman 2015.
pub fn vgg16() -> Graph {
    let mut net = Net::new("vgg16", Shape::new(1, 3, 224, 224));
    let stages: [&[usize]; 5] = [
        &[64, 64],
        &[128, 128],
        &[256, 256, 256],
        &[512, 512, 512],
        &[512, 512, 512],
    ];
    let mut x = Value::Input;
    for (stage, widths) in stages.iter().enumerate() {
        for (i, &m) in widths.iter().enumerate() {
            x = net.conv_relu(
                &format!("conv{}_{}", stage + 1, i + 1),
                x,
                Conv::new(m, 3, 1, 1),
            );
        }
        x = net.pool(&format!("pool{}", stage + 1), x, Pool::max(2, 2, 0));
    }
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("fc6", x, 4096);
    let x = net.relu("fc6/relu", x);
    let x = net.dropout("drop6", x, 0.5);
    let x = net.fc("fc7", x, 4096);
    let x = net.relu("fc7/relu", x);
    let x = net.dropout("drop7", x, 0.5);
    let x = net.fc("fc8", x, 1000);
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}
