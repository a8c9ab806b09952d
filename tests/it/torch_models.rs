//! The torch workloads through their public API: reference parameter counts, every model
//! stepping on the CPU in both modes and precisions, specs from TOML and their errors, and
//! the `gpu_*` tests that only the GPU machine can pass.

use gpushare::workload::torch::{
    autocast_enabled, cuda_available, parameter_count, AutocastGuard, JobKind, ModelKind,
    OptimizerKind, Precision, TorchError, TorchJob, TorchJobSpec,
};
use tch::Device;

fn tiny_cpu_spec(model: ModelKind, kind: JobKind, precision: Precision) -> TorchJobSpec {
    TorchJobSpec {
        kind,
        precision,
        device: Device::Cpu,
        tiny: true,
        ..TorchJobSpec::new(model)
    }
}

#[test]
fn full_size_parameter_counts_equal_the_references() {
    // torchvision resnet50, BertForSequenceClassification (bert-base-uncased's 109,482,240
    // plus the 2-label head), GPT2LMHeadModel with tied embeddings, torchvision vit_b_16.
    let expected = [
        (ModelKind::Resnet50, 25_557_032),
        (ModelKind::BertBase, 109_483_778),
        (ModelKind::Gpt2Small, 124_439_808),
        (ModelKind::VitB16, 86_567_656),
    ];
    for (model, n_parameters) in expected {
        assert_eq!(
            parameter_count(model, false).unwrap(),
            n_parameters,
            "{model}"
        );
    }
}

#[test]
fn every_model_trains_and_infers_on_the_cpu_in_fp32_and_bf16() {
    for model in ModelKind::ALL {
        for kind in [JobKind::Train, JobKind::Infer] {
            for precision in [Precision::Fp32, Precision::Bf16] {
                let spec = tiny_cpu_spec(model, kind, precision);
                let mut job = TorchJob::new(&spec).unwrap();
                job.warm_up(1).unwrap();
                // The step counts the rows it processed; the spec asked for two.
                assert_eq!(job.settings().batch_size, 2, "{model}");
                assert_eq!(job.step().unwrap(), 2, "{model} {kind} {precision:?}");
                assert_eq!(job.parameter_count(), parameter_count(model, true).unwrap());
                assert_eq!(job.memory_peak_bytes(), None, "no CUDA memory on the CPU");
            }
        }
    }
}

#[test]
fn items_are_images_or_sequences_and_gpt2_also_counts_tokens() {
    let job =
        |model| TorchJob::new(&tiny_cpu_spec(model, JobKind::Infer, Precision::Fp32)).unwrap();
    assert_eq!(job(ModelKind::Resnet50).item_name(), "images");
    assert_eq!(job(ModelKind::VitB16).item_name(), "images");
    assert_eq!(job(ModelKind::BertBase).item_name(), "sequences");
    let gpt2 = job(ModelKind::Gpt2Small);
    assert_eq!(gpt2.item_name(), "sequences");
    assert_eq!(gpt2.tokens_per_step(), Some(2 * 16));
    assert_eq!(job(ModelKind::BertBase).tokens_per_step(), None);
}

#[test]
fn spec_reads_from_toml_with_defaults_filled_by_resolve() {
    let spec: TorchJobSpec = toml::from_str(
        r#"
        model = "gpt2-small"
        kind = "infer"
        precision = "bf16"
        device = "cpu"
        "#,
    )
    .unwrap();
    assert_eq!(spec.device, Device::Cpu);
    let settings = spec.resolve().unwrap();
    assert_eq!(settings.model, ModelKind::Gpt2Small);
    assert_eq!((settings.batch_size, settings.seq_len), (8, Some(1024)));
    assert_eq!(settings.image_size, None);
    assert_eq!(settings.optimizer, None, "infer jobs have no optimizer");

    let spec: TorchJobSpec = toml::from_str("model = \"resnet50\"\nchannels_last = true").unwrap();
    assert_eq!(spec.device, Device::Cuda(0));
    let settings = spec.resolve().unwrap();
    assert_eq!(settings.kind, JobKind::Train);
    assert_eq!(settings.optimizer, Some(OptimizerKind::Sgd));
    assert_eq!((settings.batch_size, settings.image_size), (64, Some(224)));
    assert!(settings.channels_last);
    let json = serde_json::to_value(&settings).unwrap();
    assert_eq!(json["device"], "cuda:0");
    assert_eq!(json["model"], "resnet50");
}

#[test]
fn spec_errors_name_the_field_or_value() {
    let unknown =
        toml::from_str::<TorchJobSpec>("model = \"vit-b16\"\nbatch_sise = 3").unwrap_err();
    assert!(
        unknown.to_string().contains("unknown field `batch_sise`"),
        "{unknown}"
    );
    let device =
        toml::from_str::<TorchJobSpec>("model = \"vit-b16\"\ndevice = \"gpu0\"").unwrap_err();
    assert!(
        device
            .to_string()
            .contains(r#"parse device "gpu0": expected cpu, cuda or cuda:N"#),
        "{device}"
    );
    let model = "bert".parse::<ModelKind>().unwrap_err();
    assert!(matches!(&model, TorchError::ParseModel { text } if text == "bert"));
    assert_eq!(
        model.to_string(),
        r#"parse model "bert": expected resnet50, bert-base, gpt2-small or vit-b16"#
    );
}

#[test]
fn sizes_outside_what_the_model_takes_are_rejected() {
    let cases = [
        (
            TorchJobSpec {
                seq_len: Some(1025),
                ..TorchJobSpec::new(ModelKind::Gpt2Small)
            },
            "configure gpt2-small: seq_len 1025 is outside 1..=1024 tokens",
        ),
        (
            TorchJobSpec {
                seq_len: Some(513),
                ..TorchJobSpec::new(ModelKind::BertBase)
            },
            "configure bert-base: seq_len 513 is outside 1..=512 tokens",
        ),
        (
            TorchJobSpec {
                image_size: Some(200),
                ..TorchJobSpec::new(ModelKind::VitB16)
            },
            "configure vit-b16: image_size 200 is not a multiple of the 16-pixel patch",
        ),
        (
            TorchJobSpec {
                batch_size: Some(0),
                ..TorchJobSpec::new(ModelKind::Resnet50)
            },
            "configure resnet50: batch_size must be at least 1",
        ),
    ];
    for (spec, message) in cases {
        let err = TorchJob::new(&spec).unwrap_err();
        assert!(matches!(err, TorchError::InvalidSpec { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn a_cuda_device_libtorch_does_not_have_is_an_error() {
    let spec = TorchJobSpec {
        device: Device::Cuda(99),
        tiny: true,
        ..TorchJobSpec::new(ModelKind::Resnet50)
    };
    let err = TorchJob::new(&spec).unwrap_err();
    let n_devices = tch::Cuda::device_count();
    assert!(
        matches!(err, TorchError::DeviceUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("use cuda:99 for resnet50: libtorch sees {n_devices} CUDA device(s)")
    );
}

/// Fails when the binary was linked without libtorch_cuda (see build.rs) or no GPU is there.
#[test]
fn gpu_tch_cuda_available() {
    assert!(tch::Cuda::is_available(), "libtorch sees no CUDA GPU");
    assert!(cuda_available());
    assert!(tch::Cuda::cudnn_is_available(), "libtorch sees no cuDNN");
}

#[test]
fn gpu_bf16_autocast_runs_cuda_matmuls_in_bf16() {
    let device = Device::Cuda(0);
    let a = tch::Tensor::randn([64, 64], (tch::Kind::Float, device));
    {
        let _autocast = AutocastGuard::bf16(device).unwrap();
        assert!(autocast_enabled(device).unwrap());
        assert_eq!(a.matmul(&a).kind(), tch::Kind::BFloat16);
    }
    assert!(!autocast_enabled(device).unwrap());
    assert_eq!(a.matmul(&a).kind(), tch::Kind::Float);
}

#[test]
fn gpu_every_model_steps_on_cuda_and_reports_its_memory_peak() {
    for model in ModelKind::ALL {
        for kind in [JobKind::Train, JobKind::Infer] {
            for precision in [Precision::Fp32, Precision::Bf16] {
                let spec = TorchJobSpec {
                    kind,
                    precision,
                    channels_last: model.takes_images(),
                    tiny: true,
                    ..TorchJobSpec::new(model)
                };
                let mut job = TorchJob::new(&spec).unwrap();
                job.warm_up(2).unwrap();
                assert_eq!(job.step().unwrap(), 2, "{model} {kind} {precision:?}");
                let peak_bytes = job.memory_peak_bytes().expect("a CUDA memory peak");
                assert!(peak_bytes > 0, "{model} {kind} {precision:?}");
            }
        }
    }
}

#[test]
fn gpu_full_size_train_steps_fit_and_run() {
    for model in ModelKind::ALL {
        let spec = TorchJobSpec {
            precision: Precision::Bf16,
            ..TorchJobSpec::new(model)
        };
        let mut job = TorchJob::new(&spec).unwrap();
        job.warm_up(2).unwrap();
        let batch_size = job.settings().batch_size as u64;
        assert_eq!(job.step().unwrap(), batch_size, "{model}");
    }
}

/// A `cuda_graph` spec off a GPU or for training is refused when it is resolved.
#[test]
fn cuda_graph_specs_need_an_infer_job_on_a_gpu() {
    let on_cpu = TorchJobSpec {
        kind: JobKind::Infer,
        device: Device::Cpu,
        tiny: true,
        cuda_graph: true,
        ..TorchJobSpec::new(ModelKind::Resnet50)
    };
    let err = on_cpu.resolve().unwrap_err().to_string();
    assert!(err.contains("cuda_graph needs a CUDA device"), "{err}");
    let training = TorchJobSpec {
        kind: JobKind::Train,
        cuda_graph: true,
        ..TorchJobSpec::new(ModelKind::Resnet50)
    };
    let err = training.resolve().unwrap_err().to_string();
    assert!(err.contains("captures inference steps only"), "{err}");
}

/// On the GPU machine: every model's infer job steps as a CUDA graph replay, at full size
/// for ResNet-50 and BERT-base (what the serving comparison runs) and tiny for the rest.
#[test]
fn gpu_cuda_graph_infer_jobs_step() {
    for model in ModelKind::ALL {
        for precision in [Precision::Fp32, Precision::Bf16] {
            let full_size = matches!(model, ModelKind::Resnet50 | ModelKind::BertBase);
            let spec = TorchJobSpec {
                kind: JobKind::Infer,
                precision,
                batch_size: Some(8),
                tiny: !full_size,
                cuda_graph: true,
                ..TorchJobSpec::new(model)
            };
            let mut job = TorchJob::new(&spec).unwrap();
            job.warm_up(2).unwrap();
            for _ in 0..3 {
                assert_eq!(job.step().unwrap(), 8, "{model} {precision:?}");
            }
        }
    }
}
