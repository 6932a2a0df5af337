//! A small seeded generator for simulations: SplitMix64 for uniforms, Box-Muller for normals.
//! Reproducible across runs, threads and machines, unlike libtorch's process-global generator.

/// A seeded stream of uniform and standard normal numbers.
#[derive(Debug, Clone)]
pub struct SeededNormal(u64);

impl SeededNormal {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// 64 random bits (one SplitMix64 step).
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.bits() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal: the first of [`Self::normal_pair`]'s two (the second is dropped).
    pub fn normal(&mut self) -> f64 {
        self.normal_pair().0
    }

    /// Two independent standard normals from one pair of uniforms (both of Box-Muller's
    /// outputs, for bulk draws where one transcendental triple per normal is the cost).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let radius = (-2.0 * self.uniform().max(f64::MIN_POSITIVE).ln()).sqrt();
        let (sine, cosine) = (2.0 * std::f64::consts::PI * self.uniform()).sin_cos();
        (radius * cosine, radius * sine)
    }

    /// `count` standard normals.
    pub fn normals(&mut self, count: usize) -> Vec<f64> {
        (0..count).map(|_| self.normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_unit_variance_and_the_stream_is_reproducible() {
        let mut rng = SeededNormal::new(7);
        let sample = rng.normals(200_000);
        let mean = sample.iter().sum::<f64>() / sample.len() as f64;
        let variance = sample.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / sample.len() as f64;
        assert!(
            mean.abs() < 0.01 && (variance - 1.0).abs() < 0.01,
            "{mean} {variance}"
        );
        assert_eq!(SeededNormal::new(7).normals(5), sample[..5].to_vec());
    }
}
