//! GPT-2 small as Hugging Face's `GPT2LMHeadModel` defines it (`GPT2Config()` defaults): 12
//! pre-norm layers of width 768 and a language-model head tied to the token embedding,
//! 124,439,808 parameters. Attention is causal `scaled_dot_product_attention`, what Hugging
//! Face's "sdpa" attention runs without a padding mask; the feed-forward activation is
//! `gelu_new`, GELU's tanh approximation.

use tch::{nn, Kind, TchError, Tensor};

use super::layers::{self, Embedding, LayerNorm, Linear};

/// The shape of a GPT-2 model; the default is GPT-2 small.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    /// Token vocabulary size.
    pub vocab_size: i64,
    /// Longest sequence, in tokens (learned position embeddings).
    pub max_positions: i64,
    /// Width of every token representation.
    pub hidden_size: i64,
    /// Transformer layers.
    pub n_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub n_heads: i64,
    /// Dropout probability on embeddings, residual branches and attention weights
    /// (`embd_pdrop`, `resid_pdrop`, `attn_pdrop`, all 0.1 in GPT-2).
    pub dropout: f64,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
}

impl Default for Gpt2Config {
    fn default() -> Self {
        Self {
            vocab_size: 50257,
            max_positions: 1024,
            hidden_size: 768,
            n_layers: 12,
            n_heads: 12,
            dropout: 0.1,
            layer_norm_eps: 1e-5,
        }
    }
}

impl Gpt2Config {
    /// Two layers of width 32 over a 128-token vocabulary, for CPU tests.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 128,
            max_positions: 64,
            hidden_size: 32,
            n_layers: 2,
            n_heads: 2,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

impl Block {
    fn new(path: nn::Path, c: &Gpt2Config) -> Self {
        let h = c.hidden_size;
        Self {
            ln_1: LayerNorm::new(&path / "ln_1", h, c.layer_norm_eps),
            c_attn: Linear::new(&path / "attn" / "c_attn", h, 3 * h),
            attn_proj: Linear::new(&path / "attn" / "c_proj", h, h),
            ln_2: LayerNorm::new(&path / "ln_2", h, c.layer_norm_eps),
            c_fc: Linear::new(&path / "mlp" / "c_fc", h, 4 * h),
            mlp_proj: Linear::new(&path / "mlp" / "c_proj", 4 * h, h),
        }
    }

    fn forward_t(&self, xs: &Tensor, c: &Gpt2Config, train: bool) -> Result<Tensor, TchError> {
        let qkv = self.c_attn.forward(&self.ln_1.forward(xs)?)?;
        let attended = layers::self_attention(&qkv, c.n_heads, true, c.dropout, train)?;
        let attended = self
            .attn_proj
            .forward(&attended)?
            .f_dropout(c.dropout, train)?;
        let xs = attended.f_add(xs)?;
        let hidden = self
            .c_fc
            .forward(&self.ln_2.forward(&xs)?)?
            .f_gelu("tanh")?;
        let out = self
            .mlp_proj
            .forward(&hidden)?
            .f_dropout(c.dropout, train)?;
        out.f_add(&xs)
    }
}

/// `GPT2LMHeadModel`: token ids (batch, seq) to next-token logits (batch, seq, vocab), with
/// Hugging Face's parameter names.
#[derive(Debug)]
pub struct Gpt2 {
    config: Gpt2Config,
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt2 {
    pub fn new(path: &nn::Path, config: &Gpt2Config) -> Self {
        let c = config;
        let transformer = path / "transformer";
        Self {
            config: c.clone(),
            wte: Embedding::new(&transformer / "wte", c.vocab_size, c.hidden_size),
            wpe: Embedding::new(&transformer / "wpe", c.max_positions, c.hidden_size),
            blocks: (0..c.n_layers)
                .map(|idx| Block::new(&transformer / "h" / idx, c))
                .collect(),
            ln_f: LayerNorm::new(&transformer / "ln_f", c.hidden_size, c.layer_norm_eps),
        }
    }

    pub fn forward_t(&self, input_ids: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let c = &self.config;
        let (_, seq) = input_ids.size2()?;
        let position_ids =
            Tensor::f_arange(seq, (Kind::Int64, input_ids.device()))?.f_unsqueeze(0)?;
        let mut xs = self
            .wte
            .forward(input_ids)?
            .f_add(&self.wpe.forward(&position_ids)?)?
            .f_dropout(c.dropout, train)?;
        for block in &self.blocks {
            xs = block.forward_t(&xs, c, train)?;
        }
        // The head is the token embedding itself (tied weights), without a bias.
        self.ln_f
            .forward(&xs)?
            .f_linear(self.wte.weight(), None::<Tensor>)
    }
}

#[cfg(test)]
mod tests {
    use tch::{nn::VarStore, Device, Kind, Tensor};

    use super::*;

    use crate::models::layers::count_parameters as n_parameters;

    #[test]
    fn gpt2_small_has_the_reference_parameter_count_with_tied_head() {
        let vs = VarStore::new(Device::Cpu);
        let _net = Gpt2::new(&vs.root(), &Gpt2Config::default());
        assert_eq!(n_parameters(&vs), 124_439_808);
    }

    #[test]
    fn gpt2_small_maps_token_ids_to_next_token_logits() {
        let vs = VarStore::new(Device::Cpu);
        let net = Gpt2::new(&vs.root(), &Gpt2Config::default());
        let tokens = Tensor::randint(50257, [1, 8], (Kind::Int64, Device::Cpu));
        assert_eq!(net.forward_t(&tokens, false).unwrap().size(), [1, 8, 50257]);
    }

    #[test]
    fn attention_is_causal() {
        // Changing the last token must not change the logits of earlier positions.
        let vs = VarStore::new(Device::Cpu);
        let net = Gpt2::new(&vs.root(), &Gpt2Config::tiny());
        let tokens = Tensor::randint(128, [1, 16], (Kind::Int64, Device::Cpu));
        let changed = tokens.copy();
        let _ = changed.narrow(1, 15, 1).fill_(7);
        let _ = tokens.narrow(1, 15, 1).fill_(3);
        let (a, b) = (
            net.forward_t(&tokens, false).unwrap(),
            net.forward_t(&changed, false).unwrap(),
        );
        let earlier_diff = (a.narrow(1, 0, 15) - b.narrow(1, 0, 15)).abs().max();
        assert!(earlier_diff.double_value(&[]) < 1e-5);
        let last_diff = (a.narrow(1, 15, 1) - b.narrow(1, 15, 1)).abs().max();
        assert!(last_diff.double_value(&[]) > 1e-5);
    }
}
