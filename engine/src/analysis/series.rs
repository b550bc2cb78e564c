//! Statistics on window series: z-score and IQR outliers, least-squares trends.

/// Mean and (population) standard deviation.
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Indices whose |z-score| exceeds `threshold`, with the score.
pub fn zscore_outliers(xs: &[f64], threshold: f64) -> Vec<(usize, f64)> {
    let (mean, sd) = mean_sd(xs);
    if sd <= 1e-12 * mean.abs().max(1.0) {
        return Vec::new();
    }
    xs.iter()
        .enumerate()
        .map(|(i, x)| (i, (x - mean) / sd))
        .filter(|(_, z)| z.abs() > threshold)
        .collect()
}

/// Linear-interpolated quantile of sorted data.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] * (1.0 - frac) + sorted[hi.min(sorted.len() - 1)] * frac
}

/// Indices outside `[Q1 - k IQR, Q3 + k IQR]`, with the distance from the fence in IQRs.
pub fn iqr_outliers(xs: &[f64], k: f64) -> Vec<(usize, f64)> {
    let mut sorted: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let q1 = quantile(&sorted, 0.25);
    let q3 = quantile(&sorted, 0.75);
    let iqr = q3 - q1;
    if iqr <= 1e-12 * q3.abs().max(1.0) {
        return Vec::new();
    }
    let (lo, hi) = (q1 - k * iqr, q3 + k * iqr);
    xs.iter()
        .enumerate()
        .filter(|(_, &x)| x < lo || x > hi)
        .map(|(i, &x)| {
            (
                i,
                if x > hi {
                    (x - q3) / iqr
                } else {
                    (x - q1) / iqr
                },
            )
        })
        .collect()
}

/// Least-squares line through `(x, y)`: `(slope, intercept, r_squared)`.
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> Option<(f64, f64, f64)> {
    let n = xs.len().min(ys.len());
    if n < 3 {
        return None;
    }
    let (mx, _) = mean_sd(&xs[..n]);
    let (my, _) = mean_sd(&ys[..n]);
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    let mut syy = 0.0;
    for i in 0..n {
        let dx = xs[i] - mx;
        let dy = ys[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        0.0
    };
    Some((slope, my - slope * mx, r2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_spike_and_the_slope() {
        let mut xs: Vec<f64> = (0..40).map(|i| 10.0 + (i % 3) as f64).collect();
        xs[17] = 80.0;
        assert_eq!(zscore_outliers(&xs, 3.0).first().map(|p| p.0), Some(17));
        assert_eq!(iqr_outliers(&xs, 3.0).first().map(|p| p.0), Some(17));
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|x| 2.0 * x + 1.0).collect();
        let (s, b, r2) = linear_fit(&t, &y).unwrap_or_default();
        assert!((s - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
    }
}
