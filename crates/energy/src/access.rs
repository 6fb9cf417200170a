//! The two axes of every count in the model: the storage [`Level`] (DRAM, global buffer,
//! array network, per-PE RF) and the [`Tensor`] (ifmap, filter, psum), with the values
//! indexed by them: [`PerTensor`] (one value per tensor), [`PerLevel`] (one per level) and
//! [`Accesses`] (one per level and tensor).
//!
//! ```
//! use joule_energy::access::{Accesses, Level, PerTensor, Tensor};
//!
//! let mut acc = Accesses::default();
//! acc[Level::Dram][Tensor::Psum] = 8.0;
//! acc[Level::Rf] = PerTensor::new(32.0, 32.0, 64.0);
//! assert_eq!(acc[Level::Rf], [32.0, 32.0, 64.0]);
//! assert_eq!(acc.dram.psum, 8.0);
//! assert_eq!(acc.total(), 136.0);
//! ```

use serde::{Deserialize, Serialize};
use std::ops::{Index, IndexMut};

/// The four storage levels, outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Dram,
    Buffer,
    /// The inter-PE network: deliveries from the buffer to several PEs and PE-to-PE hops.
    Array,
    Rf,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Dram, Level::Buffer, Level::Array, Level::Rf];

    pub fn name(self) -> &'static str {
        match self {
            Level::Dram => "dram",
            Level::Buffer => "buffer",
            Level::Array => "array",
            Level::Rf => "rf",
        }
    }
}

/// The three data types (tensors) of a CONV/FC layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tensor {
    Ifmap,
    Filter,
    /// Partial sums, which end as the ofmap.
    Psum,
}

impl Tensor {
    pub const ALL: [Tensor; 3] = [Tensor::Ifmap, Tensor::Filter, Tensor::Psum];

    pub fn name(self) -> &'static str {
        match self {
            Tensor::Ifmap => "ifmap",
            Tensor::Filter => "filter",
            Tensor::Psum => "psum",
        }
    }
}

/// One value per tensor. Serialized as `{"ifmap": .., "filter": .., "psum": ..}`; compares
/// equal to the array `[ifmap, filter, psum]` (handy in tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PerTensor<T> {
    pub ifmap: T,
    pub filter: T,
    pub psum: T,
}

impl<T> PerTensor<T> {
    pub const fn new(ifmap: T, filter: T, psum: T) -> Self {
        PerTensor {
            ifmap,
            filter,
            psum,
        }
    }

    /// The value `f(tensor)` for every tensor.
    #[inline]
    pub fn from_fn(mut f: impl FnMut(Tensor) -> T) -> Self {
        PerTensor {
            ifmap: f(Tensor::Ifmap),
            filter: f(Tensor::Filter),
            psum: f(Tensor::Psum),
        }
    }

    /// `f` applied to every value.
    #[inline]
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerTensor<U> {
        PerTensor {
            ifmap: f(self.ifmap),
            filter: f(self.filter),
            psum: f(self.psum),
        }
    }

    /// The values, in [`Tensor::ALL`] order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.ifmap, &self.filter, &self.psum].into_iter()
    }
}

impl<T: Copy> PerTensor<T> {
    /// The same value for every tensor.
    pub const fn splat(value: T) -> Self {
        PerTensor::new(value, value, value)
    }
}

impl PerTensor<f64> {
    pub fn sum(&self) -> f64 {
        self.ifmap + self.filter + self.psum
    }
}

impl<T> Index<Tensor> for PerTensor<T> {
    type Output = T;
    #[inline]
    fn index(&self, tensor: Tensor) -> &T {
        match tensor {
            Tensor::Ifmap => &self.ifmap,
            Tensor::Filter => &self.filter,
            Tensor::Psum => &self.psum,
        }
    }
}

impl<T> IndexMut<Tensor> for PerTensor<T> {
    #[inline]
    fn index_mut(&mut self, tensor: Tensor) -> &mut T {
        match tensor {
            Tensor::Ifmap => &mut self.ifmap,
            Tensor::Filter => &mut self.filter,
            Tensor::Psum => &mut self.psum,
        }
    }
}

impl<T: PartialEq> PartialEq<[T; 3]> for PerTensor<T> {
    fn eq(&self, other: &[T; 3]) -> bool {
        self.ifmap == other[0] && self.filter == other[1] && self.psum == other[2]
    }
}

/// One value per storage level. Serialized as `{"dram": .., "buffer": .., "array": ..,
/// "rf": ..}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PerLevel<T> {
    pub dram: T,
    pub buffer: T,
    pub array: T,
    pub rf: T,
}

impl<T> PerLevel<T> {
    /// The value `f(level)` for every level.
    #[inline]
    pub fn from_fn(mut f: impl FnMut(Level) -> T) -> Self {
        PerLevel {
            dram: f(Level::Dram),
            buffer: f(Level::Buffer),
            array: f(Level::Array),
            rf: f(Level::Rf),
        }
    }

    /// `f` applied to every value.
    #[inline]
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerLevel<U> {
        PerLevel {
            dram: f(self.dram),
            buffer: f(self.buffer),
            array: f(self.array),
            rf: f(self.rf),
        }
    }
}

impl<T> Index<Level> for PerLevel<T> {
    type Output = T;
    #[inline]
    fn index(&self, level: Level) -> &T {
        match level {
            Level::Dram => &self.dram,
            Level::Buffer => &self.buffer,
            Level::Array => &self.array,
            Level::Rf => &self.rf,
        }
    }
}

impl<T> IndexMut<Level> for PerLevel<T> {
    #[inline]
    fn index_mut(&mut self, level: Level) -> &mut T {
        match level {
            Level::Dram => &mut self.dram,
            Level::Buffer => &mut self.buffer,
            Level::Array => &mut self.array,
            Level::Rf => &mut self.rf,
        }
    }
}

/// Accesses (words) per level and tensor: `acc[Level::Dram][Tensor::Psum]`.
pub type Accesses = PerLevel<PerTensor<f64>>;

impl Accesses {
    /// The sum over levels and tensors of `self[level][tensor] * weights[level][tensor]`.
    #[inline]
    pub fn dot(&self, weights: &Accesses) -> f64 {
        let mut total = 0.0;
        for level in Level::ALL {
            for tensor in Tensor::ALL {
                total += self[level][tensor] * weights[level][tensor];
            }
        }
        total
    }

    /// All accesses, every level and tensor.
    pub fn total(&self) -> f64 {
        Level::ALL.iter().map(|&l| self[l].sum()).sum()
    }
}
