#!/usr/bin/env bash
# Every benchmark of docs/performance.md on this machine, one after another, from one command.
# Each script measures its own baseline in the same run and prints the ratio; this only runs
# them in turn with the sizes the document's CPU rows use, and keeps the whole output.
#
#   bash benchmarks/run_all.sh [--torch PYTHON] [--compare-lib OTHER.so] [--log FILE]
#
#   --torch PYTHON        also compare with PyTorch on the same UNet (vs_torch.py); PYTHON is a
#                         virtual environment's interpreter with torch and diffusers (never sdrest's)
#   --compare-lib SO      also compare this build's library with another build's per sampling step
#                         (cpu_flags.py), e.g. one configured with -DGGML_NATIVE=OFF
#
# Run it from sdrest's environment (the checkout with sdrest importable, or an installed sdrest).
# On the GPU machine the same scripts run through benchmarks/gpu_check.sh (see gpu_prepare.sh).
# A 2-core machine takes about an hour; a busy one longer (its numbers are noisier too: the
# document says which rows use one thread and CPU time to stay comparable under load).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
torch= compare= log=benchmarks/results-$(date +%Y%m%d-%H%M%S).log
while [ $# -gt 0 ]; do
    case "$1" in
        --torch) torch=$2; shift 2 ;;
        --compare-lib) compare=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        *) echo "usage: run_all.sh [--torch PYTHON] [--compare-lib OTHER.so] [--log FILE]" >&2; exit 2 ;;
    esac
done
export PYTHONUNBUFFERED=1
status=0

run() {
    echo "==> [$(date +%T)] load $(cut -d' ' -f1-3 /proc/loadavg): $python benchmarks/$*"
    "$python" "benchmarks/$@" || { status=1; echo "==> benchmarks/$1 failed"; }
}

{
    run scan.py --files 1000 --warm-runs 5
    run overhead.py --size 64 --steps 2 --runs 5 --rss-generations 50
    run sdserver.py --size 64 --steps 2 --runs 5
    run server.py --size 64 --steps 2 --runs 3 --streams 64
    run cancel.py --size 64 --steps 2 --rounds 3
    run resident.py --jobs 10 --size 64 --steps 1
    run overlap.py --jobs 4 --size 64 --steps 1 --rounds 3
    run swap.py --swaps 4
    run threads.py --threads 1,2 --size 128 --steps 3 --rounds 3
    run cpu_options.py base fa:diffusion_flash_attn=true q8:wtype=q8_0 f32:wtype=f32 --size 256 --steps 2 --rounds 1
    if [ -n "$compare" ]; then
        library=$("$python" -c 'from sdrest._native import load_library; print(load_library().path)')
        run cpu_flags.py "$library" "$compare" --size 256 --steps 3 --rounds 2 --threads 1
    fi
    if [ -n "$torch" ]; then
        run vs_torch.py --python "$torch" --sizes 256 --dtypes fp32,bf16 --threads 1 --steps 2
    fi
    echo "==> [$(date +%T)] done; every figure above is also in $log"
} 2>&1 | tee "$log"
exit $status
