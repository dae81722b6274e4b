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
set -euo pipefail
cd "$(dirname "$0")/.."

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
