//! Fitting the classifier's weights: weighted softmax log-loss plus an L2 penalty on word
//! weights, minimised by full-batch Nesterov accelerated gradient descent.
//!
//! Each feature vector has squared norm at most 1 (plus 1 for the bias), and the softmax
//! log-loss has curvature at most 1/2 in its logits, so the gradient is (1 + λ)-Lipschitz and a
//! step of 1/(1 + λ) always descends (λ: the options' `l2` over the examples' total weight): no learning rate to tune, no randomness, the same weights
//! on every machine for the same examples in the same order.

/// One training message: its known token ids, their common value, its class and weight.
pub(super) struct Row {
    pub ids: Vec<u32>,
    pub value: f64,
    pub class: usize,
    pub weight: f64,
}

pub(super) struct Fitted {
    /// `features × classes`, row-major by feature.
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

/// Stop once no partial derivative is larger than this.
const TOLERANCE: f64 = 1e-6;

/// How hard the fit pulls weights to zero and how long it may run (the model's `TrainOptions`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Penalty {
    pub l2: f64,
    pub max_iterations: usize,
}

pub(super) fn fit(rows: &[Row], features: usize, classes: usize, penalty: Penalty) -> Fitted {
    let total_weight: f64 = rows.iter().map(|r| r.weight).sum();
    let mut fitted = Fitted { weights: vec![0.0; features * classes], bias: vec![0.0; classes] };
    if classes < 2 || total_weight <= 0.0 {
        return fitted;
    }
    let l2 = penalty.l2 / total_weight;
    let step = 1.0 / (1.0 + l2);
    let mut previous = Fitted { weights: fitted.weights.clone(), bias: fitted.bias.clone() };
    let mut ahead = Fitted { weights: fitted.weights.clone(), bias: fitted.bias.clone() };
    let mut gradient = Fitted { weights: vec![0.0; features * classes], bias: vec![0.0; classes] };
    let mut logits = vec![0.0; classes];
    for k in 0..penalty.max_iterations {
        let momentum = k as f64 / (k as f64 + 3.0);
        extrapolate(&fitted.weights, &previous.weights, momentum, &mut ahead.weights);
        extrapolate(&fitted.bias, &previous.bias, momentum, &mut ahead.bias);
        compute_gradient(rows, &ahead, classes, total_weight, l2, &mut gradient, &mut logits);
        std::mem::swap(&mut previous, &mut fitted);
        descend(&ahead.weights, &gradient.weights, step, &mut fitted.weights);
        descend(&ahead.bias, &gradient.bias, step, &mut fitted.bias);
        let largest = gradient.weights.iter().chain(&gradient.bias).fold(0.0_f64, |m, g| m.max(g.abs()));
        if largest < TOLERANCE {
            break;
        }
    }
    fitted
}

fn extrapolate(current: &[f64], previous: &[f64], momentum: f64, out: &mut [f64]) {
    for ((o, &c), &p) in out.iter_mut().zip(current).zip(previous) {
        *o = c + momentum * (c - p);
    }
}

fn descend(from: &[f64], gradient: &[f64], step: f64, out: &mut [f64]) {
    for ((o, &x), &g) in out.iter_mut().zip(from).zip(gradient) {
        *o = x - step * g;
    }
}

fn compute_gradient(
    rows: &[Row],
    at: &Fitted,
    classes: usize,
    total_weight: f64,
    l2: f64,
    gradient: &mut Fitted,
    logits: &mut [f64],
) {
    for (g, &w) in gradient.weights.iter_mut().zip(&at.weights) {
        *g = l2 * w;
    }
    gradient.bias.fill(0.0);
    for row in rows {
        logits.copy_from_slice(&at.bias);
        for &id in &row.ids {
            let weights = &at.weights[id as usize * classes..(id as usize + 1) * classes];
            for (logit, &w) in logits.iter_mut().zip(weights) {
                *logit += row.value * w;
            }
        }
        softmax_in_place(logits);
        logits[row.class] -= 1.0;
        let scale = row.weight / total_weight;
        for (g, &d) in gradient.bias.iter_mut().zip(logits.iter()) {
            *g += scale * d;
        }
        for &id in &row.ids {
            let g_row = &mut gradient.weights[id as usize * classes..(id as usize + 1) * classes];
            for (g, &d) in g_row.iter_mut().zip(logits.iter()) {
                *g += scale * row.value * d;
            }
        }
    }
}

/// Turns logits into probabilities, shifted by the largest so no `exp` overflows.
pub(super) fn softmax_in_place(logits: &mut [f64]) {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for z in logits.iter_mut() {
        *z = (*z - max).exp();
        sum += *z;
    }
    for z in logits.iter_mut() {
        *z /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_huge_logits_is_finite_and_sums_to_one() {
        let mut z = vec![1e300, 0.0, -1e300];
        softmax_in_place(&mut z);
        assert!(z.iter().all(|p| p.is_finite()));
        assert!((z.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(z[0] > 0.999);
    }

    #[test]
    fn a_feature_seen_only_with_one_class_gets_weight_towards_it() {
        let rows = vec![
            Row { ids: vec![0], value: 1.0, class: 1, weight: 1.0 },
            Row { ids: vec![1], value: 1.0, class: 0, weight: 1.0 },
        ];
        let fitted = fit(&rows, 2, 2, Penalty { l2: 0.3, max_iterations: 400 });
        assert!(fitted.weights[1] > fitted.weights[0], "feature 0 favours class 1: {:?}", fitted.weights);
        assert!(fitted.weights[2] > fitted.weights[3], "feature 1 favours class 0: {:?}", fitted.weights);
    }
}
