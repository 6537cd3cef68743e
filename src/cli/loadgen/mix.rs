//! The sales mix of a simulated till: popular products sell more (Zipf-like), each
//! product has one fixed price, quantities are mostly 1 to 3.

use rust_decimal::Decimal;

use crate::domain::Money;

/// A small, seedable generator (xorshift64*): reproducible runs need no
/// extra dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Picks rank `k` (0-based) with probability ∝ 1/(k+1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut weight_sum = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                weight_sum += 1.0 / (k as f64).powf(s);
                weight_sum
            })
            .collect::<Vec<_>>();
        Zipf {
            cumulative: cumulative.into_iter().map(|c| c / weight_sum).collect(),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// The product's shelf price: fixed per product, 1.00 to 15.99.
pub fn price_of(product_id: u64) -> Money {
    let h = product_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Money::new(Decimal::new(100 + (h % 1500) as i64, 2))
}

/// Mostly 1, often 2 or 3, sometimes up to 6.
pub fn quantity(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=59 => 1,
        60..=84 => 2,
        85..=94 => 3,
        n => 4 + (n % 3) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_the_first_ranks_and_stays_in_range() {
        let z = Zipf::new(100, 1.1);
        let mut rng = Rng::new(7);
        let mut counts = [0usize; 100];
        for _ in 0..20_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[10] && counts[10] > counts[90]);
    }

    #[test]
    fn prices_depend_on_the_product_only_and_stay_in_range() {
        // A function of the id alone: the same figures in every run and
        // on every terminal (--verify relies on it).
        let first: Vec<String> = (1..=5).map(|p| price_of(p).to_string()).collect();
        assert_eq!(first, ["9.89", "6.63", "15.53", "12.26", "9.00"]);
        let mut distinct = std::collections::HashSet::new();
        for p in 1..1000 {
            let m = price_of(p).amount();
            assert!(m >= Decimal::new(100, 2) && m < Decimal::new(1600, 2));
            distinct.insert(m);
        }
        assert!(
            distinct.len() > 500,
            "prices barely vary: {}",
            distinct.len()
        );
    }
}
