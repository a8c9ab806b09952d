//! BERT-base as Hugging Face's `BertModel` defines it (`bert-base-uncased`'s config:
//! encoder plus pooler, 109,482,240 parameters) and the 2-label sequence-classification head
//! of `BertForSequenceClassification` that train and infer jobs run on top of it.
//!
//! The query, key and value projections are one fused linear layer (the same parameters as
//! Hugging Face's three, one matrix multiply instead of three); attention is
//! `scaled_dot_product_attention` without a mask, which is what Hugging Face's "sdpa"
//! attention runs when every token is real.

use tch::{nn, Kind, TchError, Tensor};

use super::layers::{self, Embedding, LayerNorm, Linear};

/// The shape of a BERT encoder; the default is `bert-base-uncased`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Token vocabulary size.
    pub vocab_size: i64,
    /// Width of every token representation.
    pub hidden_size: i64,
    /// Transformer layers.
    pub n_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub n_heads: i64,
    /// Width of the feed-forward block.
    pub intermediate_size: i64,
    /// Longest sequence, in tokens (learned position embeddings).
    pub max_positions: i64,
    /// Segment (token type) vocabulary size.
    pub type_vocab_size: i64,
    /// Dropout probability after embeddings, attention output and feed-forward output.
    pub hidden_dropout: f64,
    /// Dropout probability on attention weights.
    pub attention_dropout: f64,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            n_layers: 12,
            n_heads: 12,
            intermediate_size: 3072,
            max_positions: 512,
            type_vocab_size: 2,
            hidden_dropout: 0.1,
            attention_dropout: 0.1,
            layer_norm_eps: 1e-12,
        }
    }
}

impl BertConfig {
    /// Two layers of width 32 over a 128-token vocabulary, for CPU tests.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 128,
            hidden_size: 32,
            n_layers: 2,
            n_heads: 2,
            intermediate_size: 64,
            max_positions: 64,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn new(path: nn::Path, c: &BertConfig) -> Self {
        let h = c.hidden_size;
        Self {
            qkv: Linear::new(&path / "attention" / "self" / "qkv", h, 3 * h),
            attention_out: Linear::new(&path / "attention" / "output" / "dense", h, h),
            attention_norm: LayerNorm::new(
                &path / "attention" / "output" / "LayerNorm",
                h,
                c.layer_norm_eps,
            ),
            intermediate: Linear::new(&path / "intermediate" / "dense", h, c.intermediate_size),
            output: Linear::new(&path / "output" / "dense", c.intermediate_size, h),
            output_norm: LayerNorm::new(&path / "output" / "LayerNorm", h, c.layer_norm_eps),
        }
    }

    fn forward_t(&self, xs: &Tensor, c: &BertConfig, train: bool) -> Result<Tensor, TchError> {
        let attended = layers::self_attention(
            &self.qkv.forward(xs)?,
            c.n_heads,
            false,
            c.attention_dropout,
            train,
        )?;
        let attended = self
            .attention_out
            .forward(&attended)?
            .f_dropout(c.hidden_dropout, train)?;
        let xs = self.attention_norm.forward(&attended.f_add(xs)?)?;
        let hidden = self.intermediate.forward(&xs)?.f_gelu("none")?;
        let out = self
            .output
            .forward(&hidden)?
            .f_dropout(c.hidden_dropout, train)?;
        self.output_norm.forward(&out.f_add(&xs)?)
    }
}

/// `BertModel`: token ids (batch, seq) to the pooled first-token representation
/// (batch, hidden), with `bert-base-uncased`'s parameter names.
#[derive(Debug)]
pub struct Bert {
    config: BertConfig,
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    pooler: Linear,
}

impl Bert {
    pub fn new(path: &nn::Path, config: &BertConfig) -> Self {
        let c = config;
        let h = c.hidden_size;
        let emb = path / "embeddings";
        Self {
            config: c.clone(),
            word_embeddings: Embedding::new(&emb / "word_embeddings", c.vocab_size, h),
            position_embeddings: Embedding::new(&emb / "position_embeddings", c.max_positions, h),
            token_type_embeddings: Embedding::new(
                &emb / "token_type_embeddings",
                c.type_vocab_size,
                h,
            ),
            embedding_norm: LayerNorm::new(&emb / "LayerNorm", h, c.layer_norm_eps),
            layers: (0..c.n_layers)
                .map(|idx| Layer::new(path / "encoder" / "layer" / idx, c))
                .collect(),
            pooler: Linear::new(path / "pooler" / "dense", h, h),
        }
    }

    /// Pooled output: tanh of a linear map of the last layer's first token.
    pub fn forward_t(&self, input_ids: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let c = &self.config;
        let (batch, seq) = input_ids.size2()?;
        let device = input_ids.device();
        // Hugging Face's defaults when neither is given: positions 0..seq, segment 0 everywhere.
        let position_ids = Tensor::f_arange(seq, (Kind::Int64, device))?.f_unsqueeze(0)?;
        let token_type_ids = Tensor::f_zeros([batch, seq], (Kind::Int64, device))?;
        let embeddings = self
            .word_embeddings
            .forward(input_ids)?
            .f_add(&self.token_type_embeddings.forward(&token_type_ids)?)?
            .f_add(&self.position_embeddings.forward(&position_ids)?)?;
        let mut xs = self
            .embedding_norm
            .forward(&embeddings)?
            .f_dropout(c.hidden_dropout, train)?;
        for layer in &self.layers {
            xs = layer.forward_t(&xs, c, train)?;
        }
        self.pooler.forward(&xs.f_select(1, 0)?)?.f_tanh()
    }
}

/// `BertForSequenceClassification`: BERT, dropout, and a linear layer to label logits.
#[derive(Debug)]
pub struct BertClassifier {
    bert: Bert,
    classifier: Linear,
    dropout: f64,
}

impl BertClassifier {
    /// Labels of the classification head; 2 is Hugging Face's default (`num_labels`).
    pub const N_LABELS: i64 = 2;

    pub fn new(path: &nn::Path, config: &BertConfig) -> Self {
        Self {
            bert: Bert::new(&(path / "bert"), config),
            classifier: Linear::new(path / "classifier", config.hidden_size, Self::N_LABELS),
            dropout: config.hidden_dropout,
        }
    }

    /// Token ids (batch, seq) to label logits (batch, `N_LABELS`).
    pub fn forward_t(&self, input_ids: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let pooled = self
            .bert
            .forward_t(input_ids, train)?
            .f_dropout(self.dropout, train)?;
        self.classifier.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use tch::{nn::VarStore, Device, Kind, Tensor};

    use super::*;

    use crate::models::layers::count_parameters as n_parameters;

    #[test]
    fn bert_base_has_the_reference_parameter_count() {
        let vs = VarStore::new(Device::Cpu);
        let _net = Bert::new(&vs.root(), &BertConfig::default());
        assert_eq!(n_parameters(&vs), 109_482_240);
    }

    #[test]
    fn classifier_head_adds_hidden_times_labels_plus_bias() {
        let vs = VarStore::new(Device::Cpu);
        let _net = BertClassifier::new(&vs.root(), &BertConfig::default());
        assert_eq!(n_parameters(&vs), 109_482_240 + 768 * 2 + 2);
        assert!(vs.variables().contains_key("bert.pooler.dense.weight"));
    }

    #[test]
    fn bert_base_maps_token_ids_to_label_logits() {
        let vs = VarStore::new(Device::Cpu);
        let net = BertClassifier::new(&vs.root(), &BertConfig::default());
        let tokens = Tensor::randint(30522, [2, 8], (Kind::Int64, Device::Cpu));
        assert_eq!(net.forward_t(&tokens, false).unwrap().size(), [2, 2]);
    }

    #[test]
    fn pooled_output_is_a_tanh_per_sequence() {
        let vs = VarStore::new(Device::Cpu);
        let net = Bert::new(&vs.root(), &BertConfig::tiny());
        let tokens = Tensor::randint(128, [3, 16], (Kind::Int64, Device::Cpu));
        let pooled = net.forward_t(&tokens, true).unwrap();
        assert_eq!(pooled.size(), [3, 32]);
        assert!(pooled.abs().max().double_value(&[]) <= 1.0);
    }
}
