//! The optimizers of train jobs, with PyTorch's fused kernels so that a step costs what
//! `torch.optim.SGD(fused=True)` / `torch.optim.AdamW(fused=True)` cost in the Python
//! reference (`bench/reference/pytorch_eager.py` uses the same hyperparameters). State is
//! created lazily per parameter, as PyTorch does; parameters without a gradient are skipped.

use tch::{Kind, TchError, Tensor};

use crate::models::shim::{self, AdamWParams, SgdParams};
use crate::models::{OptimizerKind, TorchError};

/// SGD as in torchvision's ImageNet recipe, with a smaller learning rate: the data are
/// random, so only the cost of a step matters, and a smaller rate keeps values finite.
pub const SGD: SgdParams = SgdParams {
    lr: 0.01,
    momentum: 0.9,
    weight_decay: 1e-4,
};

/// PyTorch's AdamW defaults except the learning rate, a usual fine-tuning one.
pub const ADAMW: AdamWParams = AdamWParams {
    lr: 1e-4,
    beta1: 0.9,
    beta2: 0.999,
    weight_decay: 0.01,
    eps: 1e-8,
};

#[derive(Debug)]
pub struct Optimizer {
    params: Vec<Tensor>,
    state: State,
}

#[derive(Debug)]
enum State {
    Sgd {
        momentum_buffers: Vec<Option<Tensor>>,
    },
    AdamW {
        per_param: Vec<Option<AdamState>>,
    },
}

#[derive(Debug)]
struct AdamState {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// A float32 scalar on the parameter's device, as fused AdamW keeps it.
    step: Tensor,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, params: Vec<Tensor>) -> Self {
        let n = params.len();
        let state = match kind {
            OptimizerKind::Sgd => State::Sgd {
                momentum_buffers: (0..n).map(|_| None).collect(),
            },
            OptimizerKind::AdamW => State::AdamW {
                per_param: (0..n).map(|_| None).collect(),
            },
        };
        Self { params, state }
    }

    /// `optimizer.zero_grad()`: gradients become undefined (PyTorch's default).
    pub fn zero_grad(&self) -> Result<(), TorchError> {
        shim::clear_grads(&self.params)
    }

    /// `optimizer.step()` over the parameters that received a gradient.
    pub fn step(&mut self) -> Result<(), TorchError> {
        let mut indices = Vec::with_capacity(self.params.len());
        let mut params = Vec::with_capacity(self.params.len());
        let mut grads = Vec::with_capacity(self.params.len());
        for (idx, param) in self.params.iter().enumerate() {
            let grad = param.grad();
            if grad.defined() {
                indices.push(idx);
                params.push(param.shallow_clone());
                grads.push(grad);
            }
        }
        if params.is_empty() {
            return Ok(());
        }
        match &mut self.state {
            State::Sgd { momentum_buffers } => {
                // `torch.optim.sgd._fused_sgd`: on the first step every buffer is missing and
                // is allocated uninitialised; the kernel then copies the gradient into it.
                let is_first_step = indices.iter().all(|&idx| momentum_buffers[idx].is_none());
                let mut buffers = Vec::with_capacity(indices.len());
                for (&idx, grad) in indices.iter().zip(&grads) {
                    let buffer = match &momentum_buffers[idx] {
                        Some(buffer) => buffer.shallow_clone(),
                        None => {
                            let fresh = if is_first_step {
                                grad.f_empty_like()
                            } else {
                                grad.f_zeros_like()
                            }
                            .map_err(state_error)?;
                            momentum_buffers[idx] = Some(fresh.shallow_clone());
                            fresh
                        }
                    };
                    buffers.push(buffer);
                }
                shim::fused_sgd_step(&params, &grads, &buffers, SGD, is_first_step)
            }
            State::AdamW { per_param } => {
                let n = indices.len();
                let (mut exp_avgs, mut exp_avg_sqs, mut steps) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                for (&idx, param) in indices.iter().zip(&params) {
                    if per_param[idx].is_none() {
                        per_param[idx] = Some(AdamState::new(param).map_err(state_error)?);
                    }
                    if let Some(state) = &per_param[idx] {
                        exp_avgs.push(state.exp_avg.shallow_clone());
                        exp_avg_sqs.push(state.exp_avg_sq.shallow_clone());
                        steps.push(state.step.shallow_clone());
                    }
                }
                shim::fused_adamw_step(&params, &grads, &exp_avgs, &exp_avg_sqs, &steps, ADAMW)
            }
        }
    }
}

impl AdamState {
    /// `torch.optim.AdamW._init_group` for fused: zeros shaped (and laid out) like the
    /// parameter, and a float32 zero step on its device.
    fn new(param: &Tensor) -> Result<Self, TchError> {
        Ok(Self {
            exp_avg: param.f_zeros_like()?,
            exp_avg_sq: param.f_zeros_like()?,
            step: Tensor::f_zeros([], (Kind::Float, param.device()))?,
        })
    }
}

fn state_error(source: TchError) -> TorchError {
    TorchError::OptimizerState { source }
}

#[cfg(test)]
mod tests {
    use tch::{Kind, Tensor};

    use super::*;

    /// A parameter holding `values` whose gradient is `grad` after `backward`.
    fn param_with_grad(values: &[f32], grad: &[f32]) -> Tensor {
        let param = Tensor::from_slice(values).set_requires_grad(true);
        (&param * Tensor::from_slice(grad))
            .sum(Kind::Float)
            .backward();
        param
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} != {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{actual:?} != {expected:?}");
        }
    }

    #[test]
    fn fused_adamw_first_step_follows_the_adamw_update() {
        let (p0, g) = ([1.0_f64, -2.0], [0.5_f64, -0.25]);
        let param = param_with_grad(&[1.0, -2.0], &[0.5, -0.25]);
        let mut optimizer = Optimizer::new(OptimizerKind::AdamW, vec![param.shallow_clone()]);
        optimizer.step().unwrap();
        // Step 1: bias-corrected moments are g and g^2, so the step is lr * g / (|g| + eps),
        // after decoupled weight decay p * (1 - lr * wd).
        let h = ADAMW;
        let expected: Vec<f64> = p0
            .iter()
            .zip(g)
            .map(|(p, g)| p * (1.0 - h.lr * h.weight_decay) - h.lr * g / (g.abs() + h.eps))
            .collect();
        assert_close(&values(&param), &expected);
    }

    #[test]
    fn fused_sgd_applies_weight_decay_then_momentum() {
        let param = param_with_grad(&[1.0, -2.0], &[0.5, -0.25]);
        let mut optimizer = Optimizer::new(OptimizerKind::Sgd, vec![param.shallow_clone()]);
        let h = SGD;
        let d = |p: f64, g: f64| g + h.weight_decay * p;
        optimizer.step().unwrap();
        // First step: the buffer is the decayed gradient itself.
        let buf1 = [d(1.0, 0.5), d(-2.0, -0.25)];
        let p1 = [1.0 - h.lr * buf1[0], -2.0 - h.lr * buf1[1]];
        assert_close(&values(&param), &p1);
        // Second step with the same gradient (it is still set): buffer = m * buffer + d.
        optimizer.step().unwrap();
        let buf2 = [
            h.momentum * buf1[0] + d(p1[0], 0.5),
            h.momentum * buf1[1] + d(p1[1], -0.25),
        ];
        assert_close(
            &values(&param),
            &[p1[0] - h.lr * buf2[0], p1[1] - h.lr * buf2[1]],
        );
    }

    #[test]
    fn parameters_without_gradients_are_left_alone() {
        let used = param_with_grad(&[1.0], &[1.0]);
        let unused = Tensor::from_slice(&[5.0_f32]).set_requires_grad(true);
        let mut optimizer = Optimizer::new(
            OptimizerKind::AdamW,
            vec![used.shallow_clone(), unused.shallow_clone()],
        );
        optimizer.step().unwrap();
        assert_eq!(values(&unused), [5.0]);
        assert!(values(&used)[0] < 1.0);
        optimizer.zero_grad().unwrap();
        assert!(!used.grad().defined());
    }
}
