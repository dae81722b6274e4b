#!/usr/bin/env bash
# The GPU proof, on a machine with an NVIDIA GPU and no internet (the device machine: 16 cores,
# an H200, CUDA 13 driver; Python 3.12 with numpy, pillow, pytest, nvidia-ml-py, cmake, ninja).
# Prepare here first: bash benchmarks/gpu_prepare.sh (wheels and the pinned source in .gpu-carry/).
#
#   bash benchmarks/gpu_check.sh build   CUDA build installed the way pip installs it (pip
#                                        install --target, CMAKE_ARGS=-DSD_CUDA=ON, sm_90) and a
#                                        CPU build of the same source for the comparisons
#   bash benchmarks/gpu_check.sh test    pytest -m gpu (tests/test_gpus.py) on the CUDA build, the
#                                        loader and out_of_memory tests, then benchmarks/gpu_bench.py
#   bash benchmarks/gpu_check.sh extra   if device time is left: benchmarks/overhead.py (engine vs
#                                        sd-cli) and benchmarks/server.py (HTTP vs engine) on CUDA
#   bash benchmarks/gpu_check.sh all     build and test (needs more than one 10-minute device call)
#
# Results go to $OUT (the device tool brings that folder back): build.log, build_info.json,
# readelf.txt, nvidia-smi.txt, version.txt, pytest.log, junit.xml, bench.log, gpu_bench.json
# (extra: overhead.log, server.log). At most 8 files come back: build and test are separate calls.
# Build outputs stay in build/gpu-* and /tmp/sdrest-gpu between calls while the machine is warm.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
phase=${1:-all}
OUT=${OUT:-$repo/build/gpu-check-out}
mkdir -p "$OUT"
carry=$repo/.gpu-carry
site=/tmp/sdrest-gpu
python=${PYTHON:-python3}
jobs=$(nproc)
export SDREST_CACHE_DIR=$carry/cache   # the pinned source, carried (nothing can be downloaded there)
export PYTHONUNBUFFERED=1

[ -d "$carry/whl" ] || { echo "gpu_check.sh: no $carry/whl: run benchmarks/gpu_prepare.sh here first" >&2; exit 1; }
# Into the machine's own Python (it is thrown away afterwards): tests start child interpreters
# with a PYTHONPATH of their own, which must still find cffi, flask, pydantic...
if ! "$python" -c 'import cffi, flask, flask_cors, flask_jwt_extended, pam, pydantic, waitress' 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile "$carry"/whl/*.whl || exit 1
fi
export PYTHONPATH=$site/sdrest
export PATH=$site/sdrest/bin:$PATH

# The CUDA toolkit to build with: native/cmake/SdrestCudaToolkit.cmake's choice, or, where the
# system's toolkit lacks cuBLAS (as this project's machine images do) and NVIDIA's wheels
# installed there lack nvcc, the two together: the system's toolkit plus the wheels' cuBLAS.
cuda_args() {
    local choice wheels merged system
    choice=$(cmake -P native/cmake/SdrestCudaToolkit.cmake 2>/dev/null)
    if [ "${choice%% *}" = system ]; then
        echo "-DSDREST_CUDA_TOOLKIT=system"; return
    fi
    wheels=$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/nvidia/cu13
    if [ -x "$wheels/bin/nvcc" ] && [ -f "$wheels/include/cublas_v2.h" ]; then
        echo "-DSDREST_CUDA_TOOLKIT=wheels -DSDREST_CUDA_WHEEL_ROOT=$wheels"; return
    fi
    merged=/tmp/sdrest-cuda-merged
    system=$(readlink -f "${CUDA_HOME:-/usr/local/cuda}")
    rm -rf "$merged" && mkdir -p "$merged"
    cp -rs "$system/." "$merged/"
    # nvcc finds its headers and tools from where its binary really is: a copy, not a link.
    rm -rf "$merged/bin" && cp -rL "$system/bin" "$merged/bin"
    # Headers and libraries as folders of links of our own (never a link into the system's
    # folder, which adding cuBLAS would write into), plus the wheels' cuBLAS.
    rm -rf "$merged/include" "$merged/lib" "$merged/lib64"
    mkdir "$merged/include" "$merged/lib"
    cp -rs "$(readlink -f "$system/include")/." "$merged/include/"
    cp -rs "$(readlink -f "$system/lib64")/." "$merged/lib/"
    ln -sf "$wheels"/include/cublas*.h "$merged/include/"
    ln -sf "$wheels"/lib/libcublas* "$merged/lib/"
    local target=$merged/targets/$(uname -m)-linux  # where the system's nvcc.profile looks
    if [ -e "$target" ]; then
        rm -rf "$target/include" "$target/lib"
        ln -s ../../include "$target/include" && ln -s ../../lib "$target/lib"
    fi
    echo "-DSDREST_CUDA_TOOLKIT=wheels -DSDREST_CUDA_WHEEL_ROOT=$merged"
}

build() {
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
    command -v patch >/dev/null || command -v git >/dev/null ||
        { echo "gpu_check.sh: the build applies native/patches with patch or git; neither is here" >&2; return 1; }
    local args start
    args="-DSD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 $(cuda_args)"
    echo "==> CUDA build: CMAKE_ARGS=$args ($jobs jobs)" | tee "$OUT/build.log"
    start=$(date +%s)
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL=$jobs "$python" -m pip install --no-build-isolation --no-deps \
        --no-compile --upgrade --target "$site/sdrest" --config-settings=build-dir=build/gpu-cuda . \
        >> "$OUT/build.log" 2>&1 || { tail -n 60 "$OUT/build.log"; return 1; }
    echo "==> CUDA build took $(( $(date +%s) - start )) s" | tee -a "$OUT/build.log"
    # As in a venv with sdrest[cuda]: NVIDIA's runtime wheels beside sdrest, where the library's
    # RPATH ($ORIGIN/../../../nvidia/cu13/lib) looks (the image has them in its own site-packages).
    local nvidia
    nvidia=$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/nvidia
    if [ -d "$nvidia/cu13/lib" ]; then
        ln -sfn "$nvidia" "$site/sdrest/nvidia"
    else
        echo "note: no $nvidia/cu13/lib: the runtime comes from LD_LIBRARY_PATH=/tmp/sdrest-cuda-merged/lib" | tee -a "$OUT/build.log"
    fi
    cp "$site/sdrest/sdrest/_native/build_info.json" "$OUT/build_info.json"
    readelf -d "$site/sdrest/sdrest/_native/lib/libstable-diffusion.so" | grep -E 'NEEDED|RPATH|RUNPATH' > "$OUT/readelf.txt"
    start=$(date +%s)
    { cmake -S . -B build/gpu-cpu -G Ninja -DCMAKE_BUILD_TYPE=Release &&
      cmake --build build/gpu-cpu --target stable-diffusion -j "$jobs"; } >> "$OUT/build.log" 2>&1 ||
        { tail -n 40 "$OUT/build.log"; return 1; }
    echo "==> CPU build took $(( $(date +%s) - start )) s" | tee -a "$OUT/build.log"
}

run_tests() {
    local cuda_lib cpu_lib status=0
    cuda_lib=$site/sdrest/sdrest/_native/lib/libstable-diffusion.so
    cpu_lib=$(find "$repo/build/gpu-cpu" -name libstable-diffusion.so -type f -print -quit)
    [ -f "$cuda_lib" ] && [ -n "$cpu_lib" ] || { echo "gpu_check.sh: run the build phase first" >&2; return 1; }
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
    [ -e "$site/sdrest/nvidia" ] || export LD_LIBRARY_PATH=/tmp/sdrest-cuda-merged/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    sdrest --version | tee "$OUT/version.txt"
    # From outside the checkout, so that `import sdrest` is the installed CUDA build, not the source.
    (cd /tmp && SDREST_CPU_LIB=$cpu_lib "$python" -m pytest -p no:cacheprovider -rA -v -s \
        --rootdir "$repo" -c "$repo/pyproject.toml" --junitxml "$OUT/junit.xml" \
        "$repo/tests/test_gpus.py" "$repo/tests/_native/test_loader.py" "$repo/tests/_native/test_cudart.py" \
        "$repo/tests/worker/test_out_of_memory.py") 2>&1 | tee "$OUT/pytest.log" || status=1
    "$python" benchmarks/gpu_bench.py "$cuda_lib" "$cpu_lib" --threads "$jobs" --rounds 1 --json "$OUT/gpu_bench.json" \
        2>&1 | tee "$OUT/bench.log" || status=1
    return $status
}

# The CPU box's overhead benchmarks on the CUDA build: the engine against the library's own
# sd-cli (built in the same build folder, same library) and HTTP against the bare engine.
run_extra() {
    [ -e "$site/sdrest/nvidia" ] || export LD_LIBRARY_PATH=/tmp/sdrest-cuda-merged/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    "$python" benchmarks/overhead.py --size 512 --steps 4 --runs 3 --rss-generations 10 2>&1 | tee "$OUT/overhead.log"
    "$python" benchmarks/server.py --size 512 --steps 4 --runs 2 --streams 16 2>&1 | tee "$OUT/server.log"
}

case "$phase" in
    build) build ;;
    test) run_tests ;;
    extra) run_extra ;;
    all) build && run_tests ;;
    *) echo "usage: gpu_check.sh build|test|extra|all" >&2; exit 2 ;;
esac
