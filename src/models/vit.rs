//! ViT-B/16 as torchvision defines it (`torchvision.models.vit_b_16`): 16x16 patches, a class
//! token, learned position embeddings, 12 pre-norm layers of width 768, 86,567,656
//! parameters at 224x224 with 1000 classes. Attention runs `scaled_dot_product_attention`
//! on the fused input projection, as `nn.MultiheadAttention` does when asked for no weights.

use tch::{nn, TchError, Tensor};

use super::layers::{self, Conv2d, LayerNorm, Linear};

/// The shape of a vision transformer; the default is ViT-B/16 at 224x224.
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// Input height and width, in pixels; a multiple of `patch_size`. The position
    /// embedding, and so the parameter count, depends on it.
    pub image_size: i64,
    /// Patch height and width, in pixels.
    pub patch_size: i64,
    /// Transformer layers.
    pub n_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub n_heads: i64,
    /// Width of every token representation.
    pub hidden_size: i64,
    /// Width of the feed-forward block.
    pub mlp_size: i64,
    /// Classes of the head.
    pub n_classes: i64,
}

impl Default for VitConfig {
    fn default() -> Self {
        Self {
            image_size: 224,
            patch_size: 16,
            n_layers: 12,
            n_heads: 12,
            hidden_size: 768,
            mlp_size: 3072,
            n_classes: 1000,
        }
    }
}

impl VitConfig {
    /// 32x32 images in 8x8 patches, two layers of width 32, 10 classes, for CPU tests.
    pub fn tiny() -> Self {
        Self {
            image_size: 32,
            patch_size: 8,
            n_layers: 2,
            n_heads: 2,
            hidden_size: 32,
            mlp_size: 64,
            n_classes: 10,
        }
    }

    /// Tokens per image: one per patch plus the class token.
    pub fn seq_len(&self) -> i64 {
        let per_side = self.image_size / self.patch_size;
        per_side * per_side + 1
    }
}

/// torchvision's layer norms use eps 1e-6, not PyTorch's default 1e-5.
const LAYER_NORM_EPS: f64 = 1e-6;

#[derive(Debug)]
struct EncoderBlock {
    ln_1: LayerNorm,
    in_proj: Linear,
    out_proj: Linear,
    ln_2: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
}

impl EncoderBlock {
    fn new(path: nn::Path, c: &VitConfig) -> Self {
        let h = c.hidden_size;
        Self {
            ln_1: LayerNorm::new(&path / "ln_1", h, LAYER_NORM_EPS),
            in_proj: Linear::new(&path / "self_attention" / "in_proj", h, 3 * h),
            out_proj: Linear::new(&path / "self_attention" / "out_proj", h, h),
            ln_2: LayerNorm::new(&path / "ln_2", h, LAYER_NORM_EPS),
            mlp_in: Linear::new(&path / "mlp" / 0, h, c.mlp_size),
            mlp_out: Linear::new(&path / "mlp" / 3, c.mlp_size, h),
        }
    }

    /// torchvision's dropout probabilities are all 0 for ViT-B/16, so none is applied.
    fn forward_t(&self, xs: &Tensor, c: &VitConfig, train: bool) -> Result<Tensor, TchError> {
        let qkv = self.in_proj.forward(&self.ln_1.forward(xs)?)?;
        let attended = layers::self_attention(&qkv, c.n_heads, false, 0.0, train)?;
        let xs = self.out_proj.forward(&attended)?.f_add(xs)?;
        let hidden = self
            .mlp_in
            .forward(&self.ln_2.forward(&xs)?)?
            .f_gelu("none")?;
        self.mlp_out.forward(&hidden)?.f_add(&xs)
    }
}

/// `VisionTransformer`: images (batch, 3, size, size) to logits (batch, classes), with
/// torchvision's parameter names where they map one to one.
#[derive(Debug)]
pub struct Vit {
    config: VitConfig,
    conv_proj: Conv2d,
    class_token: Tensor,
    pos_embedding: Tensor,
    blocks: Vec<EncoderBlock>,
    ln: LayerNorm,
    head: Linear,
}

impl Vit {
    pub fn new(path: &nn::Path, config: &VitConfig) -> Self {
        let c = config;
        let h = c.hidden_size;
        let encoder = path / "encoder";
        Self {
            config: c.clone(),
            conv_proj: Conv2d::new(
                path / "conv_proj",
                3,
                h,
                c.patch_size,
                c.patch_size,
                0,
                true,
            ),
            class_token: path.zeros("class_token", &[1, 1, h]),
            // torchvision initialises it from N(0, 0.02).
            pos_embedding: encoder.randn("pos_embedding", &[1, c.seq_len(), h], 0.0, 0.02),
            blocks: (0..c.n_layers)
                .map(|idx| {
                    EncoderBlock::new(&encoder / "layers" / format!("encoder_layer_{idx}"), c)
                })
                .collect(),
            ln: LayerNorm::new(&encoder / "ln", h, LAYER_NORM_EPS),
            head: Linear::new(path / "heads" / "head", h, c.n_classes),
        }
    }

    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let c = &self.config;
        // (batch, hidden, rows, cols) -> (batch, patches, hidden)
        let patches = self
            .conv_proj
            .forward(images)?
            .f_flatten(2, -1)?
            .f_permute([0, 2, 1])?;
        let batch = patches.size()[0];
        let class_tokens = self.class_token.f_expand([batch, -1, -1], false)?;
        let mut xs = Tensor::f_cat(&[&class_tokens, &patches], 1)?.f_add(&self.pos_embedding)?;
        for block in &self.blocks {
            xs = block.forward_t(&xs, c, train)?;
        }
        self.head.forward(&self.ln.forward(&xs)?.f_select(1, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use tch::{nn::VarStore, Device, Kind, Tensor};

    use super::*;

    use crate::models::layers::count_parameters as n_parameters;

    #[test]
    fn vit_b16_has_torchvisions_parameter_count() {
        let vs = VarStore::new(Device::Cpu);
        let _net = Vit::new(&vs.root(), &VitConfig::default());
        assert_eq!(n_parameters(&vs), 86_567_656);
        assert!(vs.variables().contains_key("encoder.pos_embedding"));
    }

    #[test]
    fn vit_b16_maps_images_to_one_logit_per_class() {
        let vs = VarStore::new(Device::Cpu);
        let net = Vit::new(&vs.root(), &VitConfig::default());
        let images = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&images, false).unwrap().size(), [1, 1000]);
    }

    #[test]
    fn sequence_is_patches_plus_class_token() {
        assert_eq!(VitConfig::default().seq_len(), 14 * 14 + 1);
        assert_eq!(VitConfig::tiny().seq_len(), 4 * 4 + 1);
    }
}
