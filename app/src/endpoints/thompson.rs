//! Thompson sampling, as a bandit allocates an endpoint's traffic: each
//! variant's posterior of its metric (Beta–Bernoulli for a binary metric
//! with a uniform prior; for a real one the Normal approximation of its
//! mean, `N(mean, s²/n)`), the chance that each is the best (by drawing
//! from the posteriors), and the shares those chances give within a least
//! and a most share per variant.

use crate::endpoints::stats::{Kind, Sample};
use rand::Rng;

/// How many joint draws estimate the chances of being best.
pub const DRAWS: usize = 10_000;

/// What a variant's metric is believed to be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Posterior {
    /// Beta(a, b) of a rate: 1 + successes, 1 + failures.
    Beta { a: f64, b: f64 },
    /// The mean's Normal approximation.
    Normal { mean: f64, sd: f64 },
}

impl Posterior {
    /// The posterior of a variant's sample; none for a real metric with
    /// fewer than two outcomes (nothing yet says how much values vary).
    pub fn of(sample: &Sample, kind: Kind) -> Option<Posterior> {
        match kind {
            Kind::Binary => {
                let successes = sample.sum.clamp(0.0, sample.n.max(0.0));
                Some(Posterior::Beta { a: 1.0 + successes, b: 1.0 + (sample.n - successes).max(0.0) })
            }
            Kind::Real if sample.n >= 2.0 => {
                let sd = (sample.variance(kind) / sample.n).sqrt();
                Some(Posterior::Normal { mean: sample.mean(), sd })
            }
            Kind::Real => None,
        }
    }

    fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match *self {
            Posterior::Beta { a, b } => {
                let x = gamma(rng, a);
                let y = gamma(rng, b);
                if x + y > 0.0 { x / (x + y) } else { 0.5 }
            }
            Posterior::Normal { mean, sd } => mean + sd * standard_normal(rng),
        }
    }
}

/// The chance that each variant is the best (highest, or lowest when
/// `higher_is_better` is false), from `draws` joint draws; ties share.
pub fn chance_best<R: Rng + ?Sized>(
    posteriors: &[Posterior],
    higher_is_better: bool,
    draws: usize,
    rng: &mut R,
) -> Vec<f64> {
    let mut wins = vec![0.0; posteriors.len()];
    if posteriors.is_empty() || draws == 0 {
        return wins;
    }
    let mut values = vec![0.0; posteriors.len()];
    for _ in 0..draws {
        for (v, p) in values.iter_mut().zip(posteriors) {
            *v = if higher_is_better { p.draw(rng) } else { -p.draw(rng) };
        }
        let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied = values.iter().filter(|v| **v == best).count() as f64;
        for (w, v) in wins.iter_mut().zip(&values) {
            if *v == best {
                *w += 1.0 / tied;
            }
        }
    }
    wins.iter().map(|w| w / draws as f64).collect()
}

/// The shares nearest to `chances` (which sum to 1) with every share in
/// `[least, most]`: `clamp(chance + t, least, most)` with `t` such that
/// the shares sum to 1 (the Euclidean projection onto the bounded
/// simplex). Bounds that no split can meet (`least` above 1/k, `most`
/// under it) are taken as 1/k.
pub fn bounded_shares(chances: &[f64], least: f64, most: f64) -> Vec<f64> {
    let k = chances.len();
    if k == 0 {
        return Vec::new();
    }
    let even = 1.0 / k as f64;
    let (least, most) = (least.min(even), most.max(even));
    let sum = |t: f64| chances.iter().map(|c| (c + t).clamp(least, most)).sum::<f64>();
    // the sum grows with t: from k·least at t = −1 − most to k·most at t = 1 + most
    let (mut low, mut high) = (-1.0 - most, 1.0 + most);
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if sum(mid) < 1.0 { low = mid } else { high = mid }
    }
    let t = (low + high) / 2.0;
    chances.iter().map(|c| (c + t).clamp(least, most)).collect()
}

/// A standard normal draw (Box–Muller).
fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang; shapes under 1 boosted).
fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    #[test]
    fn beta_draws_have_the_posterior_mean() {
        let mut rng = StdRng::seed_from_u64(5);
        let p = Posterior::Beta { a: 13.0, b: 89.0 };
        let mean = (0..40_000).map(|_| p.draw(&mut rng)).sum::<f64>() / 40_000.0;
        assert!((mean - 13.0 / 102.0).abs() < 0.002, "{mean}");
        let small = Posterior::Beta { a: 0.5, b: 0.5 };
        let mean = (0..40_000).map(|_| small.draw(&mut rng)).sum::<f64>() / 40_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn the_better_variant_is_likelier_best_and_a_lower_goal_turns_it_round() {
        let mut rng = StdRng::seed_from_u64(9);
        let a = Posterior::of(&Sample { n: 1_000.0, sum: 100.0, sum_squares: 100.0 }, Kind::Binary)
            .expect("a binary posterior");
        let b = Posterior::of(&Sample { n: 1_000.0, sum: 140.0, sum_squares: 140.0 }, Kind::Binary)
            .expect("a binary posterior");
        let up = chance_best(&[a, b], true, DRAWS, &mut rng);
        assert!(up[1] > 0.99, "{up:?}");
        assert!((up.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let down = chance_best(&[a, b], false, DRAWS, &mut rng);
        assert!(down[0] > 0.99, "{down:?}");
        // equal evidence: an even chance
        let even = chance_best(&[a, a], true, DRAWS, &mut rng);
        assert!((even[0] - 0.5).abs() < 0.03, "{even:?}");
        // a real metric needs two outcomes
        assert!(Posterior::of(&Sample { n: 1.0, sum: 3.0, sum_squares: 9.0 }, Kind::Real).is_none());
    }

    #[test]
    fn shares_keep_within_their_bounds_and_sum_to_one() {
        let cases: [(&[f64], f64, f64); 5] = [
            (&[1.0, 0.0], 0.1, 0.9),
            (&[0.5, 0.5, 0.0], 0.05, 0.4),
            (&[0.98, 0.01, 0.01], 0.1, 0.7),
            (&[0.2, 0.3, 0.5], 0.0, 1.0),
            // bounds no split of three can meet: taken as a third
            (&[0.9, 0.1, 0.0], 0.5, 0.2),
        ];
        for (chances, least, most) in cases {
            let shares = bounded_shares(chances, least, most);
            let sum: f64 = shares.iter().sum();
            assert!((sum - 1.0).abs() < 1e-9, "{chances:?} → {shares:?}");
            let even = 1.0 / chances.len() as f64;
            for s in &shares {
                assert!(*s >= least.min(even) - 1e-9 && *s <= most.max(even) + 1e-9, "{chances:?} → {shares:?}");
            }
        }
        assert_eq!(
            bounded_shares(&[0.2, 0.3, 0.5], 0.0, 1.0).iter().map(|s| (s * 1e6).round()).collect::<Vec<_>>(),
            [200_000.0, 300_000.0, 500_000.0]
        );
        let two = bounded_shares(&[1.0, 0.0], 0.1, 0.9);
        assert!((two[0] - 0.9).abs() < 1e-9 && (two[1] - 0.1).abs() < 1e-9, "{two:?}");
        let three = bounded_shares(&[0.5, 0.5, 0.0], 0.05, 0.4);
        assert!((three[2] - 0.2).abs() < 1e-9, "{three:?}");
    }

    /// Regret of one simulated run: `rounds` intervals of `per_round`
    /// invocations shared out by `shares_of` (given the samples so far),
    /// each invocation converting at its variant's true rate; regret is the
    /// conversions lost against always serving the best variant.
    fn regret(
        rates: &[f64],
        rounds: usize,
        per_round: usize,
        rng: &mut StdRng,
        shares_of: &mut dyn FnMut(&[Sample], &mut StdRng) -> Vec<f64>,
    ) -> f64 {
        let best = rates.iter().copied().fold(0.0, f64::max);
        let mut samples = vec![Sample::default(); rates.len()];
        let mut lost = 0.0;
        for _ in 0..rounds {
            let shares = shares_of(&samples, rng);
            for _ in 0..per_round {
                // the gateway's weighted choice
                let mut x: f64 = rng.random();
                let mut i = 0;
                while i + 1 < shares.len() && x >= shares[i] {
                    x -= shares[i];
                    i += 1;
                }
                let converted = rng.random::<f64>() < rates[i];
                samples[i].add(f64::from(u8::from(converted)));
                lost += best - rates[i];
            }
        }
        lost
    }

    #[test]
    fn thompson_sampling_loses_less_than_an_equal_split() {
        // three variants, the best converting 2 points (20 %) more than the baseline
        let rates = [0.10, 0.11, 0.12];
        let (rounds, per_round, runs) = (48, 500, 40);
        let mut rng = StdRng::seed_from_u64(23);
        let (mut equal, mut thompson) = (0.0, 0.0);
        for _ in 0..runs {
            equal += regret(&rates, rounds, per_round, &mut rng, &mut |s, _| vec![1.0 / s.len() as f64; s.len()]);
            thompson += regret(&rates, rounds, per_round, &mut rng, &mut |samples, rng| {
                let posteriors: Vec<Posterior> =
                    samples.iter().filter_map(|s| Posterior::of(s, Kind::Binary)).collect();
                bounded_shares(&chance_best(&posteriors, true, 2_000, rng), 0.05, 0.9)
            });
        }
        let (equal, thompson) = (equal / runs as f64, thompson / runs as f64);
        println!(
            "mean regret over {runs} runs of {} invocations: equal split {equal:.1} conversions, \
             Thompson sampling (shares 5-90 %) {thompson:.1}",
            rounds * per_round
        );
        // an equal split loses (0.02 + 0.01) / 3 per invocation whatever happens
        assert!((equal / (rounds * per_round) as f64 - 0.01).abs() < 0.001, "{equal}");
        assert!(thompson < 0.6 * equal, "Thompson {thompson} vs equal {equal}");
    }

    #[test]
    fn a_real_metric_allocates_towards_the_higher_mean() {
        let mut rng = StdRng::seed_from_u64(31);
        let mut a = Sample::default();
        let mut b = Sample::default();
        for i in 0..400 {
            let noise = standard_normal(&mut rng);
            if i % 2 == 0 { a.add(10.0 + 3.0 * noise) } else { b.add(11.0 + 3.0 * noise) }
        }
        let posteriors = [
            Posterior::of(&a, Kind::Real).expect("400 outcomes"),
            Posterior::of(&b, Kind::Real).expect("400 outcomes"),
        ];
        let shares = bounded_shares(&chance_best(&posteriors, true, DRAWS, &mut rng), 0.1, 0.9);
        assert!(shares[1] > 0.8, "{shares:?}");
    }
}
