#!/usr/bin/env bash
# One prepared GPU check for a session that is lent a CUDA machine (nothing here runs in CI).
#
# What it does, in the repository root on the GPU machine:
#   1. the Triton kernel tests on the real GPU (tests/backends/test_triton_kernel.py: every neuron x
#      reset x surrogate x dtype against the reference loop, long sequences, FMA/threshold edges);
#   2. benchmarks/gpu_on.py: the Open Neuromorphic config (Linear 16384 -> 16384 + LIF, B = 16, T = 500)
#      for spikeforge (triton, torch kernels) and SpikingJelly, results to $OUT (or /tmp) as JSON + log.
#
# The lent machines (see .library/device) have python3 with a CUDA torch, triton, numba and pytest but
# no SpikingJelly and no network. Before calling, on the CPU machine, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl spikingjelly==2.0.0
# and name `.whl` in the run's carry. Then run:  bash benchmarks/gpu_check.sh
set -uo pipefail
out="${OUT:-/tmp}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/backends/test_triton_kernel.py 2>&1 | tee "$out/triton_tests.log" | tail -5
timeout 300 python3 benchmarks/gpu_on.py --out "$out/gpu_on.json" 2>&1 | tee "$out/gpu_on.log" | tail -40
