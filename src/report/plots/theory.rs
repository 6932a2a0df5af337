//! The figures of `rmt-torch theory`: each closed form beside its simulation.
use super::palette::{ALTERNATIVE, DATA, EXTRA, THEORY};
use super::series::{HistogramFigure, Mark, PanelsFigure, Series, SeriesFigure, YError, CYCLE};
use super::{density_curve, sampled_curve};
use crate::report::format_number;
use crate::stats::rmt::wigner::SpacingLaw;
use crate::theory::dyson::{CoulombGas, DysonCase, DysonReport, PairDensity};
use crate::theory::kernel::{DepthProfile, KernelComparison};
use crate::theory::preactivation::{MeasuredKernel, PairKernel};
use crate::theory::random_features::{RandomFeaturesPoint, SimulatedErrors};
use crate::theory::ridge::RiskPoint;

/// The spacing histogram against the surmises, and the eigenvalue density against its law:
/// (file stem, figure) pairs for what the case has.
pub fn dyson_figures(report: &DysonReport, gas: &CoulombGas) -> Vec<(String, HistogramFigure)> {
    let mut figures = Vec::new();
    let title = format!(
        "Dyson Brownian motion, {} (β = {})",
        report.case, report.beta
    );
    if let Some(spacing) = &report.spacing {
        let laws = [
            (SpacingLaw::Goe, "GOE surmise", THEORY, spacing.goe.p_value),
            (SpacingLaw::Gue, "GUE surmise", EXTRA, spacing.gue.p_value),
            (
                SpacingLaw::Poisson,
                "Poisson",
                ALTERNATIVE,
                spacing.poisson.p_value,
            ),
        ];
        figures.push((
            "dyson_spacing".to_string(),
            HistogramFigure {
                title: format!("{title}: spacings"),
                x_desc: "spacing s = S/⟨S⟩".into(),
                name: format!("{} spacings", spacing.count),
                values: report.spacings.clone(),
                range: (0.0, 3.5),
                bins: 35,
                curves: laws
                    .iter()
                    .map(|&(law, name, color, p)| Series {
                        name: format!("{name} (KS p = {})", format_number(p)),
                        points: sampled_curve(|s| law.density(s), 0.0, 3.5, 200, f64::INFINITY),
                        mark: Mark::Line,
                        color,
                    })
                    .collect(),
            },
        ));
    }
    if let Some(test) = &report.density {
        let spread = report.levels.iter().fold(0.0_f64, |m, v| m.max(v.abs())) * 1.05;
        let (name, curve): (String, Vec<(f64, f64)>) = match gas.semicircle() {
            Some(circle) if report.case == DysonCase::Semicircle => (
                format!(
                    "semicircle, radius √(2βN) (KS D = {})",
                    format_number(test.statistic)
                ),
                sampled_curve(|x| circle.density(x), -spread, spread, 300, f64::INFINITY),
            ),
            _ => {
                let law = PairDensity {
                    sigma1: gas.widths[0],
                    sigma2: gas.widths[1],
                };
                (
                    format!(
                        "Favoni, Aarts, Lucini & Park's (2024) pair density (KS p = {})",
                        format_number(test.p_value)
                    ),
                    sampled_curve(|x| law.density(x), -spread, spread, 300, f64::INFINITY),
                )
            }
        };
        figures.push((
            "dyson_density".to_string(),
            HistogramFigure {
                title: format!("{title}: density"),
                x_desc: "eigenvalue x".into(),
                name: format!("{} eigenvalues", report.levels.len()),
                values: report.levels.clone(),
                range: (-spread, spread),
                bins: 50,
                curves: vec![Series {
                    name,
                    points: curve,
                    mark: Mark::Line,
                    color: THEORY,
                }],
            },
        ));
    }
    figures
}

/// Risk against n/p = 1/γ, one theory line per λ and the simulated points beside it.
pub fn ridge_figure(points: &[RiskPoint]) -> SeriesFigure {
    let mut lambdas: Vec<f64> = points.iter().map(|p| p.lambda).collect();
    lambdas.dedup();
    let mut series = Vec::new();
    let mut error_bars = Vec::new();
    for (index, &lambda) in lambdas.iter().enumerate() {
        let color = CYCLE[index % CYCLE.len()];
        let of_lambda = || points.iter().filter(move |p| p.lambda == lambda);
        series.push(Series {
            name: format!("theory, λ = {lambda}"),
            points: of_lambda().map(|p| (1.0 / p.gamma, p.risk)).collect(),
            mark: Mark::Line,
            color,
        });
        let simulated: Vec<(f64, f64)> = of_lambda()
            .filter_map(|p| Some((1.0 / p.gamma, p.simulated?)))
            .collect();
        error_bars.extend(YError::of(
            of_lambda().filter_map(|p| Some((1.0 / p.gamma, p.simulated?, p.simulated_stderr?))),
            color,
        ));
        if !simulated.is_empty() {
            series.push(Series {
                name: format!("simulated ± 1 s.e., λ = {lambda}"),
                points: simulated,
                mark: Mark::Points,
                color,
            });
        }
    }
    SeriesFigure {
        title: "Ridge regression: double descent".into(),
        x_desc: "samples per dimension n/p".into(),
        y_desc: "excess risk ‖β̂ − β‖²".into(),
        series,
        error_bars,
        log_y: true,
        ..SeriesFigure::default()
    }
}

/// Training and test error of random-features ridge against N/n.
pub fn random_features_figure(points: &[RandomFeaturesPoint], samples: usize) -> SeriesFigure {
    let x = |p: &RandomFeaturesPoint| p.features as f64 / samples as f64;
    let mut series = vec![
        Series {
            name: "test, deterministic equivalent".into(),
            points: points.iter().map(|p| (x(p), p.test_theory)).collect(),
            mark: Mark::Line,
            color: THEORY,
        },
        Series {
            name: "train, deterministic equivalent".into(),
            points: points.iter().map(|p| (x(p), p.train_theory)).collect(),
            mark: Mark::Dashed,
            color: DATA,
        },
    ];
    let mut error_bars = Vec::new();
    if points.iter().any(|p| p.simulated.is_some()) {
        for (color, pick) in [
            (
                THEORY,
                (|s| (s.test, s.test_stderr)) as fn(&SimulatedErrors) -> (f64, f64),
            ),
            (DATA, |s| (s.train, s.train_stderr)),
        ] {
            error_bars.extend(YError::of(
                points.iter().filter_map(|p| {
                    let (value, stderr) = pick(p.simulated.as_ref()?);
                    Some((x(p), value, stderr))
                }),
                color,
            ));
        }
        let simulated = |f: fn(&RandomFeaturesPoint) -> Option<f64>| {
            points
                .iter()
                .filter_map(|p| Some((x(p), f(p)?)))
                .collect::<Vec<_>>()
        };
        series.push(Series {
            name: "test, simulated ± 1 s.e.".into(),
            points: simulated(|p| p.simulated.map(|s| s.test)),
            mark: Mark::Points,
            color: THEORY,
        });
        series.push(Series {
            name: "train, simulated ± 1 s.e.".into(),
            points: simulated(|p| p.simulated.map(|s| s.train)),
            mark: Mark::Points,
            color: DATA,
        });
    }
    SeriesFigure {
        title: "Random-features ridge: double descent at N = n".into(),
        x_desc: "features per training sample N/n".into(),
        y_desc: "mean squared error".into(),
        series,
        error_bars,
        log_y: true,
        ..SeriesFigure::default()
    }
}

/// ‖K_L − I‖_F against depth with its prediction, and K_L's spectrum at each depth.
pub fn depth_figures(profile: &DepthProfile) -> (SeriesFigure, SeriesFigure) {
    let at = |f: fn(&crate::theory::kernel::DepthPoint) -> f64| {
        profile
            .points
            .iter()
            .map(|p| (p.depth as f64, f(p)))
            .collect::<Vec<_>>()
    };
    let distance = SeriesFigure {
        title: format!(
            "Curse of depth: {} (b = {}), n = p = {}, width {}",
            profile.activation,
            format_number(profile.slope),
            profile.n,
            profile.d
        ),
        x_desc: "depth L".into(),
        y_desc: "‖K_{L} − I‖_{F}".into(),
        series: vec![
            Series {
                name: "measured".into(),
                points: at(|p| p.distance),
                mark: Mark::Points,
                color: DATA,
            },
            Series {
                name: "prediction from a₁ and the width".into(),
                points: at(|p| p.predicted),
                mark: Mark::Line,
                color: THEORY,
            },
            Series {
                name: "input part b^{2L}·‖K₀ − I‖_{F} (infinite width)".into(),
                points: at(|p| p.signal),
                mark: Mark::Dashed,
                color: ALTERNATIVE,
            },
        ],
        integer_x: true,
        ..SeriesFigure::default()
    };
    let lo = profile
        .points
        .iter()
        .map(|p| p.eigenvalue_min)
        .fold(f64::INFINITY, f64::min);
    let hi = profile
        .points
        .iter()
        .map(|p| p.eigenvalue_max)
        .fold(f64::NEG_INFINITY, f64::max)
        * 1.0001;
    let spectra = SeriesFigure {
        title: "Conjugate-kernel spectra by depth".into(),
        x_desc: "eigenvalue of K_{L}".into(),
        y_desc: "density".into(),
        series: profile
            .points
            .iter()
            .enumerate()
            .map(|(index, point)| Series {
                name: format!("L = {}", point.depth),
                points: density_curve(&point.eigenvalues, lo, hi, 60),
                mark: Mark::Line,
                color: CYCLE[index % CYCLE.len()],
            })
            .collect(),
        ..SeriesFigure::default()
    };
    (distance, spectra)
}

/// ‖K − K̃‖/‖K‖ of a random layer against n.
pub fn kernel_figure(rows: &[KernelComparison], activation: &str) -> SeriesFigure {
    SeriesFigure {
        title: format!("Hermite linear equivalent of a random {activation} layer"),
        x_desc: "samples n (= p)".into(),
        y_desc: "‖K − K̃‖ / ‖K‖".into(),
        series: vec![Series {
            name: "relative operator-norm error".into(),
            points: rows
                .iter()
                .map(|r| (r.n as f64, r.relative_error))
                .collect(),
            mark: Mark::Points,
            color: DATA,
        }],
        log_x: true,
        log_y: true,
        ..SeriesFigure::default()
    }
}

/// K_αα, K_ββ and the correlation of two inputs by layer: the recursion's lines, the random
/// networks' points.
pub fn preactivation_figure(theory: &[PairKernel], measured: &[MeasuredKernel]) -> PanelsFigure {
    let layer = |k: &PairKernel| k.layer as f64;
    let series = |name: &str, f: fn(&PairKernel) -> f64, color| {
        vec![
            Series {
                name: format!("{name}, recursion"),
                points: theory.iter().map(|k| (layer(k), f(k))).collect(),
                mark: Mark::Line,
                color,
            },
            Series {
                name: format!("{name}, random networks"),
                points: measured
                    .iter()
                    .map(|m| (layer(&m.mean), f(&m.mean)))
                    .collect(),
                mark: Mark::Points,
                color,
            },
        ]
    };
    let mut variances = series("K_{αα}", |k| k.k_aa, DATA);
    variances.extend(series("K_{ββ}", |k| k.k_bb, ALTERNATIVE));
    let bars = |color, value: &dyn Fn(&MeasuredKernel) -> (f64, f64)| {
        YError::of(
            measured.iter().map(|m| {
                let (y, stderr) = value(m);
                (layer(&m.mean), y, stderr)
            }),
            color,
        )
    };
    let mut variance_bars = bars(DATA, &|m| (m.mean.k_aa, m.stderr[0]));
    variance_bars.extend(bars(ALTERNATIVE, &|m| (m.mean.k_bb, m.stderr[2])));
    // ρ = K_αβ/√(K_αα K_ββ) by the delta method, the three errors taken as independent.
    let correlation_bars = bars(THEORY, &|m| {
        let k = &m.mean;
        let rho = k.correlation();
        let relative = (m.stderr[1] / k.k_ab).powi(2)
            + (m.stderr[0] / k.k_aa).powi(2) / 4.0
            + (m.stderr[2] / k.k_bb).powi(2) / 4.0;
        (rho, rho.abs() * relative.sqrt())
    });
    PanelsFigure {
        title: "Pre-activation statistics at initialisation (Aarts (2025), eq. 32)".into(),
        panels: vec![
            SeriesFigure {
                title: "variances (± 1 s.e. over networks)".into(),
                x_desc: "layer l".into(),
                y_desc: "E[z⁽ˡ⁾z⁽ˡ⁾]".into(),
                series: variances,
                error_bars: variance_bars,
                integer_x: true,
                ..SeriesFigure::default()
            },
            SeriesFigure {
                title: "correlation of the two inputs (± 1 s.e., delta method)".into(),
                x_desc: "layer l".into(),
                y_desc: "K_{αβ}/√(K_{αα}K_{ββ})".into(),
                series: series("ρ", |k| k.correlation(), THEORY),
                error_bars: correlation_bars,
                integer_x: true,
                ..SeriesFigure::default()
            },
        ],
        columns: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every simulated point with a standard error gets a bar (a vertical line and two caps in
    /// the SVG), in its series' colour, and the legend says what the bars are.
    #[test]
    fn simulated_points_carry_their_standard_errors() {
        let point = |gamma: f64, simulated: Option<(f64, f64)>| RiskPoint {
            gamma,
            lambda: 0.1,
            risk: 1.0 / gamma,
            simulated: simulated.map(|s| s.0),
            simulated_stderr: simulated.map(|s| s.1),
        };
        let points = [
            point(0.5, Some((2.1, 0.2))),
            point(1.0, Some((1.1, 0.1))),
            point(2.0, None),
        ];
        let figure = ridge_figure(&points);
        assert_eq!(figure.error_bars.len(), 2);
        assert!((figure.error_bars[0].x - 2.0).abs() < 1e-12);
        assert_eq!(figure.error_bars[0].half_width, 0.2);
        let with = super::super::to_svg(&figure).unwrap();
        let without = super::super::to_svg(&SeriesFigure {
            error_bars: Vec::new(),
            ..figure.clone()
        })
        .unwrap();
        assert_eq!(
            with.matches("<line").count(),
            without.matches("<line").count() + 2 * 3
        );
        assert!(with.contains("simulated ± 1 s.e., λ = 0.1"));
    }
}
