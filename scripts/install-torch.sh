#!/usr/bin/env bash
# Installs PyTorch into the given Python environment before the project itself,
# choosing the build that suits this machine:
#   - an NVIDIA GPU is present (nvidia-smi answers): the regular PyPI build, which is the CUDA one;
#   - macOS: the regular build (it carries MPS);
#   - otherwise (CPU-only Linux): a CPU-only build, which is ~200 MB instead of several GB.
#     A local CPU wheel is taken when pip can find one (pip's find-links), else PyTorch's CPU index.
# TORCH_SPEC overrides all of this, e.g. TORCH_SPEC="torch==2.9.1" make run.
# If torch is already importable in the environment, nothing is done.
set -euo pipefail
py=${1:?usage: install-torch.sh PYTHON}
if "$py" -c "import torch" >/dev/null 2>&1; then
  exit 0
fi
pip=("$py" -m pip install --disable-pip-version-check)
if [ -n "${TORCH_SPEC:-}" ]; then
  # shellcheck disable=SC2086
  exec "${pip[@]}" $TORCH_SPEC
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "install-torch: NVIDIA GPU found; installing the CUDA build of torch"
  exec "${pip[@]}" "torch>=2.4"
fi
if [ "$(uname -s)" = "Darwin" ]; then
  exec "${pip[@]}" "torch>=2.4"
fi
echo "install-torch: no NVIDIA GPU found; installing a CPU-only build of torch (set TORCH_SPEC to choose another)"
cpu_versions=(2.13.0 2.9.1 2.8.0)
for v in "${cpu_versions[@]}"; do
  # PyPI carries no +cpu builds, so this only succeeds where pip can see a local CPU wheel (find-links).
  if "${pip[@]}" -q "torch==$v+cpu" >/dev/null 2>&1; then
    echo "install-torch: installed torch $v+cpu from a local wheel"
    exit 0
  fi
done
exec "${pip[@]}" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple "torch>=2.4"
