//! The mapspace: every legal mapping of a layer under a dataflow.
//!
//! A mapping is a spatial pass (from [`crate::dataflow::passes`]: for RS, one per split of
//! the spare vertical replication between channels and filters) and a blocking of the three
//! pass loops C, M, N: each loop count `L` is split exactly into `L = f_DRAM * f_buffer * f_RF`
//! (every ordered triple of divisors), and the DRAM and buffer levels each take one of the
//! 3! loop orders. So the raw space of one pass has
//! `T(L_C) * T(L_M) * T(L_N) * 36` points, where `T(L)` is the number of ordered divisor
//! triples of `L` (`T(64) = 28`, `T(96) = 63`). Only the order of loops with a factor above 1
//! changes any count, so the search visits each order of the non-trivial loops once.

use crate::dataflow::{Dim, PassUnit};

/// Divisors of `n`, ascending.
pub fn divisors(n: u64) -> Vec<u64> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut i = 1;
    while i * i <= n {
        if n % i == 0 {
            small.push(i);
            if i * i != n {
                large.push(n / i);
            }
        }
        i += 1;
    }
    large.reverse();
    small.extend(large);
    small
}

/// Number of ordered triples `(a, b, c)` with `a * b * c == n`.
pub fn ordered_triples(n: u64) -> u64 {
    divisors(n)
        .iter()
        .map(|&d| divisors(n / d).len() as u64)
        .sum()
}

/// The raw size of the temporal mapspace of one pass (factor triples x 36 orders).
pub fn raw_size(unit: &PassUnit) -> u64 {
    unit.loops
        .iter()
        .map(|&l| ordered_triples(l))
        .product::<u64>()
        * 36
}

/// The distinct orders (outermost first) of a level whose factors are `factors`: the loops
/// with factor 1 go outermost in a fixed order, the others take every permutation.
pub fn distinct_orders(factors: [u64; 3]) -> &'static [[Dim; 3]] {
    let mask = (0..3).fold(0, |m, d| m | (((factors[d] > 1) as usize) << d));
    &ORDERS.get_or_init(|| (0..8).map(orders_for_mask).collect::<Vec<_>>())[mask]
}

static ORDERS: std::sync::OnceLock<Vec<Vec<[Dim; 3]>>> = std::sync::OnceLock::new();

fn orders_for_mask(mask: usize) -> Vec<[Dim; 3]> {
    let trivial: Vec<Dim> = Dim::ALL
        .into_iter()
        .filter(|d| mask & (1 << *d as usize) == 0)
        .collect();
    let busy: Vec<Dim> = Dim::ALL
        .into_iter()
        .filter(|d| mask & (1 << *d as usize) != 0)
        .collect();
    let mut out = Vec::new();
    for perm in permutations(&busy) {
        let mut order = [Dim::C; 3];
        for (slot, d) in order.iter_mut().zip(trivial.iter().chain(perm.iter())) {
            *slot = *d;
        }
        out.push(order);
    }
    out
}

fn permutations(items: &[Dim]) -> Vec<Vec<Dim>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hand() {
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        // 64 = 2^6: C(8, 2) = 28 ordered triples; 96 = 2^5 * 3: C(7, 2) * 3 = 63.
        assert_eq!(ordered_triples(64), 28);
        assert_eq!(ordered_triples(96), 63);
        assert_eq!(ordered_triples(1), 1);
        assert_eq!(distinct_orders([1, 1, 1]).len(), 1);
        assert_eq!(distinct_orders([2, 1, 4]).len(), 2);
        assert_eq!(distinct_orders([2, 3, 4]).len(), 6);
        // Trivial loops sit outermost.
        assert_eq!(distinct_orders([1, 2, 1])[0], [Dim::C, Dim::N, Dim::M]);
    }
}
