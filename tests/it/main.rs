#[cfg(feature = "torch")]
mod torch_models;
