#!/usr/bin/env bash
# Build the CUDA library without a GPU and check it links against NVIDIA's CUDA 13 wheels.
#
#   native/check-cuda-build.sh                 one architecture (sm_90), the quickest full check
#   native/check-cuda-build.sh --all-archs     the portable list a GPU-less build ships (slower)
#   native/check-cuda-build.sh --arch 86       another single architecture
#   native/check-cuda-build.sh --target T      build only ninja target T (e.g. one .cu object)
#   native/check-cuda-build.sh --configure-only
#   native/check-cuda-build.sh --check-only     only the link checks of a library already built
#     --build-dir DIR (default build/cuda-check)   --jobs N (default: all cores)
#
# It configures this tree with -DSD_CUDA=ON -DSDREST_CUDA_TOOLKIT=wheels (so the wheels are used
# even where a system toolkit exists; native/cmake/SdrestCudaToolkit.cmake finds or installs them),
# builds libstable-diffusion.so, prints how long that took, and checks that the library
#   - needs libcudart.so.13 and libcublas.so.13 (NEEDED, readelf),
#   - carries the RPATH into the wheels ($ORIGIN/../../../nvidia/cu13/lib), and
#   - resolves both from the wheels' folder when laid out as an install would be (ldd).
# No GPU or driver is needed. A full one-architecture build takes about 40 minutes on 2 cores.
# SDREST_CUDA_WHEEL_ROOT=/path/to/site-packages/nvidia/cu13 reuses wheels installed elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build/cuda-check
arch_args=(-DCMAKE_CUDA_ARCHITECTURES=90)
target=""
configure_only=0
check_only=0
jobs=$(nproc 2>/dev/null || echo 2)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --all-archs) arch_args=() ;;  # no GPU visible: CMakeLists.txt's portable list
        --arch) arch_args=(-DCMAKE_CUDA_ARCHITECTURES="$2"); shift ;;
        --build-dir) build_dir="$2"; shift ;;
        --target) target="$2"; shift ;;
        --configure-only) configure_only=1 ;;
        --check-only) check_only=1 ;;
        --jobs) jobs="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "check-cuda-build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

for tool in cmake readelf ldd; do
    command -v "$tool" >/dev/null || { echo "check-cuda-build.sh: needs $tool" >&2; exit 1; }
done
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

start=$(date +%s)
if [ "$check_only" = 0 ]; then
    echo "==> configuring $build_dir (CUDA from NVIDIA's wheels, ${arch_args[*]:-portable architectures})"
    cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSD_CUDA=ON \
        -DSDREST_CUDA_TOOLKIT=wheels "${arch_args[@]}"
    echo "==> configured in $(( $(date +%s) - start )) s"
    [ "$configure_only" = 1 ] && exit 0

    build_start=$(date +%s)
    cmake --build "$build_dir" --target "${target:-stable-diffusion}" -j "$jobs"
    elapsed=$(( $(date +%s) - build_start ))
    printf '==> built %s in %d min %d s (%s jobs)\n' "${target:-libstable-diffusion.so}" $((elapsed / 60)) $((elapsed % 60)) "$jobs"
    [ -n "$target" ] && exit 0
fi

lib=$(find "$build_dir" -name libstable-diffusion.so -type f -print -quit)
[ -n "$lib" ] || { echo "FAIL: no libstable-diffusion.so under $build_dir" >&2; exit 1; }
ls -l "$lib"
dynamic=$(readelf -d "$lib")
status=0
for needed in libcudart.so.13 libcublas.so.13; do
    if grep -q "(NEEDED).*\[$needed\]" <<<"$dynamic"; then
        echo "ok: NEEDED $needed"
    else
        echo "FAIL: $lib does not need $needed" >&2; status=1
    fi
done
if grep -E '\((RUNPATH|RPATH)\)' <<<"$dynamic" | grep -qF '$ORIGIN/../../../nvidia/cu13/lib'; then
    echo "ok: $(grep -E '\((RUNPATH|RPATH)\)' <<<"$dynamic" | sed 's/.*\[/RPATH [/')"
else
    echo "FAIL: no RPATH into the wheels (\$ORIGIN/../../../nvidia/cu13/lib)" >&2; status=1
fi

# Lay the library out as pip installs it beside the runtime wheels, and let ldd resolve it.
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
mkdir -p "$site/sdrest/_native/lib" "$site/nvidia/cu13"
cp "$lib" "$site/sdrest/_native/lib/"
# The build's folder of links into the wheels' lib (native/cmake/SdrestCudaToolkit.cmake made it).
ln -s "$(realpath "$build_dir")/cuda-toolkit/lib" "$site/nvidia/cu13/lib"
resolved=$(env -u LD_LIBRARY_PATH ldd "$site/sdrest/_native/lib/libstable-diffusion.so")
for needed in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    if grep -q "$needed => .*/nvidia/cu13/lib/$needed" <<<"$resolved"; then
        echo "ok: ldd finds $needed in the wheels' nvidia/cu13/lib"
    else
        echo "FAIL: ldd: $(grep "$needed" <<<"$resolved" || echo "$needed not listed")" >&2; status=1
    fi
done
if grep -q "not found" <<<"$resolved"; then
    echo "note: ldd cannot resolve (libcuda.so.1, the driver's, is expected to be missing without a GPU):"
    grep "not found" <<<"$resolved"
fi
echo "==> total $(( $(date +%s) - start )) s; $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
