#!/usr/bin/env bash
# Gather here what benchmarks/gpu_check.sh needs on the GPU machine, which cannot download:
#   .gpu-carry/whl/               wheels (CPython 3.12, manylinux x86-64) of sdrest's dependencies
#                                 that the machine's image lacks (see /work/.library/device/KINDS.md)
#   .gpu-carry/cache/downloads/   the pinned stable-diffusion.cpp source, in the layout of
#                                 native/cmake/FetchSdCpp.cmake's cache (SDREST_CACHE_DIR)
# .gpu-carry/ is kept out of git (.gitignore). About 25 MB: the device tool carries 64 MiB.
#
# Then, with the device tool (one run builds, the next, at once while the machine is warm, tests):
#   run(command="bash benchmarks/gpu_check.sh build", carry=[".gpu-carry"], timeout_s=600)
#   run(command="bash benchmarks/gpu_check.sh test", carry=[".gpu-carry"], timeout_s=600)
#
# A CUDA build takes over 8 minutes on the GPU machine's 16 cores, more than half of a session's
# device time. With --prebuilt, the libraries built HERE travel instead of the source (xz, about
# 50 MB): a CUDA build (CMAKE_ARGS="-DSD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF
# -DSDREST_BUILD_EXAMPLES=ON", GGML_NATIVE off because the other machine's processor may lack this
# one's instructions) with its sd-cli and sd-server, and a CPU build configured the same way:
#   bash benchmarks/gpu_prepare.sh --prebuilt CUDA_BUILD_DIR CPU_BUILD_DIR
# Then gpu_check.sh's phases start with `prebuilt` instead of `build`. The wheels of the
# benchmark's PyTorch side (diffusers; the machine has torch) come along for vs_torch.py.
set -euo pipefail
cd "$(dirname "$0")/.."
prebuilt_cuda= prebuilt_cpu=
if [ "${1:-}" = --prebuilt ]; then
    prebuilt_cuda=$(readlink -f "$2") prebuilt_cpu=$(readlink -f "$3")
fi

carry=.gpu-carry
python=${PYTHON:-python3}
# Missing from the GPU image (it has numpy, pillow, requests, pyyaml, werkzeug, jinja2, click,
# pytest, nvidia-ml-py, prometheus-client, scikit-build-core, cmake and ninja).
missing=(cffi pycparser flask blinker itsdangerous waitress flask-jwt-extended pyjwt python-pam
         pydantic pydantic-core annotated-types typing-inspection flask-cors)

grep -qx '/.gpu-carry/' .git/info/exclude 2>/dev/null || echo '/.gpu-carry/' >> .git/info/exclude
rm -rf "$carry/whl"
mkdir -p "$carry/whl" "$carry/cache/downloads"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$carry/whl" "${missing[@]}"

if [ -n "$prebuilt_cuda" ]; then
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$carry/whl" diffusers importlib-metadata
    rm -rf "$carry/prebuilt" "$carry/cache"
    for kind in cuda cpu; do
        build=$prebuilt_cuda; [ $kind = cpu ] && build=$prebuilt_cpu
        grep -q '^GGML_NATIVE:BOOL=OFF' "$build/CMakeCache.txt" ||
            { echo "gpu_prepare.sh: $build is not configured with -DGGML_NATIVE=OFF" >&2; exit 1; }
        mkdir -p "$carry/prebuilt/$kind"
        strip --strip-unneeded -o "$carry/prebuilt/$kind/libstable-diffusion.so" "$build/bin/libstable-diffusion.so"
        xz -T0 -6 "$carry/prebuilt/$kind/libstable-diffusion.so"
        cp "$build/build_info.json" "$carry/prebuilt/$kind/"
    done
    grep -q '"cuda"' "$carry/prebuilt/cuda/build_info.json" || { echo "gpu_prepare.sh: $prebuilt_cuda is no CUDA build" >&2; exit 1; }
    mkdir -p "$carry/prebuilt/bin" "$carry/prebuilt/include"
    cp "$prebuilt_cuda/bin/sd-cli" "$prebuilt_cuda/bin/sd-server" "$carry/prebuilt/bin/"
    xz -T0 -6 "$carry/prebuilt/bin/sd-cli" "$carry/prebuilt/bin/sd-server"
    header=$(find "${SDREST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdrest}/src" -path '*patched*/include/stable-diffusion.h' | head -n 1)
    [ -n "$header" ] || { echo "gpu_prepare.sh: no patched source in the cache: build sdrest here once" >&2; exit 1; }
    cp "$header" "$carry/prebuilt/include/"
    du -sh "$carry"
    echo "==> ready: run benchmarks/gpu_check.sh prebuilt ... on the GPU machine with carry=[\"$carry\"]"
    exit 0
fi

# The pinned source (its sha256 is checked again by the build there).
name=stable_diffusion_cpp_python-$(sed -n 's/^set(SDREST_SDIST_VERSION "\([^"]*\)".*/\1/p' native/cmake/FetchSdCpp.cmake).tar.gz
source="${SDREST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdrest}/downloads/$name"
if [ ! -f "$source" ]; then
    echo "gpu_prepare.sh: $source is missing: build sdrest here once (pip install .) to download it" >&2
    exit 1
fi
cp "$source" "$carry/cache/downloads/$name"
ls -l "$carry/whl" "$carry/cache/downloads"
du -sh "$carry"
echo "==> ready: run benchmarks/gpu_check.sh build, then test, on the GPU machine with carry=[\"$carry\"]"
