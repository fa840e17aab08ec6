"""The Triton fused kernel against the reference time loop.

Every test runs twice: ``interp`` runs the kernels on CPU tensors in Triton's interpreter
(``backend="triton_interpret"`` / ``TritonKernel(interpret=True)``: an explicit choice, no environment
variable; the kernels are built once per mode, so compiled GPU kernels in the same process are unaffected),
``cuda`` runs the compiled kernels on a GPU (skipped without one). The interpreter executes the same kernel
source as the GPU, op by op in NumPy. Spikes must be identical to
the reference loop on the same device, gradients within tolerance (tight in float64).
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

import spikeforge as sf
from spikeforge._core.codes import (
    NONE,
    SG_ATAN,
    SG_CUSTOM,
    SG_FAST_SIGMOID,
    SG_STRAIGHT_THROUGH,
    SG_TRIANGLE,
    SUBTRACT,
    TO_VALUE,
)
from spikeforge.backends import BACKEND_TABLE, BACKENDS, select_kernel
from spikeforge.backends.spec import fused_run
from spikeforge.backends.triton_kernel import _LAUNCH_OPTIONS, TritonKernel, kernels, triton_installed
from spikeforge.surrogate import get_surrogate, list_surrogates

from _fused_cases import NEURONS, SCALE

pytestmark = pytest.mark.skipif(not triton_installed(), reason="needs triton: pip install 'spikeforge[gpu]'")
HAS_CUDA = torch.cuda.is_available()



@pytest.fixture(params=["interp", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"))])
def device(request: pytest.FixtureRequest) -> str:
    return "cpu" if request.param == "interp" else "cuda"


def _backend(device: str) -> str:
    """The backend name that runs the Triton kernels on ``device``: the interpreter on the CPU."""
    return "triton_interpret" if device == "cpu" else "triton"


def _kernel(device: str) -> TritonKernel:
    return TritonKernel(interpret=device == "cpu")


def _grads(m: torch.nn.Module, x: torch.Tensor, s0: tuple, w: torch.Tensor) -> tuple:
    xx = x.clone().requires_grad_()
    ss = type(s0)(*(t.clone().requires_grad_() for t in s0))
    z, st = m(xx, ss)
    loss = (z * w).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(st))
    return z.detach(), [t.detach() for t in st], torch.autograd.grad(loss, [xx, *ss])


def _compare(name: str, reset: str, dtype: torch.dtype, device: str, combos: list[tuple[bool, str]], T: int, shape: tuple[int, ...]) -> None:
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-4}
    g = torch.Generator().manual_seed(sum(map(ord, name + reset)))
    x = (torch.rand(T, *shape, generator=g, dtype=torch.float64) * SCALE[name]).to(dtype).to(device)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype).to(device)
    for detach, sg_name in combos:
        sg = get_surrogate(sg_name)
        ref = NEURONS[name](reset=reset, detach_reset=detach, surrogate=sg, backend="reference").to(dtype)
        tri = NEURONS[name](reset=reset, detach_reset=detach, surrogate=sg, backend=_backend(device)).to(dtype)
        assert tri.fused_spec() is not None and isinstance(select_kernel(_backend(device), x), TritonKernel)
        s0 = ref.init_state(x[0])
        s0 = type(s0)(*(t + 0.1 * torch.rand(t.shape, generator=g, dtype=torch.float64).to(dtype).to(device) for t in s0))
        z_r, s_r, g_r = _grads(ref, x, s0, w)
        z_t, s_t, g_t = _grads(tri, x, s0, w)
        assert z_r.sum() > 0, "the case should spike"
        assert torch.equal(z_r, z_t), (detach, sg_name)
        for a, b in zip(s_r, s_t):
            assert torch.equal(a, b), (detach, sg_name)
        for a, b in zip(g_r, g_t):
            where = f"{name} {reset} detach={detach} {sg_name}"
            torch.testing.assert_close(b, a, **tol, msg=lambda m, where=where: f"{where}: {m}")


def _interp_combos(name: str, reset: str) -> list[tuple[bool, str]]:
    """The interpreter is slow: every surrogate once per case, detach alternating and shifted across cases."""
    k = sorted(NEURONS).index(name) + ["to_value", "subtract", "none"].index(reset)
    return [((k + i) % 2 == 0, sg) for i, sg in enumerate(list_surrogates())]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("reset", ["to_value", "subtract", "none"])
def test_triton_equals_reference(device: str, dtype: torch.dtype, name: str, reset: str) -> None:
    if device == "cpu":
        _compare(name, reset, dtype, device, _interp_combos(name, reset), T=20, shape=(2, 5))
    else:
        combos = list(itertools.product((True, False), list_surrogates()))
        _compare(name, reset, dtype, device, combos, T=60, shape=(3, 300))  # 900 elements: 4 programs, a masked tail


def test_interpreter_matrix_covers_every_pair() -> None:
    # the reduced interpreter matrix still visits every (detach, surrogate) pair for every neuron and reset
    seen = {(name, d, sg) for name, r in itertools.product(NEURONS, ["to_value", "subtract", "none"]) for d, sg in _interp_combos(name, r)}
    assert seen == set(itertools.product(NEURONS, (True, False), list_surrogates()))
    seen_r = {(r, d, sg) for name, r in itertools.product(NEURONS, ["to_value", "subtract", "none"]) for d, sg in _interp_combos(name, r)}
    assert seen_r == set(itertools.product(["to_value", "subtract", "none"], (True, False), list_surrogates()))


def test_threshold_equality_edge(device: str) -> None:
    # 0.5 + 0.5 == 1.0 exactly: v == v_th must not spike
    x = torch.full((4, 1, 2), 0.5, dtype=torch.float32, device=device)
    z, _ = sf.IF(v_th=1.0, backend=_backend(device))(x)
    assert z[:, 0, 0].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_no_fma_contraction_at_threshold(device: str) -> None:
    # v' = 0 + beta v + g u lands within a few ulp of v_th = 1: one fused multiply-add (one rounding instead
    # of two) would flip some of these spikes. The reference's two roundings must be reproduced exactly.
    beta, gain = 0.9, 0.3
    g = torch.Generator().manual_seed(7)
    v0 = torch.rand(512, generator=g).repeat_interleave(33)  # float32
    base = ((1 - (torch.tensor(beta) * v0)) / torch.tensor(gain)).float()
    steps = torch.arange(-16, 17).repeat(512)
    u = base + steps * torch.finfo(torch.float32).eps * base.abs()  # neighbours of the threshold input
    m = sf.LIF(beta=beta, r=gain, input_scaling="none", reset="subtract")
    spec = m.fused_spec()
    vp_ref = 0.0 + spec.beta * (v0 - 0.0) + spec.gain * u  # the reference step's op order, float32 eager
    z_ref = (vp_ref - spec.v_th > 0).float()
    b32 = torch.tensor(spec.beta, dtype=torch.float32).double()
    g32 = torch.tensor(spec.gain, dtype=torch.float32).double()
    fma = ((b32 * v0.double()).float().double() + g32 * u.double()).float()  # fma(gain, u, round(beta v))
    assert ((fma - spec.v_th > 0).float() != z_ref).sum() > 0, "the edge set must contain FMA-sensitive inputs"
    z, v_t, _, _ = fused_run(u[None].to(device), v0.to(device), None, None, spec, _kernel(device), m.surrogate)
    assert torch.equal(z[0].cpu(), z_ref)
    assert torch.equal(v_t.cpu(), vp_ref - z_ref * (spec.v_th - spec.v_reset))


def test_long_sequence(device: str) -> None:
    g = torch.Generator().manual_seed(0)
    T, shape = (600, (2, 5)) if device == "cpu" else (3000, (4, 1000))
    x = (torch.rand(T, *shape, generator=g, dtype=torch.float64) * 3).to(device).requires_grad_()
    outs = []
    for b in ("reference", _backend(device)):
        z, st = sf.LIF(20.0, backend=b, surrogate="atan")(x)
        (gx,) = torch.autograd.grad(z.sum() + st.v.sum(), x)
        outs.append((z, st.v, gx))
    assert outs[0][0].sum() > 0
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    torch.testing.assert_close(outs[1][2], outs[0][2], rtol=1e-9, atol=1e-9)


def test_expanded_and_strided_grad_output(device: str) -> None:
    # z.sum() hands the backward a stride-0 gz; a transposed loss hands it a non-contiguous one
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(12, 3, 7, generator=g, dtype=torch.float64) * 2).to(device).requires_grad_()
    w = torch.randn(3 * 7, 12, generator=g, dtype=torch.float64).to(device)
    m = sf.CubaLIF(5.0, 2.0, backend=_backend(device))
    (g_sum,) = torch.autograd.grad(m(x)[0].sum(), x)
    (g_ones,) = torch.autograd.grad((m(x)[0] * torch.ones(12, 3, 7, dtype=x.dtype, device=device)).sum(), x)
    assert torch.equal(g_sum, g_ones) and g_sum.abs().sum() > 0
    (g_t,) = torch.autograd.grad((m(x)[0].reshape(12, 21).t() * w).sum(), x)
    (g_c,) = torch.autograd.grad((m(x)[0] * w.t().contiguous().reshape(12, 3, 7)).sum(), x)
    torch.testing.assert_close(g_t, g_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(device: str, dtype: torch.dtype) -> None:
    # float16/bfloat16 are carried in float32 inside the kernel: identical to the float32 kernel on the upcast input
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(16, 2, 6, generator=g) * 3).to(dtype).to(device)
    m = sf.ALIF(10.0, 30.0, 0.7, detach_reset=False, backend=_backend(device))
    outs = []
    for xx in (x.clone().requires_grad_(), x.float().requires_grad_()):
        z, st = m(xx)
        (gx,) = torch.autograd.grad(z.sum() + st.v.sum(), xx)
        outs.append((z, st, gx))
    (z_h, st_h, g_h), (z_f, st_f, g_f) = outs
    assert z_h.dtype == dtype and g_h.dtype == dtype and st_h.v.dtype == dtype
    assert z_f.sum() > 0 and torch.equal(z_h.float(), z_f)
    assert torch.equal(st_h.v, st_f.v.to(dtype)) and torch.equal(st_h.a, st_f.a.to(dtype))
    assert torch.equal(g_h, g_f.to(dtype))


def test_empty_neurons(device: str) -> None:
    x = torch.zeros(5, 0, device=device)
    spec = sf.LIF().fused_spec()
    out = _kernel(device).forward(x, x[0], x[0], x[0], spec)
    assert out[0].shape == (5, 0) and out[1].shape == (5, 0) and all(t.shape == (0,) for t in out[3:])


def test_bad_dtype_rejected(device: str) -> None:
    x = torch.zeros(3, 2, dtype=torch.int32, device=device)
    with pytest.raises(TypeError, match="cast the input"):
        _kernel(device).forward(x, x[0], x[0], x[0], sf.LIF().fused_spec())
    with pytest.raises(ValueError, match="backend='auto'"):
        select_kernel(_backend(device), x)


def test_dispatch_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # the compiled kernels never take CPU tensors, whatever TRITON_INTERPRET says (Triton's own variable)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert "triton" in BACKENDS and "triton_interpret" in BACKENDS
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"CUDA tensors.*backend='auto'.*triton_interpret"):
        select_kernel("triton", x)
    with pytest.raises(ValueError, match=r"\.cuda\(\)"):
        TritonKernel().forward(x, x[0], x[0], x[0], sf.LIF().fused_spec())
    with pytest.raises(ValueError, match="CUDA tensors"):
        sf.LIF(backend="triton")(torch.zeros(2, 1, 3))
    for name in ("triton", "triton_interpret"):
        monkeypatch.setitem(BACKEND_TABLE, name, dataclasses.replace(BACKEND_TABLE[name], installed=lambda: False))
    with pytest.raises(ImportError, match=r"spikeforge\[gpu\]"):
        select_kernel("triton", x)
    with pytest.raises(ImportError, match="pip install triton"):
        select_kernel("triton_interpret", x)


def test_auto_never_interprets_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert not isinstance(select_kernel("auto", torch.zeros(2, 3)), TritonKernel)
    kernel = select_kernel("triton_interpret", torch.zeros(2, 3))
    assert isinstance(kernel, TritonKernel) and kernel.interpret


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_interpreter_rejects_cuda_tensors() -> None:
    with pytest.raises(ValueError, match=r"\.cpu\(\)"):
        select_kernel("triton_interpret", torch.zeros(2, 3, device="cuda"))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_auto_picks_triton_on_cuda() -> None:
    x = torch.zeros(2, 3, device="cuda")
    assert isinstance(select_kernel("auto", x), TritonKernel)
    assert not isinstance(select_kernel("auto", x.half()), TritonKernel)  # spikes could differ from the reference loop
    assert not isinstance(select_kernel("auto", x.cpu()), TritonKernel)


_STORAGE_PTRS = {"x_ptr", "v0_ptr", "i0_ptr", "a0_ptr", "z_ptr", "gz_ptr", "gvT_ptr", "giT_ptr", "gaT_ptr"}


def _ptx(kernel: object, storage: str, compute: str, fusion: bool, **constexprs: object) -> str:
    """Compile the real (non-interpreted) kernel for an H100/H200 (sm_90) without a GPU and return its PTX."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(kernel.arg_names)  # type: ignore[attr-defined]
    sig = {n: "constexpr" if n in constexprs else (f"*{storage}" if n in _STORAGE_PTRS else f"*{compute}") if n.endswith("_ptr") else "i32" for n in names}
    src = ASTSource(fn=kernel, signature=sig, constexprs={(names.index(k),): v for k, v in constexprs.items()})
    options = {**_LAUNCH_OPTIONS, **({"enable_fp_fusion": True} if fusion else {})}  # the options every launch uses
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


def test_gpu_code_compiles_without_fma_contraction() -> None:
    # the compiled path (not the interpreter) lowers to PTX here, no GPU needed: no fused multiply-adds
    # may appear in our arithmetic (they would change float32 spikes), IEEE division in the surrogates
    import re

    pytest.importorskip("triton.backends.nvidia.compiler")
    fwd, bwd = kernels(interpret=False)
    for storage, compute in (("fp32", "fp32"), ("fp64", "fp64"), ("bf16", "fp32")):
        for reset in (TO_VALUE, SUBTRACT, NONE):
            ptx = _ptx(fwd, storage, compute, False, RESET=reset, HAS_SYN=True, HAS_ADAPT=True, IS_IF=False, BLOCK=256)
            assert not re.search(r"\bfma\.", ptx), (storage, reset)
    for sg in (SG_CUSTOM, SG_FAST_SIGMOID, SG_TRIANGLE, SG_ATAN, SG_STRAIGHT_THROUGH):
        ptx = _ptx(bwd, "fp32", "fp32", False, RESET=TO_VALUE, DETACH=False, HAS_SYN=True, HAS_ADAPT=True, SG=sg,
                   FP64=False, BLOCK=256)
        assert not re.search(r"\bfma\.", ptx), sg
        assert sg in (SG_CUSTOM, SG_STRAIGHT_THROUGH) or "div.rn.f32" in ptx
    # control: with Triton's default (fusion on) the same backward does contract, so the check above can fail
    ptx = _ptx(bwd, "fp32", "fp32", True, RESET=TO_VALUE, DETACH=False, HAS_SYN=True, HAS_ADAPT=True,
               SG=SG_FAST_SIGMOID, FP64=False, BLOCK=256)
    assert re.search(r"\bfma\.", ptx)
