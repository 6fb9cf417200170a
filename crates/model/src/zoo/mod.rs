//! The model zoo: canonical definitions of the networks the papers measure, built as IR
//! graphs without weights. Each entry documents the convention it follows where the
//! literature has more than one (input padding, pooling rounding).

mod classic;
mod compact;
mod inception;
mod mobile28;
mod resnet;
mod vgg_small;

use crate::ops::{Activation, BatchNorm, Conv, FullyConnected, Lrn, Op, Pool};
use crate::{Graph, ModelError, Shape, Value};

/// A built-in network.
pub struct ZooEntry {
    pub name: &'static str,
    pub description: &'static str,
    pub build: fn() -> Graph,
}

/// Every built-in network, in the order `joule zoo` lists them.
pub fn entries() -> &'static [ZooEntry] {
    &[
        ZooEntry {
            name: "lenet5",
            description: "LeNet-5 for 28x28 digits (conv1 padded by 2, as the 32x32 original)",
            build: classic::lenet5,
        },
        ZooEntry {
            name: "lenet300",
            description: "LeNet-300-100 multilayer perceptron for 28x28 digits",
            build: classic::lenet300,
        },
        ZooEntry {
            name: "vgg-small",
            description:
                "VGG-style CNN for 28x28 grey-scale images (3 CONV+BN stages, 2 FC), ~0.69M weights",
            build: vgg_small::vgg_small,
        },
        ZooEntry {
            name: "mobilenetv2-28",
            description:
                "MobileNet-V2-style net for 28x28 grey-scale images (inverted residuals, ReLU6, linear bottlenecks)",
            build: mobile28::mobilenet_v2_28,
        },
        ZooEntry {
            name: "mobilenetv3-28",
            description:
                "MobileNet-V3-style net for 28x28 grey-scale images (squeeze-and-excitation, hard swish)",
            build: mobile28::mobilenet_v3_28,
        },
        ZooEntry {
            name: "alexnet",
            description: "AlexNet (Krizhevsky 2012), grouped conv2/4/5, 227x227 input",
            build: classic::alexnet,
        },
        ZooEntry {
            name: "vgg16",
            description: "VGG-16 (configuration D), 224x224 input",
            build: classic::vgg16,
        },
        ZooEntry {
            name: "googlenet",
            description: "GoogLeNet / Inception v1 without auxiliary heads, 224x224 input",
            build: inception::googlenet,
        },
        ZooEntry {
            name: "resnet50",
            description: "ResNet-50 v1 (stride in the first 1x1 of a block), 224x224 input",
            build: resnet::resnet50,
        },
        ZooEntry {
            name: "resnet152",
            description: "ResNet-152 v1 (stride in the first 1x1 of a block), 224x224 input",
            build: resnet::resnet152,
        },
        ZooEntry {
            name: "wide_resnet50_2",
            description: "Wide ResNet-50-2 v1 (bottlenecks twice as wide), 224x224 input",
            build: resnet::wide_resnet50_2,
        },
        ZooEntry {
            name: "mobilenet",
            description: "MobileNet v1, width 1.0, 224x224 input",
            build: compact::mobilenet,
        },
        ZooEntry {
            name: "squeezenet",
            description: "SqueezeNet v1.0, 227x227 input as in the released Caffe model",
            build: compact::squeezenet,
        },
    ]
}

/// Builds a zoo network by name.
pub fn build(name: &str) -> Result<Graph, ModelError> {
    entries()
        .iter()
        .find(|e| e.name == name)
        .map(|e| (e.build)())
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
        })
}

/// Terse construction helpers shared by the zoo definitions.
pub(crate) struct Net {
    graph: Graph,
}

impl Net {
    pub fn new(name: &str, input: Shape) -> Net {
        Net {
            graph: Graph::new(name, Some(input)),
        }
    }

    pub fn finish(self) -> Graph {
        self.graph
    }

    pub fn op(&mut self, name: impl Into<String>, op: Op, inputs: &[Value]) -> Value {
        self.graph.push(name, op, inputs)
    }

    pub fn conv(&mut self, name: &str, x: Value, conv: Conv) -> Value {
        self.op(name, Op::Conv(conv), &[x])
    }

    pub fn relu(&mut self, name: impl Into<String>, x: Value) -> Value {
        self.op(name, Op::Activation(Activation::Relu), &[x])
    }

    /// CONV followed by ReLU, the unit of the pre-batch-norm networks.
    pub fn conv_relu(&mut self, name: &str, x: Value, conv: Conv) -> Value {
        let y = self.conv(name, x, conv);
        self.relu(format!("{name}/relu"), y)
    }

    /// CONV without bias, batch norm, and optionally an activation.
    pub fn conv_bn(&mut self, name: &str, x: Value, conv: Conv, act: Option<Activation>) -> Value {
        let y = self.conv(name, x, conv.without_bias());
        let y = self.op(
            format!("{name}/bn"),
            Op::BatchNorm(BatchNorm::default()),
            &[y],
        );
        match act {
            Some(a) => self.op(format!("{name}/{}", a.name()), Op::Activation(a), &[y]),
            None => y,
        }
    }

    pub fn pool(&mut self, name: &str, x: Value, pool: Pool) -> Value {
        self.op(name, Op::Pool(pool), &[x])
    }

    pub fn lrn(&mut self, name: &str, x: Value) -> Value {
        self.op(name, Op::Lrn(Lrn::default()), &[x])
    }

    pub fn fc(&mut self, name: &str, x: Value, outputs: usize) -> Value {
        self.op(
            name,
            Op::FullyConnected(FullyConnected {
                outputs,
                bias: true,
            }),
            &[x],
        )
    }

    pub fn dropout(&mut self, name: &str, x: Value, ratio: f32) -> Value {
        self.op(name, Op::Dropout { ratio }, &[x])
    }
}
