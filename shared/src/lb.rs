//! Smooth weighted round robin (nginx's algorithm), sans-io and deterministic.
//!
//! Each worker keeps its own [`SmoothWrr`] per service: no state is shared between cores.

/// Picks among weighted candidates so that, over any window of `sum(weights)` picks, each is
/// chosen `weight` times, interleaved as evenly as possible (3:1 gives a a b a, not a a a b).
#[derive(Debug, Clone, Default)]
pub struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    pub fn new(len: usize) -> Self {
        SmoothWrr {
            current: vec![0; len],
        }
    }

    /// Returns the index of the next candidate among those for which `eligible(i)` is true,
    /// or `None` when none is. `weights[i]` of 0 never wins.
    pub fn pick(&mut self, weights: &[u32], eligible: impl FnMut(usize) -> bool) -> Option<usize> {
        self.pick_by(weights.iter().copied(), eligible)
    }

    /// [`SmoothWrr::pick`] over weights read from the candidates themselves (no slice needed).
    pub fn pick_by(
        &mut self,
        weights: impl ExactSizeIterator<Item = u32>,
        mut eligible: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.current = vec![0; weights.len()];
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, w) in weights.enumerate() {
            if w == 0 || !eligible(i) {
                continue;
            }
            let w = i64::from(w);
            self.current[i] += w;
            total += w;
            match best {
                Some(b) if self.current[b] >= self.current[i] => {}
                _ => best = Some(i),
            }
        }
        if let Some(b) = best {
            self.current[b] -= total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_to_one_interleaves_exactly() {
        let mut wrr = SmoothWrr::new(2);
        let picks: Vec<usize> = (0..8).filter_map(|_| wrr.pick(&[3, 1], |_| true)).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 0, 0, 1, 0]);
        let ones = picks.iter().filter(|&&p| p == 1).count();
        assert_eq!(ones, 2);
    }

    #[test]
    fn counts_match_weights_over_a_window() {
        let weights = [5, 1, 1, 3];
        let mut wrr = SmoothWrr::new(weights.len());
        let mut counts = [0u32; 4];
        for _ in 0..1000 {
            if let Some(i) = wrr.pick(&weights, |_| true) {
                counts[i] += 1;
            }
        }
        assert_eq!(counts, [500, 100, 100, 300]);
    }

    #[test]
    fn ineligible_and_zero_weight_are_skipped() {
        let mut wrr = SmoothWrr::new(3);
        for _ in 0..10 {
            assert_eq!(wrr.pick(&[1, 0, 1], |i| i != 0), Some(2));
        }
        assert_eq!(wrr.pick(&[0, 0], |_| true), None);
        assert_eq!(wrr.pick(&[], |_| true), None);
    }
}
