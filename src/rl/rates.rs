//! Is a driver's km between infractions really above the floor's? Exact Poisson statistics for
//! the counts behind Table IV.
//!
//! Infractions of one kind are rare events along the distance driven, so their count in `km`
//! kilometres is modelled as Poisson with mean `λ · km`, and "km between infractions" estimates
//! `1/λ`. A figure such as "0.31 km between collisions" from two collisions is a weak floor:
//! its exact 95 % interval spans a factor of thirty. Two functions quantify that:
//!
//! - [`poisson_interval`]: Garwood's (1936) exact two-sided interval for a Poisson mean from an
//!   observed count `n`: the `L` with `P(X ≥ n; L) = α/2` and the `U` with
//!   `P(X ≤ n; U) = α/2` (`L = 0` when `n = 0`). Equivalently `L = χ²(α/2; 2n)/2` and
//!   `U = χ²(1 − α/2; 2n + 2)/2`; [`InfractionCount::km_between_interval`] turns it into
//!   `km / U … km / L`.
//! - [`rate_below_p`]: the conditional test of two Poisson rates (Przyborowski & Wilenski
//!   1940): given the driver's `n_d` and the floor's `n_f` infractions in `km_d` and `km_f`,
//!   under equal rates the driver's count is `Binomial(n_d + n_f, km_d / (km_d + km_f))`, and the
//!   one-sided p-value that its rate is *not* below the floor's is `P(X ≤ n_d)`.
//!
//! [`InfractionCount::of`] pools a driver's benchmark rows ([`pool_by_recipe`] groups the
//! rows of several training seeds and records, [`with_recipes`] names them with their episode
//! counts); [`floor_table`] puts every driver
//! beside a floor (the random policy without brake), one cell per kind:
//! `km between (count) [interval] p`. Notebook `09-driving-agent`, section 18; `rwt drive eval
//! --baselines` prints it for every driver that moved in the training town.

use super::benchmark::BenchmarkRow;
use crate::plot::Table;
use crate::sim::InfractionKind;
use crate::{Error, Result};

/// What is counted: infractions of one kind, or the collisions of one kind whose other party
/// the driver drove into ([`crate::sim::Impact::driven_into`]: ahead of the moving ego car).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Every infraction of this kind.
    Kind(InfractionKind),
    /// The collisions of this kind with a party ahead of the moving ego car.
    DrivenInto(InfractionKind),
}

impl Counted {
    /// Table IV's kinds, each collision with people and cars followed by the ones driven into.
    pub const ALL: [Counted; 7] = [
        Counted::Kind(InfractionKind::CollisionPerson),
        Counted::DrivenInto(InfractionKind::CollisionPerson),
        Counted::Kind(InfractionKind::CollisionVehicle),
        Counted::DrivenInto(InfractionKind::CollisionVehicle),
        Counted::Kind(InfractionKind::CollisionStatic),
        Counted::Kind(InfractionKind::OffLane),
        Counted::Kind(InfractionKind::OffRoad),
    ];

    /// Its column name: the kind's, with "driven into" after it.
    pub fn name(self) -> String {
        match self {
            Counted::Kind(k) => k.name().into(),
            Counted::DrivenInto(k) => format!("{} driven into", k.name()),
        }
    }
}

/// Infractions counted over the kilometres driven.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InfractionCount {
    /// Kilometres driven (> 0).
    pub km: f64,
    /// Infractions in them.
    pub count: u64,
}

impl InfractionCount {
    /// `count` infractions in `km` kilometres; an `Err` names a `km` that is not finite and
    /// positive.
    pub fn new(km: f64, count: u64) -> Result<Self> {
        if !(km.is_finite() && km > 0.0) {
            return Err(Error::invalid("km", km, "expected a finite, positive distance"));
        }
        Ok(InfractionCount { km, count })
    }

    /// The infractions `what` of `rows` (one driver's rows, e.g. one per training seed),
    /// pooled: their kilometres summed and their infractions counted. `Err` when the rows
    /// drove no distance.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a BenchmarkRow>, what: Counted) -> Result<Self> {
        let (mut km, mut count) = (0.0, 0u64);
        for r in rows {
            km += r.pooled.km;
            count += r
                .episodes
                .iter()
                .flat_map(|e| &e.infractions)
                .filter(|i| match what {
                    Counted::Kind(k) => i.kind == k,
                    Counted::DrivenInto(k) => i.kind == k && i.impact.is_some_and(|im| im.driven_into()),
                })
                .count() as u64;
        }
        InfractionCount::new(km, count)
    }

    /// km between infractions, `km / count`; `None` when there were none.
    pub fn km_between(&self) -> Option<f64> {
        (self.count > 0).then(|| self.km / self.count as f64)
    }

    /// The exact `confidence` interval of km between infractions, `km / U … km / L` with
    /// [`poisson_interval`]'s `(L, U)`; the upper end is infinite when `count = 0`.
    pub fn km_between_interval(&self, confidence: f64) -> Result<(f64, f64)> {
        let (lo, hi) = poisson_interval(self.count, confidence)?;
        Ok((self.km / hi, if lo > 0.0 { self.km / lo } else { f64::INFINITY }))
    }
}

/// Garwood's exact two-sided `confidence` interval `(L, U)` for the mean of a Poisson count
/// observed as `count`: `P(X ≥ count; L) = α/2` (`L = 0` for `count = 0`) and
/// `P(X ≤ count; U) = α/2`, with `α = 1 − confidence`. Found by bisection to a relative 1e-12.
/// `Err` when `confidence` is not in (0, 1).
pub fn poisson_interval(count: u64, confidence: f64) -> Result<(f64, f64)> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::invalid("confidence", confidence, "expected a probability in (0, 1)"));
    }
    let half = (1.0 - confidence) / 2.0;
    // P(X ≤ n; λ) falls from 1 to 0 as λ grows: bisect for the λ where it equals `target`.
    let solve = |n: u64, target: f64| {
        let mut hi = 1.0 + n as f64;
        while poisson_cdf(n, hi) > target {
            hi *= 2.0;
        }
        let mut lo = 0.0;
        while hi - lo > 1e-12 * hi {
            let mid = 0.5 * (lo + hi);
            if poisson_cdf(n, mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let lower = if count == 0 { 0.0 } else { solve(count - 1, 1.0 - half) };
    Ok((lower, solve(count, half)))
}

/// The one-sided p-value that `driver`'s infraction rate is not below `floor`'s (small: the
/// driver has fewer infractions per km than the floor): `P(X ≤ n_d)` with
/// `X ~ Binomial(n_d + n_f, km_d / (km_d + km_f))`, the distribution of the driver's count
/// given the total when the rates are equal (Przyborowski & Wilenski 1940). 1 when neither
/// had an infraction.
pub fn rate_below_p(driver: InfractionCount, floor: InfractionCount) -> f64 {
    let n = driver.count + floor.count;
    let p = driver.km / (driver.km + floor.km);
    binomial_cdf(driver.count, n, p)
}

/// `P(X ≤ n)` for `X ~ Poisson(λ)`, summed term by term in log space (`λ ≥ 0`).
fn poisson_cdf(n: u64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        return 1.0;
    }
    // ln of e^{−λ} λ^k / k!, k = 0, 1, …, n.
    let mut ln_term = -lambda;
    let mut sum = ln_term.exp();
    for k in 1..=n {
        ln_term += lambda.ln() - (k as f64).ln();
        sum += ln_term.exp();
    }
    sum.min(1.0)
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`, `0 < p < 1`, summed term by term in log space.
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // ln of C(n, j) p^j (1 − p)^{n − j}, j = 0, 1, …, k.
    let mut ln_term = n as f64 * (-p).ln_1p();
    let mut sum = ln_term.exp();
    for j in 1..=k {
        ln_term += ((n - j + 1) as f64).ln() - (j as f64).ln() + p.ln() - (-p).ln_1p();
        sum += ln_term.exp();
    }
    sum.min(1.0)
}

/// Every driver beside the floor, one column per [`Counted`] kind. Each cell reads
/// `km between (count) [lo–hi] p=…` (`p<0.001` below that): the pooled km between infractions,
/// the count, its exact `confidence` interval and [`rate_below_p`] against the floor (the
/// floor's own row has no p). `drivers` are (name, rows) pairs, one of them named `floor`.
/// `Err` names a driver whose rows drove no distance, or a `floor` not among the drivers.
pub fn floor_table(drivers: &[(String, Vec<&BenchmarkRow>)], floor: &str, confidence: f64) -> Result<Table> {
    let counts = |rows: &[&BenchmarkRow]| -> Result<Vec<InfractionCount>> {
        Counted::ALL.iter().map(|&c| InfractionCount::of(rows.iter().copied(), c)).collect()
    };
    let (_, floor_rows) = drivers
        .iter()
        .find(|(name, _)| name == floor)
        .ok_or_else(|| Error::invalid("floor", floor, "is not one of the drivers"))?;
    let floor_counts = counts(floor_rows).map_err(|e| Error::invalid("floor", floor, e.to_string()))?;
    let mut headers = vec!["driver".to_string(), "km".into()];
    headers.extend(Counted::ALL.iter().map(|c| format!("km / {}", c.name())));
    let mut table = Table::new(headers);
    for (name, rows) in drivers {
        let counts = counts(rows).map_err(|e| Error::invalid("driver", name, e.to_string()))?;
        let mut cells = vec![name.clone(), format!("{:.2}", counts[0].km)];
        for (c, f) in counts.iter().zip(&floor_counts) {
            let (lo, hi) = c.km_between_interval(confidence)?;
            let at = match c.km_between() {
                Some(v) => format!("{v:.2} ({}) [{lo:.2}–{}]", c.count, fmt_km(hi)),
                None => format!("> {:.2} (0) [{lo:.2}–∞]", c.km),
            };
            cells.push(if name == floor { at } else { format!("{at} {}", fmt_p(rate_below_p(*c, *f))) });
        }
        table.push(cells);
    }
    Ok(table)
}

/// The rows of one condition pooled per recipe, for [`floor_table`]: every row of
/// `condition` whose driver is an agent (`agent: …`) and drove some distance, grouped by the
/// driver's name with its training seed taken out (`…-seed1 ` and `training seed 1, `
/// dropped, so `agent: run-seed1 after imitation (training seed 1, labels state)` pools as
/// `agent: run after imitation (labels state)`, with a seed-0 run named `run`). A row whose
/// episodes (by seed) are all in another row of the same driver with more episodes, or in an
/// identical later one, is left out: the same episodes driven again by a second `rwt drive
/// eval` (benchmark seeds 0–9 and 0–29 share their first 100 episodes) must not count twice.
/// Recipes in name order; rows in the order given.
pub fn pool_by_recipe<'a>(rows: &'a [BenchmarkRow], condition: &str) -> Vec<(String, Vec<&'a BenchmarkRow>)> {
    let agents: Vec<&BenchmarkRow> = rows
        .iter()
        .filter(|r| r.condition == condition && r.driver.starts_with("agent:") && r.pooled.km > 0.0)
        .collect();
    let seeds = |r: &BenchmarkRow| r.episodes.iter().map(|e| e.seed).collect::<std::collections::BTreeSet<u64>>();
    let repeated = |i: usize| {
        agents.iter().enumerate().any(|(j, other)| {
            j != i
                && other.driver == agents[i].driver
                && (other.episodes.len(), j) > (agents[i].episodes.len(), i)
                && seeds(agents[i]).is_subset(&seeds(other))
        })
    };
    let mut pooled: std::collections::BTreeMap<String, Vec<&BenchmarkRow>> = Default::default();
    for (i, row) in agents.iter().enumerate() {
        if !repeated(i) {
            pooled.entry(recipe(&row.driver)).or_default().push(row);
        }
    }
    pooled.into_iter().collect()
}

/// The drivers of a [`floor_table`]: `drivers` (the floor among them), then every agent recipe
/// of `agents` in `condition` pooled by [`pool_by_recipe`], each name followed by its episode
/// count: `("random policy without brake", rows)` becomes `random policy without brake (10,000
/// episodes)`.
pub fn with_recipes<'a>(
    drivers: Vec<(String, Vec<&'a BenchmarkRow>)>,
    agents: &'a [BenchmarkRow],
    condition: &str,
) -> Vec<(String, Vec<&'a BenchmarkRow>)> {
    let counted = |(name, rows): (String, Vec<&'a BenchmarkRow>)| {
        let episodes: usize = rows.iter().map(|r| r.episodes.len()).sum();
        (format!("{name} ({} episodes)", crate::plot::group_digits(episodes)), rows)
    };
    drivers.into_iter().chain(pool_by_recipe(agents, condition)).map(counted).collect()
}

/// A driver's name with its training seed (0–99) taken out.
fn recipe(driver: &str) -> String {
    let mut name = driver.to_string();
    for seed in 0..100 {
        name = name.replace(&format!("-seed{seed} "), " ").replace(&format!("training seed {seed}, "), "");
    }
    name
}

/// `p=0.137`, or `p<0.001` below that.
fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        "p<0.001".into()
    } else {
        format!("p={p:.3}")
    }
}

fn fmt_km(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "∞".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Garwood's interval at 95 % against the published table of exact Poisson limits (Ulm
    /// 1990; equivalently `scipy.stats.chi2.ppf(0.025, 2 * n) / 2` and
    /// `chi2.ppf(0.975, 2 * n + 2) / 2`), and the closed forms `U(0) = −ln(α/2)` and
    /// `L(1) = −ln(1 − α/2)`.
    #[test]
    fn garwood_interval_matches_the_chi_square_table() {
        let (lo, hi) = poisson_interval(0, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - -(0.025f64).ln()).abs() < 1e-9, "{hi}");
        let (lo, _) = poisson_interval(1, 0.95).unwrap();
        assert!((lo - -(0.975f64).ln()).abs() < 1e-9, "{lo}");
        for (n, l, u) in [
            (1, 0.0253, 5.5716),
            (2, 0.2422, 7.2247),
            (5, 1.6235, 11.6683),
            (10, 4.7954, 18.3904),
            (15, 8.3954, 24.7402),
        ] {
            let (lo, hi) = poisson_interval(n, 0.95).unwrap();
            assert!((lo - l).abs() < 6e-5 && (hi - u).abs() < 6e-5, "n = {n}: [{lo}, {hi}]");
        }
        // A 99 % interval is wider than the 95 % one.
        let (lo99, hi99) = poisson_interval(10, 0.99).unwrap();
        assert!(lo99 < 4.7954 && hi99 > 18.3904);
    }

    /// The p-value against closed forms: with no driver infraction it is the chance that all
    /// `n_f` land on the floor, `(km_f / (km_d + km_f))^{n_f}`; with one each in equal km,
    /// `P(X ≤ 1) = 3/4` for `X ~ Bin(2, ½)`; and the full binomial sum for 2 of 5 at p = 1/3:
    /// `(32 + 80 + 80) / 243`.
    #[test]
    fn rate_test_matches_closed_forms() {
        let c = |km, n| InfractionCount::new(km, n).unwrap();
        assert!((rate_below_p(c(3.0, 0), c(1.0, 4)) - 0.25f64.powi(4)).abs() < 1e-15);
        assert!((rate_below_p(c(1.0, 1), c(1.0, 1)) - 0.75).abs() < 1e-15);
        assert!((rate_below_p(c(1.0, 2), c(2.0, 3)) - 192.0 / 243.0).abs() < 1e-14);
        assert_eq!(rate_below_p(c(1.0, 0), c(1.0, 0)), 1.0);
        // Fewer infractions in more km: the smaller p.
        assert!(rate_below_p(c(7.5, 15), c(6.0, 20)) < rate_below_p(c(7.5, 15), c(0.6, 2)));
    }

    #[test]
    fn km_between_interval_and_bad_input() {
        let c = InfractionCount::new(2.0, 0).unwrap();
        assert_eq!(c.km_between(), None);
        let (lo, hi) = c.km_between_interval(0.95).unwrap();
        assert!((lo - 2.0 / -(0.025f64).ln()).abs() < 1e-9 && hi.is_infinite());
        let c = InfractionCount::new(7.47, 15).unwrap();
        let (lo, hi) = c.km_between_interval(0.95).unwrap();
        assert!((lo - 7.47 / 24.7402).abs() < 1e-4 && (hi - 7.47 / 8.3954).abs() < 1e-4);
        assert!(InfractionCount::new(0.0, 1).unwrap_err().to_string().contains("km"));
        assert!(InfractionCount::new(f64::NAN, 1).unwrap_err().to_string().contains("NaN"));
        assert!(poisson_interval(3, 1.0).unwrap_err().to_string().contains("confidence"));
        assert!(floor_table(&[], "random", 0.95).unwrap_err().to_string().contains("random"));
    }

    /// Hand-made rows: two training seeds of one recipe pool (seed 0's run named without a
    /// suffix), a second evaluation of seed 1 over a subset of its episodes is left out, one
    /// over other episodes is kept, two identical rows count once, and baselines, other
    /// conditions and rows that drove nothing are not agents.
    #[test]
    fn pool_by_recipe_groups_training_seeds_and_drops_repeats() {
        use crate::sim::{DrivingMetrics, EpisodeLog, Termination};
        let row = |driver: &str, condition: &str, seeds: std::ops::Range<u64>, metres: f64| {
            let episodes: Vec<EpisodeLog> = seeds
                .map(|seed| EpisodeLog {
                    town: 1,
                    seed,
                    weather: "clear-noon".into(),
                    steps: 10,
                    max_steps: 10,
                    distance_m: metres,
                    duration_s: 1.0,
                    total_reward: 0.0,
                    termination: Termination::TimeLimit,
                    infractions: vec![],
                })
                .collect();
            let pooled = DrivingMetrics::from_episodes(&episodes);
            BenchmarkRow {
                driver: driver.into(),
                condition: condition.into(),
                per_seed: vec![pooled.clone()],
                pooled,
                episodes,
                brakes: Default::default(),
            }
        };
        let s0 = "agent: run after imitation (training seed 0, labels state)";
        let s1 = "agent: run-seed1 after imitation (training seed 1, labels state)";
        let other = "agent: other-seed2 (training seed 2, latent state)";
        let rows = vec![
            row("random policy without brake", "training town", 0..30, 20.0),
            row(s0, "training town", 0..30, 100.0),
            row(s1, "training town", 0..10, 100.0), // the first 10 of the next row's 30: a repeat
            row(s1, "training town", 0..30, 100.0),
            row(s1, "training town", 30..40, 100.0), // new episodes: kept
            row(s1, "new town", 0..30, 100.0),
            row(other, "training town", 0..5, 100.0),
            row(other, "training town", 0..5, 100.0), // identical: counted once
            row("agent: still (training seed 0, labels state)", "training town", 0..5, 0.0),
        ];
        let pooled = pool_by_recipe(&rows, "training town");
        let names: Vec<&str> = pooled.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["agent: other (latent state)", "agent: run after imitation (labels state)"]);
        let episodes = |rows: &[&BenchmarkRow]| rows.iter().map(|r| r.episodes.len()).sum::<usize>();
        assert_eq!(episodes(&pooled[0].1), 5);
        assert_eq!(episodes(&pooled[1].1), 30 + 30 + 10);
        assert!(std::ptr::eq(pooled[1].1[1], &rows[3]) && std::ptr::eq(pooled[1].1[2], &rows[4]));
        assert!(pool_by_recipe(&rows, "new weather").is_empty());
        // with_recipes: the given drivers first, then the recipes, each with its episode count.
        let drivers = with_recipes(vec![("floor".into(), vec![&rows[0]])], &rows, "training town");
        let names: Vec<&str> = drivers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "floor (30 episodes)",
                "agent: other (latent state) (5 episodes)",
                "agent: run after imitation (labels state) (70 episodes)"
            ]
        );
        assert_eq!(
            [0, 7, 999, 1000, 10_000, 1_234_567].map(crate::plot::group_digits),
            ["0", "7", "999", "1,000", "10,000", "1,234,567"]
        );
    }
}
