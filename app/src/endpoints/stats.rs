//! The statistics of an endpoint's experiments: the lift of a variant over
//! the baseline with an **always-valid** confidence sequence, so that a team
//! may look at the result after every request and still be wrong at most
//! α of the time; a fixed-horizon test for contrast; and the
//! sample-ratio-mismatch check.
//!
//! The confidence sequence is the asymptotic one of Waudby-Smith, Arnold,
//! Wu, Howard, Ramdas and Xu ("Time-uniform central limit theory and
//! asymptotic confidence sequences", arXiv 2103.06476v7, eq. 9, with ρ from
//! eq. 161 and the p-value of eq. 155), applied as GrowthBook's `gbstats`
//! applies it to the relative difference of two means (delta method): the
//! test command checks these figures against `gbstats` on the same inputs.
//! The special functions are written here (ln Γ by Lanczos, the regularized
//! incomplete gamma by series and continued fraction), to about 1e-12.

/// What a variant saw of one metric: the number of units, the sum of the
/// values and the sum of their squares (for a binary metric, the sum).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub n: f64,
    pub sum: f64,
    pub sum_squares: f64,
}

/// How a metric's values are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 0 or 1 per unit (a conversion): a rate, variance p(1 − p).
    Binary,
    /// Any number per unit (revenue, a rating): a mean, the sample variance.
    Real,
}

impl Sample {
    pub fn mean(&self) -> f64 {
        if self.n > 0.0 { self.sum / self.n } else { 0.0 }
    }

    pub fn variance(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Binary => {
                let p = self.mean();
                p * (1.0 - p)
            }
            Kind::Real if self.n > 1.0 => ((self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1.0)).max(0.0),
            Kind::Real => 0.0,
        }
    }

    /// Adds one unit's value.
    pub fn add(&mut self, value: f64) {
        self.n += 1.0;
        self.sum += value;
        self.sum_squares += value * value;
    }
}

/// The relative lift of a variant over the baseline, `(mean_b − mean_a) /
/// mean_a`, with a two-sided interval and its p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lift {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub p_value: f64,
}

impl Lift {
    /// Whether the interval excludes no change.
    pub fn significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The tuning of the confidence sequence when an experiment names none:
/// the total sample size at which it is tightest (gbstats' default).
pub const DEFAULT_TUNING: f64 = 5000.0;

/// The point estimate and its variance (delta method) of the relative
/// lift; `None` when it cannot be judged yet (fewer than two units on a
/// side, a baseline mean of 0, no variance).
fn relative(a: &Sample, b: &Sample, kind: Kind) -> Option<(f64, f64)> {
    let (va, vb) = (a.variance(kind), b.variance(kind));
    let (ma, mb) = (a.mean(), b.mean());
    if a.n < 2.0 || b.n < 2.0 || ma == 0.0 || va <= 0.0 || vb <= 0.0 {
        return None;
    }
    let estimate = (mb - ma) / ma;
    let variance = vb / (ma * ma * b.n) + va * mb * mb / (ma.powi(4) * a.n);
    (variance.is_finite() && variance > 0.0).then_some((estimate, variance))
}

/// The always-valid lift of `b` over `a` at level `alpha`, tightest near a
/// total of `tuning` units.
pub fn sequential(a: &Sample, b: &Sample, kind: Kind, alpha: f64, tuning: f64) -> Option<Lift> {
    let (estimate, variance) = relative(a, b, kind)?;
    let total = a.n + b.n;
    let rho2 = (-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning;
    let s2 = variance * total;
    let grown = total * rho2 + 1.0;
    let width = s2.sqrt() * ((2.0 * grown) * (grown.sqrt() / alpha).ln() / (total * total * rho2)).sqrt();
    let st2 = estimate * estimate * total / variance;
    let e_value = (rho2 * st2 / (2.0 * grown)).exp() / grown.sqrt();
    Some(Lift { estimate, low: estimate - width, high: estimate + width, p_value: (1.0 / e_value).min(1.0) })
}

/// The fixed-horizon lift (a z-test, valid only when looked at once, at a
/// sample size chosen in advance): what a naive dashboard shows.
pub fn fixed_horizon(a: &Sample, b: &Sample, kind: Kind, alpha: f64) -> Option<Lift> {
    let (estimate, variance) = relative(a, b, kind)?;
    let sd = variance.sqrt();
    let width = normal_quantile(1.0 - alpha / 2.0) * sd;
    let p_value = 2.0 * (1.0 - normal_cdf((estimate / sd).abs()));
    Some(Lift { estimate, low: estimate - width, high: estimate + width, p_value })
}

/// The p-value of the chi-square test of the observed units per variant
/// against the configured split (`weights`, any scale); variants of weight
/// 0 are left out. 1 when nothing was observed.
pub fn sample_ratio_mismatch(observed: &[f64], weights: &[f64]) -> f64 {
    let total: f64 = observed.iter().sum();
    let weight: f64 = weights.iter().sum();
    if total <= 0.0 || weight <= 0.0 || observed.len() < 2 {
        return 1.0;
    }
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| {
            let expected = w / weight * total;
            (o - expected).powi(2) / expected
        })
        .sum();
    chi_square_survival(statistic, (observed.len() - 1) as f64)
}

/// P(X > x) for X chi-square with `dof` degrees of freedom.
pub fn chi_square_survival(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(dof / 2.0, x / 2.0)
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    // erf(z) = P(1/2, z²)
    let half = 0.5 * gamma_p(0.5, x * x / 2.0);
    if x >= 0.0 { 0.5 + half } else { 0.5 - half }
}

/// The standard normal quantile, by bisection on [`normal_cdf`].
pub fn normal_quantile(p: f64) -> f64 {
    let (mut low, mut high) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if normal_cdf(mid) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low + high) / 2.0
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

const EPS: f64 = 1e-15;
const TINY: f64 = 1e-300;

/// The regularized lower incomplete gamma P(a, x).
fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else if x < a + 1.0 {
        gamma_series(a, x)
    } else {
        1.0 - gamma_fraction(a, x)
    }
}

/// The regularized upper incomplete gamma Q(a, x) = 1 − P(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        1.0
    } else if x < a + 1.0 {
        1.0 - gamma_series(a, x)
    } else {
        gamma_fraction(a, x)
    }
}

fn gamma_series(a: f64, x: f64) -> f64 {
    let (mut ap, mut term) = (a, 1.0 / a);
    let mut sum = term;
    for _ in 0..10_000 {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum * (-x + a * x.ln() - ln_gamma(a)).exp()
}

/// Q(a, x) by Lentz's continued fraction.
fn gamma_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    (-x + a * x.ln() - ln_gamma(a)).exp() * h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};

    #[test]
    fn special_functions_match_known_values() {
        // reference values from scipy.stats (norm.cdf, chi2.sf)
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-12);
        assert!((normal_cdf(-1.0) - 0.158_655_253_931_457_05).abs() < 1e-12);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
        assert!((chi_square_survival(3.841_458_820_694_124, 1.0) - 0.05).abs() < 1e-12);
        assert!((chi_square_survival(5.991_464_547_107_979, 2.0) - 0.05).abs() < 1e-12);
        assert!((chi_square_survival(30.0, 3.0) - 1.380_057_031_293_255_3e-6).abs() < 1e-17);
        assert!((ln_gamma(10.0) - 362_880.0_f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_balanced_split_shows_no_mismatch_and_a_broken_one_does() {
        assert!(sample_ratio_mismatch(&[5_000.0, 5_010.0], &[1.0, 1.0]) > 0.5);
        assert!(sample_ratio_mismatch(&[5_000.0, 5_400.0], &[50.0, 50.0]) < 0.001);
        // a variant of weight 0 is not expected to see traffic
        assert!(sample_ratio_mismatch(&[900.0, 100.0, 0.0], &[9.0, 1.0, 0.0]) > 0.5);
        assert_eq!(sample_ratio_mismatch(&[0.0, 0.0], &[1.0, 1.0]), 1.0);
    }

    #[test]
    fn nothing_is_judged_without_enough_units() {
        let none = Sample::default();
        let some = Sample { n: 100.0, sum: 10.0, sum_squares: 10.0 };
        assert!(sequential(&none, &some, Kind::Binary, 0.05, DEFAULT_TUNING).is_none());
        let zero = Sample { n: 100.0, sum: 0.0, sum_squares: 0.0 };
        assert!(sequential(&zero, &some, Kind::Binary, 0.05, DEFAULT_TUNING).is_none());
    }

    /// One simulated experiment: both arms drawn from `draw`, checked after
    /// every `every` units per arm up to `max`; the first look at which
    /// each test rejected.
    fn first_rejections(
        rng: &mut StdRng,
        draw: &mut dyn FnMut(&mut StdRng, bool) -> f64,
        kind: Kind,
        every: usize,
        max: usize,
    ) -> (Option<usize>, Option<usize>) {
        let (mut a, mut b) = (Sample::default(), Sample::default());
        let (mut sequential_at, mut fixed_at) = (None, None);
        for n in 1..=max {
            a.add(draw(rng, false));
            b.add(draw(rng, true));
            if n % every != 0 {
                continue;
            }
            if sequential_at.is_none()
                && sequential(&a, &b, kind, 0.05, DEFAULT_TUNING).is_some_and(|l| l.significant())
            {
                sequential_at = Some(n);
            }
            if fixed_at.is_none() && fixed_horizon(&a, &b, kind, 0.05).is_some_and(|l| l.significant()) {
                fixed_at = Some(n);
            }
            if sequential_at.is_some() && fixed_at.is_some() {
                break;
            }
        }
        (sequential_at, fixed_at)
    }

    /// 1 000 A/A experiments (no real difference), each looked at after every
    /// 100 units up to 10 000: the always-valid test rejects in at most
    /// α + 1 % of them; the fixed-horizon test, looked at the same way,
    /// rejects far more often.
    #[test]
    fn peeking_at_an_a_a_experiment_keeps_the_false_positive_rate_at_alpha() {
        let mut rng = StdRng::seed_from_u64(17);
        for (label, kind) in [("conversion 10 %", Kind::Binary), ("revenue, normal(20, 5)", Kind::Real)] {
            let mut draw = |rng: &mut StdRng, _: bool| match kind {
                Kind::Binary => f64::from(u8::from(rng.random::<f64>() < 0.1)),
                Kind::Real => {
                    // Box–Muller
                    let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
                    20.0 + 5.0 * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
                }
            };
            let runs = 1_000;
            let (mut sequential_rejected, mut fixed_rejected) = (0, 0);
            for _ in 0..runs {
                let (s, f) = first_rejections(&mut rng, &mut draw, kind, 100, 10_000);
                sequential_rejected += usize::from(s.is_some());
                fixed_rejected += usize::from(f.is_some());
            }
            let (s_rate, f_rate) = (sequential_rejected as f64 / runs as f64, fixed_rejected as f64 / runs as f64);
            println!(
                "A/A, {label}, {runs} experiments, a look every 100 units up to 10 000: always-valid rejects {:.1} %, \
                 fixed-horizon {:.1} %",
                s_rate * 100.0,
                f_rate * 100.0
            );
            assert!(s_rate <= 0.06, "always-valid test rejected {s_rate} of A/A experiments");
            assert!(f_rate > 2.0 * s_rate && f_rate > 0.10, "fixed-horizon peeking rejected only {f_rate}");
        }
    }

    /// A real lift of 2 percentage points on a 10 % conversion rate (10 % →
    /// 12 %, a relative lift of 20 %) is detected, looking after every 100
    /// units, within 20 000 units per variant in at least 80 % of 300
    /// experiments; and never the wrong way round.
    #[test]
    fn a_real_lift_is_detected_within_the_stated_sample_size() {
        let mut rng = StdRng::seed_from_u64(2);
        let draw = |rng: &mut StdRng, candidate: bool| {
            let rate = if candidate { 0.12 } else { 0.10 };
            f64::from(u8::from(rng.random::<f64>() < rate))
        };
        let runs = 300;
        let mut detected = Vec::new();
        for _ in 0..runs {
            let (mut a, mut b) = (Sample::default(), Sample::default());
            for n in 1..=20_000 {
                a.add(draw(&mut rng, false));
                b.add(draw(&mut rng, true));
                if n % 100 == 0
                    && let Some(lift) = sequential(&a, &b, Kind::Binary, 0.05, DEFAULT_TUNING)
                    && lift.significant()
                {
                    assert!(lift.low > 0.0, "a better candidate was called worse at {n} units: {lift:?}");
                    detected.push(n);
                    break;
                }
            }
        }
        detected.sort_unstable();
        let share = detected.len() as f64 / runs as f64;
        let median = detected.get(detected.len() / 2).copied().unwrap_or_default();
        println!(
            "10 % → 12 % conversion: detected in {:.0} % of {runs} experiments within 20 000 units per variant \
             (median {median})",
            share * 100.0
        );
        assert!(share >= 0.8, "detected in only {share} of the experiments");
    }
}
