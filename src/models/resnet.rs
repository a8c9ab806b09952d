//! ResNet-50 as torchvision defines it (`torchvision.models.resnet50`, "ResNet v1.5": the
//! stride of a downsampling bottleneck sits on its 3x3 convolution). 25,557,032 parameters.

use tch::{nn, TchError, Tensor};

use super::layers::{BatchNorm2d, Conv2d, Linear};

/// Channel growth inside a bottleneck: its last 1x1 convolution has 4x its width.
const EXPANSION: i64 = 4;

/// The shape of a bottleneck ResNet; the default is ResNet-50.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResnetConfig {
    /// Bottleneck blocks in each of the four stages.
    pub blocks_per_stage: [usize; 4],
    /// Channels of the stem and width of the first stage's bottlenecks; stage `i` has
    /// `base_width << i`.
    pub base_width: i64,
    /// Classes of the final linear layer.
    pub n_classes: i64,
}

impl Default for ResnetConfig {
    fn default() -> Self {
        Self {
            blocks_per_stage: [3, 4, 6, 3],
            base_width: 64,
            n_classes: 1000,
        }
    }
}

impl ResnetConfig {
    /// One block per stage, 8 channels, 10 classes: every layer kind, small enough for CPU tests.
    pub fn tiny() -> Self {
        Self {
            blocks_per_stage: [1, 1, 1, 1],
            base_width: 8,
            n_classes: 10,
        }
    }
}

#[derive(Debug)]
struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    conv3: Conv2d,
    bn3: BatchNorm2d,
    downsample: Option<(Conv2d, BatchNorm2d)>,
}

impl Bottleneck {
    fn new(path: nn::Path, in_channels: i64, width: i64, stride: i64) -> Self {
        let out_channels = width * EXPANSION;
        let downsample = (stride != 1 || in_channels != out_channels).then(|| {
            (
                Conv2d::new(
                    &path / "downsample" / 0,
                    in_channels,
                    out_channels,
                    1,
                    stride,
                    0,
                    false,
                ),
                BatchNorm2d::new(&path / "downsample" / 1, out_channels),
            )
        });
        Self {
            conv1: Conv2d::new(&path / "conv1", in_channels, width, 1, 1, 0, false),
            bn1: BatchNorm2d::new(&path / "bn1", width),
            conv2: Conv2d::new(&path / "conv2", width, width, 3, stride, 1, false),
            bn2: BatchNorm2d::new(&path / "bn2", width),
            conv3: Conv2d::new(&path / "conv3", width, out_channels, 1, 1, 0, false),
            bn3: BatchNorm2d::new(&path / "bn3", out_channels),
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        // In-place ReLU and residual add, as torchvision's `inplace=True` and `out += identity`.
        let out = self
            .bn1
            .forward_t(&self.conv1.forward(xs)?, train)?
            .f_relu_()?;
        let out = self
            .bn2
            .forward_t(&self.conv2.forward(&out)?, train)?
            .f_relu_()?;
        let mut out = self.bn3.forward_t(&self.conv3.forward(&out)?, train)?;
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs)?, train)?,
            None => xs.shallow_clone(),
        };
        out.f_add_(&identity)?.f_relu_()
    }
}

#[derive(Debug)]
pub struct Resnet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    blocks: Vec<Bottleneck>,
    fc: Linear,
}

impl Resnet {
    /// Registers the parameters under `path` with torchvision's names (`layer1.0.conv1`, ...).
    pub fn new(path: &nn::Path, config: &ResnetConfig) -> Self {
        let width = config.base_width;
        let mut blocks = Vec::new();
        let mut in_channels = width;
        for (stage_idx, &n_blocks) in config.blocks_per_stage.iter().enumerate() {
            let stage_width = width << stage_idx;
            let stage_path = path / format!("layer{}", stage_idx + 1);
            for block_idx in 0..n_blocks {
                // The first stage keeps the stem's resolution (the max-pool already halved it).
                let stride = if block_idx == 0 && stage_idx > 0 {
                    2
                } else {
                    1
                };
                blocks.push(Bottleneck::new(
                    &stage_path / block_idx,
                    in_channels,
                    stage_width,
                    stride,
                ));
                in_channels = stage_width * EXPANSION;
            }
        }
        Self {
            conv1: Conv2d::new(path / "conv1", 3, width, 7, 2, 3, false),
            bn1: BatchNorm2d::new(path / "bn1", width),
            blocks,
            fc: Linear::new(path / "fc", in_channels, config.n_classes),
        }
    }

    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let stem = self
            .bn1
            .forward_t(&self.conv1.forward(images)?, train)?
            .f_relu_()?;
        let mut xs = stem.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        for block in &self.blocks {
            xs = block.forward_t(&xs, train)?;
        }
        let pooled = xs.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?;
        self.fc.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use tch::{nn::VarStore, Device, Kind, Tensor};

    use super::*;

    use crate::models::layers::count_parameters as n_parameters;

    #[test]
    fn resnet50_has_torchvisions_parameter_count_and_names() {
        let vs = VarStore::new(Device::Cpu);
        let _net = Resnet::new(&vs.root(), &ResnetConfig::default());
        assert_eq!(n_parameters(&vs), 25_557_032);
        let names = vs.variables();
        for name in [
            "conv1.weight",
            "layer1.0.downsample.0.weight",
            "layer4.2.bn3.bias",
            "fc.weight",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
    }

    #[test]
    fn resnet50_maps_images_to_one_logit_per_class() {
        let vs = VarStore::new(Device::Cpu);
        let net = Resnet::new(&vs.root(), &ResnetConfig::default());
        let images = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let logits = net.forward_t(&images, false).unwrap();
        assert_eq!(logits.size(), [1, 1000]);
    }

    #[test]
    fn tiny_resnet_keeps_the_architecture_small() {
        let vs = VarStore::new(Device::Cpu);
        let net = Resnet::new(&vs.root(), &ResnetConfig::tiny());
        assert!(n_parameters(&vs) < 200_000, "{}", n_parameters(&vs));
        let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&images, true).unwrap().size(), [2, 10]);
    }
}
