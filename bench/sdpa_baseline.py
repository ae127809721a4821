#!/usr/bin/env python3
"""PyTorch dense causal attention at the shape of `hsa bench kernels`, for comparison (docs/benchmarks.md).

B = 1, HQ = 16 query heads over H = 1 KV head (K, V expanded to 16 heads, as a dense model would), D = 128, bf16,
L = 16K and 64K by default. Times torch.nn.functional.scaled_dot_product_attention(is_causal=True) forward and
forward+backward with CUDA events (median and min); TFLOP/s counts 4 * D per (query head, visible key) for the
forward and 3.5 times that for forward+backward, the convention of the C++ benchmark (causal: L (L + 1) / 2
visible pairs per head). --out writes JSON shaped like hsa bench kernels': {device, commit, command, results}.
    python3 bench/sdpa_baseline.py [--lengths 16384,65536] [--out bench/results/sdpa-<gpu>.json]
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

HQ, D = 16, 128


def timed(fn, iters):
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2], times[0]  # median, min (ms)


def commit():
    if os.environ.get("HSA_COMMIT"):
        return os.environ["HSA_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def result(kernel, L, iters, median, low, flops):
    return {"kernel": kernel, "L": L, "status": "ok", "repeats": iters, "median_ms": median, "min_ms": low,
            "flops": flops, "tflops": flops / median / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="16384,65536", help="comma-separated sequence lengths")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    dev = torch.device("cuda")
    device = torch.cuda.get_device_name(0)
    print(f"device: {device}, torch {torch.__version__}")
    print(f"{'L':>7} {'fwd ms':>9} {'fwd TFLOP/s':>12} {'fwd+bwd ms':>11} {'fwd+bwd TFLOP/s':>16}")
    results = []
    for L in (int(x) for x in args.lengths.split(",") if x.strip()):
        q = torch.randn(1, HQ, L, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
        k1 = torch.randn(1, 1, L, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
        v1 = torch.randn(1, 1, L, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
        dout = torch.randn(1, HQ, L, D, device=dev, dtype=torch.bfloat16)

        def fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k1.expand(1, HQ, L, D), v1.expand(1, HQ, L, D), is_causal=True)

        def fwd_bwd():
            out = F.scaled_dot_product_attention(q, k1.expand(1, HQ, L, D), v1.expand(1, HQ, L, D), is_causal=True)
            out.backward(dout)

        iters = 10 if L <= 16384 else 4
        flops = 4.0 * D * HQ * L * (L + 1) / 2
        t_f, min_f = timed(fwd, iters)
        t_fb, min_fb = timed(fwd_bwd, iters)
        print(f"{L:>7} {t_f:>9.2f} {flops / t_f / 1e9:>12.1f} {t_fb:>11.2f} {3.5 * flops / t_fb / 1e9:>16.1f}")
        results.append(result("sdpa_fwd", L, iters, t_f, min_f, flops))
        results.append(result("sdpa_fwd_bwd", L, iters, t_fb, min_fb, 3.5 * flops))
        del q, k1, v1, dout
        torch.cuda.empty_cache()
    if args.out:
        record = {"device": device, "commit": commit(), "command": " ".join([sys.executable] + sys.argv),
                  "torch": torch.__version__, "results": results}
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
