use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of an activation tensor, always in NCHW order.
///
/// Flat feature vectors (the output of a fully connected layer or a `Flatten`) are kept
/// four-dimensional with `h = w = 1`, so every op sees one layout and FC stays a CONV whose
/// filter covers the whole input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(n: usize, c: usize, h: usize, w: usize) -> Self {
        Shape { n, c, h, w }
    }

    /// Number of elements in the tensor (whole batch).
    pub fn elements(&self) -> u64 {
        self.n as u64 * self.c as u64 * self.h as u64 * self.w as u64
    }

    /// Number of elements of one sample (`C * H * W`).
    pub fn per_sample(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Parses `N,C,H,W` (also accepts `x` as separator), as given on the command line.
    pub fn parse(text: &str) -> Result<Shape, String> {
        let parts: Vec<&str> = text
            .split([',', 'x', 'X'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() != 4 {
            return Err(format!(
                "expected four dimensions N,C,H,W, got {} in {text:?}",
                parts.len()
            ));
        }
        let mut dims = [0usize; 4];
        for (dim, part) in dims.iter_mut().zip(&parts) {
            *dim = part
                .parse()
                .map_err(|_| format!("{part:?} is not a positive integer in {text:?}"))?;
            if *dim == 0 {
                return Err(format!("dimensions must be positive in {text:?}"));
            }
        }
        Ok(Shape::new(dims[0], dims[1], dims[2], dims[3]))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}x{}", self.n, self.c, self.h, self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_separators() {
        assert_eq!(Shape::parse("1,3,224,224"), Ok(Shape::new(1, 3, 224, 224)));
        assert_eq!(
            Shape::parse("16x3x227x227"),
            Ok(Shape::new(16, 3, 227, 227))
        );
        assert!(Shape::parse("1,3,224").is_err());
        assert!(Shape::parse("1,0,2,2").is_err());
        assert!(Shape::parse("1,a,2,2").is_err());
    }

    #[test]
    fn counts_elements() {
        assert_eq!(Shape::new(2, 3, 4, 5).elements(), 120);
        assert_eq!(Shape::new(2, 3, 4, 5).per_sample(), 60);
    }
}
