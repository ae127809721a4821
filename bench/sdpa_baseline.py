#!/usr/bin/env python3
"""PyTorch dense causal attention at the shapes of bench/swa_cuda_bench.cpp, for comparison.

B = 1, HQ = 16 query heads over H = 1 KV head (K, V expanded to 16 heads, as a dense model would), D = 128, bf16,
L = 16K and 64K. Times torch.nn.functional.scaled_dot_product_attention(is_causal=True) forward and
forward+backward with CUDA events; TFLOP/s counts 4 * D per (query head, visible key) for the forward and 3.5 times
that for forward+backward, the convention of the C++ benchmark (causal: L (L + 1) / 2 visible pairs per head).
    python3 bench/sdpa_baseline.py
"""
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
    return times[len(times) // 2]  # median, ms


def main():
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'L':>7} {'fwd ms':>9} {'fwd TFLOP/s':>12} {'fwd+bwd ms':>11} {'fwd+bwd TFLOP/s':>16}")
    for L in (16384, 65536):
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
        t_f = timed(fwd, iters)
        t_fb = timed(fwd_bwd, iters)
        print(f"{L:>7} {t_f:>9.2f} {flops / t_f / 1e9:>12.1f} {t_fb:>11.2f} {3.5 * flops / t_fb / 1e9:>16.1f}")


if __name__ == "__main__":
    main()
