#!/usr/bin/env bash
# The GPU proof, on a machine with an NVIDIA GPU and no internet (the device machine: 16 cores,
# an H200, CUDA 13 driver; Python 3.12 with numpy, pillow, pytest, torch, nvidia-ml-py, cmake, ninja).
# Prepare here first: bash benchmarks/gpu_prepare.sh (wheels and the pinned source in .gpu-carry/),
# or bash benchmarks/gpu_prepare.sh --prebuilt CUDA_BUILD CPU_BUILD (libraries built here).
#
#   bash benchmarks/gpu_check.sh PHASE [PHASE ...], phases run in order:
#   build      CUDA build installed the way pip installs it (pip install --target,
#              CMAKE_ARGS=-DSD_CUDA=ON, sm_90) and a CPU build of the same source
#   prebuilt   instead of build: the same layout from the libraries that gpu_prepare.sh --prebuilt
#              carried (no compiler needed, seconds instead of minutes)
#   test       pytest: tests/test_gpus.py on the CUDA build, the loader and out_of_memory tests
#   bench      benchmarks/gpu_bench.py (CUDA against the CPU backend), diffusion flash attention on
#              CUDA (cpu_options.py), and PyTorch on the same UNet (vs_torch.py; CUDA, then the CPU)
#   extra      the server benchmarks on CUDA: overhead.py (engine vs sd-cli, RSS), sdserver.py
#              (HTTP vs sd-server) and server.py (HTTP vs engine, /status p99 with 64 SSE clients)
#   all        build test bench
#
# Results go to $OUT (the device tool brings that folder back; at most 8 files a call): machine.txt,
# build.log, build_info.json (build), pytest.log, junit.xml, bench.log, gpu_bench.json, torch_cuda.json,
# torch_cpu.json, extra.log. Builds stay in build/gpu-* and /tmp/sdrest-gpu between calls while the
# machine is warm. Each step has a time limit, so that one that hangs leaves time for the others.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
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
if ! "$python" -c 'import cffi, flask, flask_cors, flask_jwt_extended, pam, pydantic, waitress' 2>/dev/null ||
   { ls "$carry"/whl/diffusers-*.whl >/dev/null 2>&1 && ! "$python" -c 'import diffusers' 2>/dev/null; }; then
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

# Where the CUDA runtime comes from when the Python has no NVIDIA wheels in nvidia/cu13/lib.
cuda_runtime_path() {
    [ -e "$site/sdrest/nvidia" ] && return
    local dirs
    dirs=$(find /tmp/sdrest-cuda-merged/lib "$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/nvidia" \
        /usr/local/cuda/lib64 /usr/local/cuda/targets/*/lib \( -name 'libcudart.so.13' -o -name 'libcublas.so.13' \) \
        -printf '%h:' 2>/dev/null)
    export LD_LIBRARY_PATH=${dirs}${LD_LIBRARY_PATH:-}
}

cpu_library() {
    if [ -f /tmp/sdrest-cpu/libstable-diffusion.so ]; then
        echo /tmp/sdrest-cpu/libstable-diffusion.so
    else
        find "$repo/build/gpu-cpu" -name libstable-diffusion.so -type f -print -quit 2>/dev/null
    fi
}

# The layout `pip install --target` gives, from the carried libraries.
install_prebuilt() {
    local pre=$carry/prebuilt dest=$site/sdrest nvidia
    [ -f "$pre/cuda/libstable-diffusion.so.xz" ] || { echo "gpu_check.sh: no $pre: run gpu_prepare.sh --prebuilt here" >&2; return 1; }
    rm -rf "$dest" /tmp/sdrest-cpu && mkdir -p "$dest/bin" /tmp/sdrest-cpu
    cp -r sdrest "$dest/sdrest"
    rm -rf "$dest/sdrest/_native/lib" "$dest/sdrest/_native/include" "$dest/sdrest/_native/build_info.json" "$dest/sdrest/webui"
    mkdir -p "$dest/sdrest/_native/lib"
    xz -dc "$pre/cuda/libstable-diffusion.so.xz" > "$dest/sdrest/_native/lib/libstable-diffusion.so"
    cp "$pre/cuda/build_info.json" "$dest/sdrest/_native/"
    cp -r "$pre/include" "$dest/sdrest/_native/include"
    cp -r webui "$dest/sdrest/webui"
    xz -dc "$pre/cpu/libstable-diffusion.so.xz" > /tmp/sdrest-cpu/libstable-diffusion.so
    for example in sd-cli sd-server; do
        xz -dc "$pre/bin/$example.xz" > "/tmp/sdrest-cpu/$example" && chmod +x "/tmp/sdrest-cpu/$example"
    done
    # As pip writes console scripts: the worker process is started with multiprocessing's "spawn",
    # which imports the parent's main module again, so main() must run only under __main__.
    printf '#!%s\nimport sys\nfrom sdrest.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n' \
        "$(command -v "$python")" > "$dest/bin/sdrest"
    chmod +x "$dest/bin/sdrest"
    nvidia=$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/nvidia
    [ -d "$nvidia/cu13/lib" ] && ln -sfn "$nvidia" "$dest/nvidia"
    cuda_runtime_path
    { nvidia-smi; lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | cut -c1-400; "$python" --version
      echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; ldd "$dest/sdrest/_native/lib/libstable-diffusion.so" | grep -E 'cuda|cublas'
      sdrest --version; cat "$dest/sdrest/_native/build_info.json"; } > "$OUT/machine.txt" 2>&1
    cat "$OUT/machine.txt"
}

# Everything a step needs from the environment, then the step under a time limit.
step() {
    local limit=$1; shift
    echo "==> [$(date +%T)] $* (limit ${limit} s)"
    timeout --kill-after=10 "$limit" "$@"
    local status=$?
    echo "==> [$(date +%T)] exit $status: $1 ${2:-}"
    return $status
}

run_tests() {
    local cuda_lib cpu_lib
    cuda_lib=$site/sdrest/sdrest/_native/lib/libstable-diffusion.so
    cpu_lib=$(cpu_library)
    [ -f "$cuda_lib" ] && [ -n "$cpu_lib" ] || { echo "gpu_check.sh: run the build or prebuilt phase first" >&2; return 1; }
    cuda_runtime_path
    # From outside the checkout, so that `import sdrest` is the installed CUDA build, not the source.
    (cd /tmp && SDREST_CPU_LIB=$cpu_lib step "${TEST_LIMIT:-300}" "$python" -m pytest -p no:cacheprovider -rA -v -s \
        --rootdir "$repo" -c "$repo/pyproject.toml" --junitxml "$OUT/junit.xml" \
        "$repo/tests/test_gpus.py" "$repo/tests/_native/test_loader.py" "$repo/tests/_native/test_cudart.py" \
        "$repo/tests/worker/test_out_of_memory.py") 2>&1 | tee "$OUT/pytest.log"
}

run_bench() {
    local cuda_lib cpu_lib status=0
    cuda_lib=$site/sdrest/sdrest/_native/lib/libstable-diffusion.so
    cpu_lib=$(cpu_library)
    cuda_runtime_path
    {
        "$python" -c 'from sdrest.synthetic import ensure_synthetic_models as e; print(e().checkpoint)'
        step 120 "$python" benchmarks/gpu_bench.py "$cuda_lib" "$cpu_lib" --sizes 512,1024 --cpu-sizes 512 \
            --steps 8 --cpu-steps 3 --threads "$jobs" --rounds 1 --json "$OUT/gpu_bench.json" || status=1
        SDREST_LIB=$cuda_lib step 90 "$python" benchmarks/cpu_options.py base fa:diffusion_flash_attn=true \
            --size 1024 --steps 8 --rounds 1 --threads "$jobs" || status=1
        step 120 "$python" benchmarks/vs_torch.py --python "$python" --device cuda --library "$cuda_lib" \
            --sizes 512,1024 --dtypes fp32,fp16,bf16 --steps 6 --json "$OUT/torch_cuda.json" || status=1
        step 120 "$python" benchmarks/vs_torch.py --python "$python" --device cpu --library "$cpu_lib" \
            --sizes 512 --dtypes fp32,bf16 --threads "$jobs" --steps 2 --json "$OUT/torch_cpu.json" || status=1
    } 2>&1 | tee "$OUT/bench.log"
    return $status
}

# The server benchmarks on the CUDA build: the engine against the library's own sd-cli (the
# same library) and sdrest's HTTP against sd-server and against the bare engine.
run_extra() {
    local status=0
    cuda_runtime_path
    if [ -x /tmp/sdrest-cpu/sd-server ]; then  # prebuilt (else benchmarks/sdcli.py builds them)
        export SDREST_BENCH_SD_CLI=/tmp/sdrest-cpu/sd-cli SDREST_BENCH_SD_SERVER=/tmp/sdrest-cpu/sd-server
    fi
    local only=" ${EXTRA:-overhead sdserver server} "  # EXTRA: a subset, e.g. to rerun one
    {
        [[ $only != *" overhead "* ]] ||
            step 100 "$python" benchmarks/overhead.py --size 512 --steps 8 --runs 3 --rss-generations 20 || status=1
        [[ $only != *" sdserver "* ]] ||
            step 90 "$python" benchmarks/sdserver.py --size 512 --steps 8 --runs 3 --threads "$jobs" || status=1
        [[ $only != *" server "* ]] ||
            step 90 "$python" benchmarks/server.py --size 512 --steps 8 --runs 3 --streams 64 || status=1
        [[ $only != *" cancel "* ]] ||
            step 90 "$python" benchmarks/cancel.py --size 512 --steps 8 --rounds 3 || status=1
        [[ $only != *" resident "* ]] ||
            step 120 "$python" benchmarks/resident.py --jobs 10 --size 512 --steps 8 || status=1
    } 2>&1 | tee "$OUT/extra.log"
    return $status
}

[ $# -gt 0 ] || set -- all
[ "$1" = all ] && set -- build test bench
for phase in "$@"; do
    case "$phase" in
        build) build || exit 1 ;;
        prebuilt) install_prebuilt || exit 1 ;;
        test) run_tests ;;
        bench) run_bench ;;
        extra) run_extra ;;
        *) echo "usage: gpu_check.sh build|prebuilt|test|bench|extra|all ..." >&2; exit 2 ;;
    esac
done
