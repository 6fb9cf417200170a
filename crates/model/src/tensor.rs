use serde::{Deserialize, Serialize};

/// A dense f32 tensor in row-major order: the storage for learned parameters
/// (filters, biases, batch-norm statistics) attached to IR nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` holds exactly `shape.iter().product()` values.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, String> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(format!(
                "shape {shape:?} needs {expected} values, got {}",
                data.len()
            ));
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let len = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; len],
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Fraction of non-zero values, the weight density that the energy model consumes.
    pub fn density(&self) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|v| **v != 0.0).count() as f64 / self.data.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_and_measures_density() {
        assert!(Tensor::new(vec![2, 2], vec![1.0; 3]).is_err());
        let t = Tensor::new(vec![2, 2], vec![0.0, 1.0, 0.0, 2.0]).unwrap();
        assert_eq!(t.density(), 0.5);
        assert_eq!(Tensor::zeros(vec![3, 2]).len(), 6);
    }
}
