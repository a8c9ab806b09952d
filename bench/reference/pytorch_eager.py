#!/usr/bin/env python3
"""PyTorch eager reference for gpushare's torch jobs (src/workload/torch).

Runs the same step as the Rust job, with the reference model definitions (torchvision,
Hugging Face transformers) built from config objects with random weights (nothing is
downloaded), on a synthetic batch made once from the seed, and prints the throughput.
A step is, as in src/workload/torch/job.rs:
  train: zero_grad(set_to_none=True); forward and loss (in bf16 autocast if asked);
         backward; fused optimizer step
  infer: forward in eval mode under no_grad (and bf16 autocast if asked)
followed by torch.cuda.synchronize(), so that each step's wall time is real.

Needs torch, torchvision and transformers. Example (GPU machine):
  python3 bench/reference/pytorch_eager.py --model resnet50 --mode train --json
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100

# Same as src/workload/torch/optim.rs.
SGD = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)
ADAMW = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

# Same as ModelKind::default_batch_size / default_optimizer and TorchJobSpec::resolve.
DEFAULT_BATCH = {"resnet50": 64, "bert-base": 32, "gpt2-small": 8, "vit-b16": 64}
DEFAULT_SEQ = {"bert-base": 128, "gpt2-small": 1024}
DEFAULT_OPTIMIZER = {"resnet50": "sgd", "bert-base": "adamw", "gpt2-small": "adamw", "vit-b16": "adamw"}
IMAGE_MODELS = ("resnet50", "vit-b16")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["resnet50", "bert-base", "gpt2-small", "vit-b16"])
    p.add_argument("--mode", default="train", choices=["train", "infer"])
    p.add_argument("--batch-size", type=int, help="items (images or sequences) per step; default: the model's")
    p.add_argument("--seq-len", type=int, help="tokens per sequence (bert-base 128, gpt2-small 1024)")
    p.add_argument("--image-size", type=int, default=224, help="image height and width in pixels")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--channels-last", action="store_true", help="NHWC images and conv weights (image models)")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], help="default: sgd for resnet50, else adamw")
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a line of text")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after the timed steps, profile STEPS more with torch.profiler and add "
                        "the GPU's busy fraction, kernels per step and the top kernels")
    return p.parse_args(argv)


def build_model(args):
    """The reference network a gpushare job with the same model runs, randomly initialised."""
    if args.model == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None)
    if args.model == "vit-b16":
        import torchvision

        # vit_b_16's architecture; the constructor also takes other image sizes.
        return torchvision.models.VisionTransformer(
            image_size=args.image_size, patch_size=16, num_layers=12, num_heads=12,
            hidden_dim=768, mlp_dim=3072, num_classes=1000)
    if args.model == "bert-base":
        from transformers import BertConfig, BertForSequenceClassification

        # BertConfig()'s defaults are bert-base-uncased's; num_labels defaults to 2.
        return BertForSequenceClassification(BertConfig(attn_implementation="sdpa"))
    from transformers import GPT2Config, GPT2LMHeadModel

    # "gelu_pytorch_tanh" is GPT-2's "gelu_new" (GELU, tanh approximation) computed by one
    # fused kernel, as the Rust model does, instead of seven elementwise ones.
    return GPT2LMHeadModel(GPT2Config(attn_implementation="sdpa", activation_function="gelu_pytorch_tanh"))


def make_batch(args, model, device):
    """The synthetic batch of network.rs's SyntheticBatch: made once, reused by every step."""
    b = args.batch_size
    if args.model in IMAGE_MODELS:
        images = torch.randn(b, 3, args.image_size, args.image_size, device=device)
        if args.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, torch.randint(1000, (b,), device=device)
    vocab = model.config.vocab_size
    tokens = torch.randint(vocab, (b, args.seq_len), device=device)
    if args.model == "bert-base":
        return tokens, torch.randint(model.config.num_labels, (b,), device=device)
    # Next-token targets, the last position ignored (Hugging Face's ForCausalLMLoss).
    targets = F.pad(tokens, (0, 1), value=IGNORE_INDEX)[:, 1:].contiguous()
    return tokens, targets


def forward(args, model, inputs):
    if args.model in IMAGE_MODELS:
        return model(inputs)
    if args.model == "gpt2-small":
        return model(input_ids=inputs, use_cache=False).logits
    return model(input_ids=inputs).logits


def loss_fn(args, logits, targets):
    if args.model == "gpt2-small":
        logits = logits.float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=IGNORE_INDEX)
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


def main(argv):
    args = parse_args(argv)
    args.batch_size = args.batch_size or DEFAULT_BATCH[args.model]
    args.seq_len = args.seq_len or DEFAULT_SEQ.get(args.model)
    args.optimizer = args.optimizer or DEFAULT_OPTIMIZER[args.model]
    train = args.mode == "train"
    image_model = args.model in IMAGE_MODELS

    device = torch.device(args.device)
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)

    model = build_model(args).to(device)
    if args.channels_last and image_model:
        model = model.to(memory_format=torch.channels_last)
    model.train(train)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    inputs, targets = make_batch(args, model, device)

    optimizer = None
    if train:
        if args.optimizer == "sgd":
            optimizer = torch.optim.SGD(model.parameters(), fused=True, **SGD)
        else:
            optimizer = torch.optim.AdamW(model.parameters(), fused=True, **ADAMW)
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def autocast():
        if args.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        if train:
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(args, forward(args, model, inputs), targets)
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad(), autocast():
                forward(args, model, inputs)
        if is_cuda:
            torch.cuda.synchronize(device)

    for _ in range(args.warmup_steps):
        step()
    step_s = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        step_s.append(time.perf_counter() - start)

    elapsed_s = sum(step_s)
    items = args.batch_size * args.steps
    result = {
        "model": args.model,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "seq_len": None if image_model else args.seq_len,
        "image_size": args.image_size if image_model else None,
        "precision": args.precision,
        "channels_last": bool(args.channels_last and image_model),
        "optimizer": args.optimizer if train else None,
        "device": str(device),
        "runtime": "eager",
        "torch_version": torch.__version__,
        "parameter_count": n_parameters,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "elapsed_s": elapsed_s,
        "step_ms_median": statistics.median(step_s) * 1e3 if step_s else None,
        "item_name": "images" if image_model else "sequences",
        "throughput_items_per_s": items / elapsed_s if elapsed_s > 0 else None,
        "throughput_tokens_per_s": (items * args.seq_len / elapsed_s
                                    if args.model == "gpt2-small" and elapsed_s > 0 else None),
        "memory_peak_bytes": torch.cuda.max_memory_allocated(device) if is_cuda else None,
    }
    if args.profile:
        result["profile"] = profile(step, args.profile)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model} {args.mode} {args.precision} batch {args.batch_size}: "
              f"{result['throughput_items_per_s']:.1f} {result['item_name']}/s, "
              f"median step {result['step_ms_median']:.2f} ms")
    return 0


def profile(step, steps):
    """GPU busy time (the union of kernel intervals) over wall time for `steps` steps, the
    kernels launched per step, and the kernels that take the most time. A busy fraction
    near 1 means the step is bound by its kernels: a runtime with less host overhead per
    launch cannot make it faster, only different kernels can."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch_profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall_s = time.perf_counter() - start
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    spans = sorted((e.time_range.start, e.time_range.end) for e in kernels)
    busy_us, end = 0.0, float("-inf")
    for s, e in spans:
        if e > end:
            busy_us += e - max(s, end)
            end = e
    by_name = {}
    for e in kernels:
        by_name[e.name] = by_name.get(e.name, 0.0) + e.time_range.elapsed_us()
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:8]
    return {
        "steps": steps,
        "wall_ms_per_step": wall_s * 1e3 / steps,
        "gpu_busy_ms_per_step": busy_us / 1e3 / steps,
        "gpu_busy_fraction": busy_us / 1e6 / wall_s if wall_s > 0 else None,
        "kernels_per_step": len(kernels) / steps,
        "top_kernels_ms_per_step": [[name[:80], us / 1e3 / steps] for name, us in top],
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
