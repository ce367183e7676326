"""Sparse linear-blend skinning with an explicit backward (the hot path of the trainer's body model).

verts[b, v] = Σ_j w_vj · (A[b, j, :3, :3] · v_shaped[b, v] + A[b, j, :3, 3]), summed only over the
few joints with a non-zero weight (CSR rows `ptr`, `joint`, `weight`; the embedded model has 1.6 on
average, at most 6). A generic dense LBS builds a 4×4 matrix per (sample, vertex) and multiplies by
all 24 weights; on a CPU that traffic, not the arithmetic, is the cost.

On the CPU the forward and backward are numba kernels, parallel over the batch: every sample owns
its outputs and sums in a fixed order, so results do not depend on the thread count. Elsewhere
(CUDA) the same product runs as torch ops. numba is imported, and the kernels compiled or loaded
from its cache, on the first CPU call (`_cpu_kernels`), not when the body model is imported.
"""

from __future__ import annotations

import numpy as np
import torch

from lasor_shared.numba_threads import kernel_threads

_kernels = None


def _cpu_kernels():
    global _kernels
    if _kernels is None:
        from numba import njit, prange

        opts = dict(parallel=True, cache=True, nogil=True, error_model="numpy", boundscheck=False)

        @njit(**opts)
        def forward(A, v, ptr, joint, weight, out):
            B, V = v.shape[0], v.shape[1]
            for b in prange(B):
                for i in range(V):
                    x, y, z = v[b, i, 0], v[b, i, 1], v[b, i, 2]
                    o0 = o1 = o2 = np.float32(0.0)
                    for k in range(ptr[i], ptr[i + 1]):
                        j, w = joint[k], weight[k]
                        o0 += w * (A[b, j, 0, 0] * x + A[b, j, 0, 1] * y + A[b, j, 0, 2] * z + A[b, j, 0, 3])
                        o1 += w * (A[b, j, 1, 0] * x + A[b, j, 1, 1] * y + A[b, j, 1, 2] * z + A[b, j, 1, 3])
                        o2 += w * (A[b, j, 2, 0] * x + A[b, j, 2, 1] * y + A[b, j, 2, 2] * z + A[b, j, 2, 3])
                    out[b, i, 0] = o0
                    out[b, i, 1] = o1
                    out[b, i, 2] = o2

        @njit(**opts)
        def backward(A, v, ptr, joint, weight, g, gA, gv):
            B, V = v.shape[0], v.shape[1]
            for b in prange(B):
                for i in range(V):
                    x, y, z = v[b, i, 0], v[b, i, 1], v[b, i, 2]
                    gx = gy = gz = np.float32(0.0)
                    for k in range(ptr[i], ptr[i + 1]):
                        j, w = joint[k], weight[k]
                        for r in range(3):
                            gr = w * g[b, i, r]
                            gA[b, j, r, 0] += gr * x
                            gA[b, j, r, 1] += gr * y
                            gA[b, j, r, 2] += gr * z
                            gA[b, j, r, 3] += gr
                            gx += gr * A[b, j, r, 0]
                            gy += gr * A[b, j, r, 1]
                            gz += gr * A[b, j, r, 2]
                    gv[b, i, 0] = gx
                    gv[b, i, 1] = gy
                    gv[b, i, 2] = gz

        _kernels = (forward, backward)
    return _kernels


class _SkinCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, v, ptr, joint, weight):
        A = A.detach().contiguous()
        v = v.detach().contiguous()
        out = torch.empty_like(v)
        with kernel_threads():
            _cpu_kernels()[0](A.numpy(), v.numpy(), ptr.numpy(), joint.numpy(), weight.numpy(), out.numpy())
        ctx.save_for_backward(A, v, ptr, joint, weight)
        return out

    @staticmethod
    def backward(ctx, g):
        A, v, ptr, joint, weight = ctx.saved_tensors
        gA = torch.zeros_like(A)
        gv = torch.empty_like(v)
        with kernel_threads():
            _cpu_kernels()[1](A.numpy(), v.numpy(), ptr.numpy(), joint.numpy(), weight.numpy(),
                              g.detach().float().contiguous().numpy(), gA.numpy(), gv.numpy())
        return gA, gv, None, None, None


def skin(A: torch.Tensor, v: torch.Tensor, ptr: torch.Tensor, joint: torch.Tensor, weight: torch.Tensor):
    """A (B,J,4,4) joint transforms, v (B,V,3) rest-pose vertices, CSR weights → posed vertices (B,V,3)."""
    A = A[:, :, :3, :]
    if A.device.type == "cpu" and A.dtype == torch.float32 and v.dtype == torch.float32:
        return _SkinCPU.apply(A, v, ptr, joint, weight)
    B, V = v.shape[:2]
    rows = torch.repeat_interleave(torch.arange(V, device=v.device), ptr[1:] - ptr[:-1])
    W = torch.sparse_coo_tensor(torch.stack([rows, joint.long()]), weight, (V, A.shape[1]), is_coalesced=True)
    T = torch.sparse.mm(W, A.transpose(0, 1).reshape(A.shape[1], B * 12)).reshape(V, B, 3, 4).transpose(0, 1)
    return (T[..., :3] @ v[..., None])[..., 0] + T[..., 3]
