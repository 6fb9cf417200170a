//! Mini-batch training and evaluation.

use crate::layers::softmax_cross_entropy;
use crate::{Dataset, FeatureMap, Network, NnError, OptimizerConfig, Rng};
use joule_model::Shape;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Learning-rate schedule over the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Cosine annealing from the base rate to zero at the end of the last epoch.
    Cosine,
}

/// Hyper-parameters of a training run. Every random choice derives from `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub schedule: Schedule,
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    /// Random translation of every training image by up to this many pixels (0: none).
    pub shift: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 64,
            learning_rate: 0.05,
            schedule: Schedule::Constant,
            optimizer: OptimizerConfig::Sgd {
                momentum: 0.9,
                weight_decay: 0.0,
            },
            seed: 0,
            shift: 0,
        }
    }
}

/// Reported during training.
#[derive(Clone, Debug)]
pub enum Event {
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f32,
    },
    Epoch {
        epoch: usize,
        mean_loss: f32,
        seconds: f64,
    },
}

/// Trains `network` on `data`; returns the mean loss of each epoch.
pub fn train(
    network: &mut Network,
    data: &Dataset,
    config: &TrainConfig,
    mut on_event: impl FnMut(&Event),
) -> Result<Vec<f32>, NnError> {
    check_data(network, data)?;
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(NnError::Input(
            "epochs and batch size must be positive".into(),
        ));
    }
    if !(config.learning_rate.is_finite() && config.learning_rate >= 0.0) {
        return Err(NnError::Input(format!(
            "the learning rate must be a non-negative number, got {}",
            config.learning_rate
        )));
    }
    let mut optimizer = config.optimizer.build();
    let root = Rng::new(config.seed);
    let batches = data.len().div_ceil(config.batch_size);
    let total_steps = (batches * config.epochs) as f32;
    let logits = network.logits_node();
    let mut losses = Vec::new();
    for epoch in 0..config.epochs {
        let start = Instant::now();
        let mut rng = root.fork(epoch as u64 + 1);
        let mut order: Vec<usize> = (0..data.len()).collect();
        rng.shuffle(&mut order);
        let mut sum = 0.0f64;
        for (b, indices) in order.chunks(config.batch_size).enumerate() {
            // The step on one of rayon's threads, as inference runs a pass
            // (`Network::infer`): from outside the pool each of the step's parallel loops
            // (some seventy) is a job handed to it and waited for, waking a thread each
            // time; from inside, they are joins. Against the step on the calling thread
            // (alternating processes, 2 threads, 2026-12-02): LeNet-5's epochs 0.76 of the
            // time at batch 64, 0.94 at 256; vgg-small's 0.98 at 64.
            let loss = rayon::scope(|_| {
                crate::threads::pass(|| -> Result<f32, NnError> {
                    let (mut images, labels) = data.batch(indices);
                    if config.shift > 0 {
                        shift_images(&mut images, data.sample, config.shift, &mut rng);
                    }
                    let shape = Shape {
                        n: indices.len(),
                        ..data.sample
                    };
                    let input = FeatureMap::new(shape, images)?;
                    let trace = network.forward_train(&input, &mut rng)?;
                    let out = trace.output(logits);
                    let (loss, d_logits) =
                        softmax_cross_entropy(&out.data, out.shape.per_sample(), &labels);
                    // A diverged run stops here rather than saving NaN weights as a trained model.
                    let diverged = |what: String| NnError::Diverged {
                        epoch: epoch + 1,
                        batch: b + 1,
                        what,
                    };
                    if !loss.is_finite() {
                        return Err(diverged(format!("the loss is {loss}")));
                    }
                    let mut grads = network.backward(&trace, logits, d_logits, false);
                    network.mask_gradients(&mut grads);
                    let step = (epoch * batches + b) as f32;
                    let lr = match config.schedule {
                        Schedule::Constant => config.learning_rate,
                        Schedule::Cosine => {
                            config.learning_rate
                                * 0.5
                                * (1.0 + (std::f32::consts::PI * step / total_steps).cos())
                        }
                    };
                    optimizer.step(network, &grads, lr);
                    if let Err(NnError::NonFiniteWeights { tensor, value, .. }) =
                        crate::checkpoint::check_finite(network.graph(), String::new)
                    {
                        return Err(diverged(format!("weight tensor {tensor} became {value}")));
                    }
                    Ok(loss)
                })
            })?;
            sum += loss as f64;
            on_event(&Event::Batch {
                epoch,
                batch: b,
                batches,
                loss,
            });
        }
        let mean_loss = (sum / batches as f64) as f32;
        losses.push(mean_loss);
        on_event(&Event::Epoch {
            epoch,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(losses)
}

fn check_data(network: &Network, data: &Dataset) -> Result<(), NnError> {
    if data.is_empty() {
        return Err(NnError::Input("the dataset holds no images".into()));
    }
    let want = network.input_shape()?;
    if want != data.sample {
        return Err(NnError::Input(format!(
            "network {:?} takes {} samples, the dataset holds {}",
            network.graph().name,
            want,
            data.sample
        )));
    }
    let shapes = network.graph().infer(want)?;
    let classes = shapes[network.logits_node().0].output.per_sample();
    if let Some(&label) = data.labels.iter().find(|&&l| l as usize >= classes) {
        return Err(NnError::Input(format!(
            "label {label} is out of range for the network's {classes} outputs"
        )));
    }
    Ok(())
}

/// Moves every image by a random offset of up to `max` pixels each way, filling with zero.
fn shift_images(images: &mut [f32], sample: Shape, max: usize, rng: &mut Rng) {
    let (h, w) = (sample.h as isize, sample.w as isize);
    let plane = (h * w) as usize;
    let mut copy = vec![0f32; sample.per_sample()];
    for img in images.chunks_mut(sample.per_sample()) {
        let dy = rng.below(2 * max + 1) as isize - max as isize;
        let dx = rng.below(2 * max + 1) as isize - max as isize;
        copy.copy_from_slice(img);
        for (c, dst) in img.chunks_mut(plane).enumerate() {
            let src = &copy[c * plane..(c + 1) * plane];
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y - dy, x - dx);
                    dst[(y * w + x) as usize] = if sy >= 0 && sy < h && sx >= 0 && sx < w {
                        src[(sy * w + sx) as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Test accuracy and confusion matrix (`confusion[true][predicted]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub accuracy: f64,
    pub samples: usize,
    pub correct: usize,
    pub confusion: Vec<Vec<u64>>,
}

/// Classifies every sample of `data` (inference mode) and scores the arg-max.
pub fn evaluate(
    network: &Network,
    data: &Dataset,
    batch_size: usize,
) -> Result<Evaluation, NnError> {
    check_data(network, data)?;
    let mut confusion: Vec<Vec<u64>> = Vec::new();
    let mut correct = 0;
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let (images, labels) = data.batch(chunk);
        let input = FeatureMap::new(
            Shape {
                n: chunk.len(),
                ..data.sample
            },
            images,
        )?;
        let out = network.forward(&input)?;
        let classes = out.shape.per_sample();
        if confusion.is_empty() {
            confusion = vec![vec![0; classes]; classes];
        }
        for (row, &label) in out.data.chunks(classes).zip(&labels) {
            let predicted = argmax(row);
            confusion[label as usize][predicted] += 1;
            correct += (predicted == label as usize) as usize;
        }
    }
    Ok(Evaluation {
        accuracy: correct as f64 / data.len().max(1) as f64,
        samples: data.len(),
        correct,
        confusion,
    })
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::FullyConnected;
    use joule_model::{Graph, Op, Value};

    /// A linear classifier of 4x4 images, and 32 random images of 10 classes.
    fn setup() -> (Network, Dataset) {
        let mut g = Graph::new("linear", Some(Shape::new(1, 1, 4, 4)));
        let x = g.push("flat", Op::Flatten, &[Value::Input]);
        let fc = FullyConnected {
            outputs: 10,
            bias: true,
        };
        g.push("fc", Op::FullyConnected(fc), &[x]);
        let mut rng = Rng::new(3);
        let data = Dataset {
            sample: Shape::new(1, 1, 4, 4),
            images: (0..32 * 16)
                .map(|_| rng.below(256) as f32 / 255.0)
                .collect(),
            labels: (0..32).map(|i| (i % 10) as u8).collect(),
            classes: 10,
        };
        (Network::new(g, 1).unwrap(), data)
    }

    #[test]
    fn a_diverging_run_is_an_error_not_nan_weights() {
        let (mut net, data) = setup();
        let config = TrainConfig {
            learning_rate: 1e38,
            epochs: 3,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let err = train(&mut net, &data, &config, |_| {}).unwrap_err();
        assert!(matches!(err, NnError::Diverged { .. }), "{err}");
        assert!(err.to_string().contains("lower learning rate"), "{err}");
        // A sane rate trains.
        let (mut net, data) = setup();
        let config = TrainConfig {
            batch_size: 8,
            ..TrainConfig::default()
        };
        train(&mut net, &data, &config, |_| {}).unwrap();
        assert_eq!(net.graph().first_non_finite(), None);
    }

    #[test]
    fn empty_data_and_nan_rates_are_refused() {
        let (mut net, data) = setup();
        let empty = data.clone().take(0);
        let err = train(&mut net, &empty, &TrainConfig::default(), |_| {}).unwrap_err();
        assert!(err.to_string().contains("no images"), "{err}");
        assert!(evaluate(&net, &empty, 8).is_err());
        let nan = TrainConfig {
            learning_rate: f32::NAN,
            ..TrainConfig::default()
        };
        let err = train(&mut net, &data, &nan, |_| {}).unwrap_err();
        assert!(err.to_string().contains("learning rate"), "{err}");
    }
}
