//! Layers shared by the four models: tch's `nn` layers create and register the parameters,
//! and these wrappers run them through tch's fallible (`f_*`) operations so that a failing
//! libtorch call (CUDA out of memory, above all) is an error instead of a panic. They also
//! keep the hyperparameters (epsilon, stride, ...) that tch's layers keep private.

use tch::{nn, TchError, Tensor};

/// `torch.nn.Linear`.
#[derive(Debug)]
pub struct Linear {
    inner: nn::Linear,
}

impl Linear {
    pub fn new(path: nn::Path, in_features: i64, out_features: i64) -> Self {
        Self {
            inner: nn::linear(path, in_features, out_features, Default::default()),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_linear(&self.inner.ws, self.inner.bs.as_ref())
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
#[derive(Debug)]
pub struct LayerNorm {
    inner: nn::LayerNorm,
    eps: f64,
}

impl LayerNorm {
    pub fn new(path: nn::Path, size: i64, eps: f64) -> Self {
        let config = nn::LayerNormConfig {
            eps,
            ..Default::default()
        };
        Self {
            inner: nn::layer_norm(path, vec![size], config),
            eps,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_layer_norm(
            self.inner.normalized_shape.as_slice(),
            self.inner.ws.as_ref(),
            self.inner.bs.as_ref(),
            self.eps,
            true,
        )
    }
}

/// `torch.nn.Embedding`.
#[derive(Debug)]
pub struct Embedding {
    inner: nn::Embedding,
}

impl Embedding {
    pub fn new(path: nn::Path, n_embeddings: i64, dim: i64) -> Self {
        Self {
            inner: nn::embedding(path, n_embeddings, dim, Default::default()),
        }
    }

    pub fn forward(&self, indices: &Tensor) -> Result<Tensor, TchError> {
        Tensor::f_embedding(&self.inner.ws, indices, -1, false, false)
    }

    /// The (n_embeddings, dim) table, for heads tied to it (GPT-2's language-model head).
    pub fn weight(&self) -> &Tensor {
        &self.inner.ws
    }
}

/// `torch.nn.Conv2d` with a square kernel.
#[derive(Debug)]
pub struct Conv2d {
    inner: nn::Conv2D,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    pub fn new(
        path: nn::Path,
        in_channels: i64,
        out_channels: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
    ) -> Self {
        let config = nn::ConvConfig {
            stride,
            padding,
            bias,
            ..Default::default()
        };
        Self {
            inner: nn::conv2d(path, in_channels, out_channels, kernel, config),
            stride,
            padding,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_conv2d(
            &self.inner.ws,
            self.inner.bs.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// `torch.nn.BatchNorm2d` with PyTorch's defaults (eps 1e-5, momentum 0.1). Its running
/// statistics are registered as non-trainable variables, so they count as buffers, not
/// parameters, as in PyTorch.
#[derive(Debug)]
pub struct BatchNorm2d {
    inner: nn::BatchNorm,
}

impl BatchNorm2d {
    const EPS: f64 = 1e-5;
    const MOMENTUM: f64 = 0.1;

    pub fn new(path: nn::Path, n_features: i64) -> Self {
        Self {
            inner: nn::batch_norm2d(path, n_features, Default::default()),
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        xs.f_batch_norm(
            self.inner.ws.as_ref(),
            self.inner.bs.as_ref(),
            Some(&self.inner.running_mean),
            Some(&self.inner.running_var),
            train,
            Self::MOMENTUM,
            Self::EPS,
            true,
        )
    }
}

/// Multi-head self-attention core on the output of a fused q/k/v projection, (batch, seq,
/// 3 * hidden) laid out as [q | k | v] with heads contiguous inside each, as PyTorch's
/// `nn.MultiheadAttention.in_proj_weight` and GPT-2's `c_attn` are. Returns (batch, seq,
/// hidden) before the output projection. Uses `scaled_dot_product_attention`, which picks
/// flash or memory-efficient kernels on the GPU, as PyTorch's and Hugging Face's "sdpa"
/// attention do. `dropout_p` applies only when training.
pub fn self_attention(
    qkv: &Tensor,
    n_heads: i64,
    causal: bool,
    dropout_p: f64,
    train: bool,
) -> Result<Tensor, TchError> {
    let (batch, seq, three_hidden) = qkv.size3()?;
    let hidden = three_hidden / 3;
    let head_dim = hidden / n_heads;
    // (batch, seq, 3, heads, head_dim) -> (3, batch, heads, seq, head_dim): views, no copy.
    let qkv = qkv
        .f_view([batch, seq, 3, n_heads, head_dim])?
        .f_permute([2, 0, 3, 1, 4])?;
    let (q, k, v) = (
        qkv.f_select(0, 0)?,
        qkv.f_select(0, 1)?,
        qkv.f_select(0, 2)?,
    );
    let dropout_p = if train { dropout_p } else { 0.0 };
    let attended = Tensor::f_scaled_dot_product_attention(
        &q,
        &k,
        &v,
        None::<Tensor>,
        dropout_p,
        causal,
        None,
        false,
    )?;
    attended.f_transpose(1, 2)?.f_reshape([batch, seq, hidden])
}

/// Trainable parameters in a variable store, as PyTorch's
/// `sum(p.numel() for p in model.parameters() if p.requires_grad)` counts them.
pub fn count_parameters(var_store: &nn::VarStore) -> i64 {
    var_store
        .trainable_variables()
        .iter()
        .map(|param| param.numel() as i64)
        .sum()
}
