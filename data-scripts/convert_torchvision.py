#!/usr/bin/env python3
"""Convert a torchvision ImageNet checkpoint into the safetensors file rwt's encoders load.

    python data-scripts/convert_torchvision.py vgg16     vgg16.safetensors      [--pth FILE]
    python data-scripts/convert_torchvision.py vgg16_bn  vgg16_bn.safetensors   [--pth FILE]
    python data-scripts/convert_torchvision.py resnet101 resnet101.safetensors  [--pth FILE]

With --pth, the state dict is read from a local .pth file (e.g. torchvision's
vgg16-397923af.pth from ~/.cache/torch/hub/checkpoints); without, torchvision downloads the
IMAGENET1K_V1 weights. Needs `pip install torch safetensors` (and torchvision without --pth).

The tensor names are kept as torchvision writes them (`features.0.weight`, `layer1.0.conv1.weight`,
`classifier.0.weight`, ...); rwt maps them onto its encoders by name (see rwt::models::weights,
`Pretrained`). `num_batches_tracked` counters are dropped and every tensor is stored as a
contiguous float32. The file is written atomically (temporary file, then rename), and the
script checks that the names and shapes the rwt encoder needs are all there.
"""
import argparse
import os
import sys

# The tensors each rwt encoder needs, with their shapes: a check that the file is the model
# it claims to be (first and last convolution, and the fully connected layers FCN-8s reuses).
EXPECTED = {
    "vgg16": {"features.0.weight": (64, 3, 3, 3), "features.28.weight": (512, 512, 3, 3),
              "classifier.0.weight": (4096, 25088), "classifier.3.weight": (4096, 4096)},
    "vgg16_bn": {"features.0.weight": (64, 3, 3, 3), "features.1.running_var": (64,),
                 "features.40.weight": (512, 512, 3, 3), "features.41.running_mean": (512,)},
    "resnet101": {"conv1.weight": (64, 3, 7, 7), "layer3.22.conv3.weight": (1024, 256, 1, 1),
                  "layer4.2.bn3.running_var": (2048,)},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(EXPECTED))
    ap.add_argument("out", help="the .safetensors file to write")
    ap.add_argument("--pth", help="a local torchvision state dict instead of downloading")
    args = ap.parse_args()
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as e:
        sys.exit(f"convert_torchvision: {e}; run `pip install torch safetensors`")

    if args.pth:
        state = torch.load(args.pth, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    else:
        try:
            import torchvision
        except ImportError:
            sys.exit("convert_torchvision: torchvision is needed to download; or pass --pth FILE")
        state = getattr(torchvision.models, args.model)(weights="IMAGENET1K_V1").state_dict()

    tensors = {k: v.detach().to(torch.float32).contiguous()
               for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for name, shape in EXPECTED[args.model].items():
        if name not in tensors:
            sys.exit(f"convert_torchvision: {args.pth or args.model} has no tensor {name!r}: not a {args.model} checkpoint")
        if tuple(tensors[name].shape) != shape:
            sys.exit(f"convert_torchvision: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    tmp = args.out + ".tmp"
    save_file(tensors, tmp, metadata={"source": args.pth or f"torchvision {args.model} IMAGENET1K_V1"})
    os.replace(tmp, args.out)
    n = sum(t.numel() for t in tensors.values())
    print(f"{args.out}: {len(tensors)} tensors, {n:,} values, from {args.pth or args.model}")


if __name__ == "__main__":
    main()
