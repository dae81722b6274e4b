#!/usr/bin/env bash
# Set up sdrest in a virtual environment and create the models/ layout. Safe to re-run.
#
#   ./install.sh                 CPU build into ./.venv
#   ./install.sh --cuda          CUDA build (needs the CUDA toolkit); also --vulkan, --metal,
#                                --hipblas, --opencl, --sycl
#   ./install.sh --venv DIR --models-dir DIR --dev
#   ./install.sh --pam           also install /etc/pam.d/sdrest (for --auth pam; needs root)
#
# Extra CMake options pass through CMAKE_ARGS, e.g. CMAKE_ARGS="-DGGML_NATIVE=OFF".
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
models_dir=models
extras=""
backend_args=""
pam=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) backend_args="$backend_args -DSD_CUDA=ON" ;;
        --vulkan) backend_args="$backend_args -DSD_VULKAN=ON" ;;
        --metal) backend_args="$backend_args -DSD_METAL=ON" ;;
        --hipblas) backend_args="$backend_args -DSD_HIPBLAS=ON" ;;
        --opencl) backend_args="$backend_args -DSD_OPENCL=ON" ;;
        --sycl) backend_args="$backend_args -DSD_SYCL=ON" ;;
        --venv) venv="$2"; shift ;;
        --models-dir) models_dir="$2"; shift ;;
        --dev) extras="[test]" ;;
        --pam) pam=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating virtual environment $venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip

echo "==> building and installing sdrest${backend_args:+ with$backend_args} (the native build takes a few minutes)"
CMAKE_ARGS="${CMAKE_ARGS:-}$backend_args" "$venv/bin/python" -m pip install "$PWD$extras"

echo "==> model folders under $models_dir"
for folder in checkpoints lora vae presets prompts neg_prompts taesd esrgan controlnet upscaler embeddings; do
    mkdir -p "$models_dir/$folder"
done
if [ ! -f "$models_dir/README.md" ] && [ -f models/README.md ]; then
    cp models/README.md "$models_dir/README.md"
fi

if [ "$pam" = 1 ]; then
    if [ -e /etc/pam.d/sdrest ]; then
        echo "==> /etc/pam.d/sdrest exists; left as it is"
    else
        echo "==> installing /etc/pam.d/sdrest (the system's usual password stack)"
        printf '%s\n' "# sdrest: used by 'sdrest serve --auth pam' (--pam-service sdrest)" \
            "@include common-auth" "@include common-account" > /etc/pam.d/sdrest
    fi
fi

echo "==> done. Check the install:  $venv/bin/sdrest selftest"
