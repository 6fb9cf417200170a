//! Residual networks (He et al. 2016) with bottleneck blocks.

use super::Net;
use crate::ops::{Activation, Conv, Op, Pool, PoolKind};
use crate::{Graph, Shape, Value};

/// A bottleneck ResNet. `blocks` per stage; `width` scales the inner 3x3 width (2 gives the
/// Wide ResNet-50-2 shape). The stride sits in the first 1x1 of a stage, as in the original
/// Caffe models (torchvision's "v1.5" moves it to the 3x3, which adds MACs).
pub(crate) fn bottleneck_resnet(name: &str, blocks: [usize; 4], width: usize) -> Graph {
    let relu = Some(Activation::Relu);
    let mut net = Net::new(name, Shape::new(1, 3, 224, 224));
    let x = net.conv_bn("conv1", Value::Input, Conv::new(64, 7, 2, 3), relu);
    let mut x = net.pool("pool1", x, Pool::max(3, 2, 0).ceil());
    for (stage, &count) in blocks.iter().enumerate() {
        let planes = 64 << stage;
        let inner = planes * width;
        for block in 0..count {
            let n = format!("res{}{}", stage + 2, (b'a' + block as u8) as char);
            let stride = if block == 0 && stage > 0 { 2 } else { 1 };
            let shortcut = if block == 0 {
                net.conv_bn(
                    &format!("{n}/branch1"),
                    x,
                    Conv::new(planes * 4, 1, stride, 0),
                    None,
                )
            } else {
                x
            };
            let y = net.conv_bn(
                &format!("{n}/branch2a"),
                x,
                Conv::new(inner, 1, stride, 0),
                relu,
            );
            let y = net.conv_bn(&format!("{n}/branch2b"), y, Conv::new(inner, 3, 1, 1), relu);
            let y = net.conv_bn(
                &format!("{n}/branch2c"),
                y,
                Conv::new(planes * 4, 1, 1, 0),
                None,
            );
            let sum = net.op(format!("{n}/add"), Op::Add, &[shortcut, y]);
            x = net.relu(format!("{n}/relu"), sum);
        }
    }
    let x = net.op(
        "pool5",
        Op::GlobalPool {
            kind: PoolKind::Average,
        },
        &[x],
    );
    let x = net.op("flatten", Op::Flatten, &[x]);
    let x = net.fc("fc1000", x, 1000);
    net.op("prob", Op::Softmax { axis: 1 }, &[x]);
    net.finish()
}

pub fn resnet50() -> Graph {
    bottleneck_resnet("resnet50", [3, 4, 6, 3], 1)
}

/// ResNet-152 (He et al., CVPR 2016): the deep network with small layers of seed 004.
pub fn resnet152() -> Graph {
    bottleneck_resnet("resnet152", [3, 8, 36, 3], 1)
}

/// Wide ResNet-50-2 (Zagoruyko & Komodakis, BMVC 2016, as in torchvision): ResNet-50 with
/// twice the channels inside each bottleneck, the shallow network with large layers.
pub fn wide_resnet50_2() -> Graph {
    bottleneck_resnet("wide_resnet50_2", [3, 4, 6, 3], 2)
}
