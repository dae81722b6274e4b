#!/usr/bin/env bash
# Set up sdrest in a virtual environment and create the models/ layout. Safe to re-run.
#
#   ./install.sh                 CPU build into ./.venv
#   ./install.sh --cuda          CUDA build: with a complete system CUDA toolkit if there is one,
#                                else NVIDIA's CUDA 13 wheels (no toolkit needed, only the driver);
#                                also --vulkan, --metal, --hipblas, --opencl, --sycl
#     --cuda-toolkit auto|system|wheels   which CUDA toolkit builds it (default auto)
#   ./install.sh --dry-run ...   print the build it would run (and the CUDA toolkit), change nothing
#   ./install.sh --venv DIR --models-dir DIR --dev
#   ./install.sh --pam           also install /etc/pam.d/sdrest (for --auth pam; needs root)
#   ./install.sh --postgres      also the postgres extra (psycopg, psycopg-pool), for a cluster's
#                                shared --store postgresql://... (docs/scale-out.md)
#   ./install.sh --skip-build    keep the venv's sdrest as it is (e.g. to add --service later)
#
# As a systemd service (needs root): its own system user, a hardened unit, enabled at once.
#   ./install.sh --service       venv /opt/sdrest/venv, data /var/lib/sdrest/data, models
#                                /var/lib/sdrest/models, settings /etc/sdrest/config.yaml
#   ./install.sh --worker-service   sdrest-worker.service: a cluster's generation worker
#                                (sdrest worker), with the same user, paths and settings;
#                                with --service too, both
#     --service-user NAME        the user it runs as (default sdrest)
#     --data-dir DIR --output-dir DIR --config FILE --unit-dir DIR (default /etc/systemd/system)
#   Secrets (SDREST_STORE=postgresql://..., PGPASSWORD) go in sdrest.env beside the settings
#   file (0600, read by systemd only), never in a unit.
# uninstall.sh undoes it (and keeps models and data unless --purge).
#
# Extra CMake options pass through CMAKE_ARGS, e.g. CMAKE_ARGS="-DGGML_NATIVE=OFF".
set -euo pipefail
cd "$(dirname "$0")"

venv=""
models_dir=""
data_dir=""
output_dir=""
config=""
extras_list=""
backend_args=""
pam=0
postgres=0
service=0
worker_service=0
skip_build=0
dry_run=0
cuda=0
cuda_toolkit=auto
service_user=sdrest
unit_dir=/etc/systemd/system

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) backend_args="$backend_args -DSD_CUDA=ON"; cuda=1 ;;
        --cuda-toolkit) cuda_toolkit="${2:-}"; shift ;;
        --dry-run) dry_run=1 ;;
        --vulkan) backend_args="$backend_args -DSD_VULKAN=ON" ;;
        --metal) backend_args="$backend_args -DSD_METAL=ON" ;;
        --hipblas) backend_args="$backend_args -DSD_HIPBLAS=ON" ;;
        --opencl) backend_args="$backend_args -DSD_OPENCL=ON" ;;
        --sycl) backend_args="$backend_args -DSD_SYCL=ON" ;;
        --venv) venv="$2"; shift ;;
        --models-dir) models_dir="$2"; shift ;;
        --data-dir) data_dir="$2"; shift ;;
        --output-dir) output_dir="$2"; shift ;;
        --config) config="$2"; shift ;;
        --dev) extras_list="${extras_list:+$extras_list,}test" ;;
        --pam) pam=1 ;;
        --postgres) postgres=1; extras_list="${extras_list:+$extras_list,}postgres" ;;
        --service) service=1 ;;
        --worker-service) worker_service=1 ;;
        --service-user) service_user="$2"; shift ;;
        --unit-dir) unit_dir="$2"; shift ;;
        --skip-build) skip_build=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# GPU builds also get nvidia-ml-py: GPU names and memory in GET /api/v1/system.
[ -n "$backend_args" ] && extras_list="${extras_list:+$extras_list,}gpu"
if [ "$cuda" = 1 ]; then
    case "$cuda_toolkit" in
        auto|system|wheels) ;;
        *) echo "install.sh: --cuda-toolkit must be auto, system or wheels, not '$cuda_toolkit'" >&2; exit 2 ;;
    esac
    backend_args="$backend_args -DSDREST_CUDA_TOOLKIT=$cuda_toolkit"
    choice=wheels
    # native/cmake/SdrestCudaToolkit.cmake decides; asked here only to say so up front.
    if command -v cmake >/dev/null; then
        if ! said=$(cmake -DSDREST_CUDA_TOOLKIT="$cuda_toolkit" -P native/cmake/SdrestCudaToolkit.cmake 2>&1); then
            printf '%s\n' "$said" >&2
            echo "install.sh: --cuda-toolkit $cuda_toolkit: no complete CUDA toolkit found" >&2; exit 1
        fi
        choice=$(printf '%s\n' "$said" | tail -n 1)
        printf '%s\n' "$said" | sed '$d'  # the incomplete toolkits it passed over, if any
        case "$choice" in
            system*) echo "==> CUDA toolkit: the system's, at ${choice#system }" ;;
            *) echo "==> CUDA toolkit: NVIDIA's CUDA 13 wheels (installed for the build; GPUs from Turing, sm_75, on)" ;;
        esac
    fi
    # Built with the wheels: the CUDA runtime and cuBLAS come as wheels too (the sdrest[cuda]
    # extra; the library's RPATH points at them). A system toolkit's build uses its own.
    [ "${choice%% *}" = system ] || extras_list="${extras_list:+$extras_list,}cuda"
elif [ "$cuda_toolkit" != auto ]; then
    echo "install.sh: --cuda-toolkit goes with --cuda" >&2; exit 2
fi
extras=${extras_list:+[$extras_list]}
# The systemd units to install: the server, a cluster's generation worker, or both.
units=""
[ "$service" = 1 ] && units="sdrest"
[ "$worker_service" = 1 ] && units="${units:+$units }sdrest-worker"

if [ -n "$units" ]; then
    # A service must not live under a home folder (the unit has ProtectHome=yes).
    venv=${venv:-/opt/sdrest/venv}
    models_dir=${models_dir:-/var/lib/sdrest/models}
    data_dir=${data_dir:-/var/lib/sdrest/data}
    config=${config:-/etc/sdrest/config.yaml}
    if [ "$(id -u)" != 0 ]; then
        echo "install.sh: --service and --worker-service need root (they create a user and a systemd unit)" >&2
        exit 1
    fi
fi
venv=${venv:-.venv}
models_dir=${models_dir:-models}

if [ "$dry_run" = 1 ]; then
    echo "==> dry run: would build and install into $venv:"
    echo "    CMAKE_ARGS=\"${CMAKE_ARGS:-}$backend_args\" $venv/bin/python -m pip install \"$PWD$extras\""
    exit 0
fi

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating virtual environment $venv"
    "$python" -m venv "$venv"
fi

if [ "$skip_build" = 1 ]; then
    if ! "$venv/bin/sdrest" --version >/dev/null 2>&1; then
        echo "install.sh: --skip-build: $venv has no working sdrest; run without --skip-build" >&2
        exit 1
    fi
    if [ "$postgres" = 1 ] && ! "$venv/bin/python" -c 'import psycopg, psycopg_pool' 2>/dev/null; then
        echo "install.sh: --skip-build --postgres: $venv lacks the postgres extra (psycopg, psycopg-pool);" \
             "run without --skip-build" >&2
        exit 1
    fi
    echo "==> keeping the installed $("$venv/bin/sdrest" --version | head -n 1)"
else
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    echo "==> building and installing sdrest${backend_args:+ with$backend_args} (the native build takes a few minutes)"
    CMAKE_ARGS="${CMAKE_ARGS:-}$backend_args" "$venv/bin/python" -m pip install "$PWD$extras"
fi

echo "==> model folders under $models_dir"
for folder in checkpoints lora vae presets prompts neg_prompts taesd esrgan controlnet upscaler embeddings \
              diffusion_models text_encoders; do
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

if [ -n "$units" ]; then
    umask 022  # parents it creates (/var/lib/sdrest) must be passable by the service user
    absolute() { realpath -m -- "$1"; }
    venv=$(absolute "$venv")
    models_dir=$(absolute "$models_dir")
    data_dir=$(absolute "$data_dir")
    output_dir=$(absolute "${output_dir:-$data_dir/outputs}")
    config=$(absolute "$config")
    for path in "$venv" "$models_dir" "$data_dir" "$output_dir" "$config"; do
        case "$path" in
            *[[:space:]]*|*@*) echo "install.sh: $path: a service path may not contain spaces or @" >&2; exit 2 ;;
        esac
    done

    if ! id -u "$service_user" >/dev/null 2>&1; then
        echo "==> creating system user $service_user"
        useradd --system --user-group --home-dir "$data_dir" --no-create-home \
            --shell /usr/sbin/nologin --comment "sdrest service" "$service_user"
    fi
    # The service cannot start if its user cannot reach the venv's Python (e.g. one built
    # from a Python under /root): say so now rather than in the journal later.
    if ! runuser -u "$service_user" -- "$venv/bin/python" -c '' 2>/dev/null; then
        echo "install.sh: user $service_user cannot run $venv/bin/python (is it, or the Python it" \
             "was made from, in a private folder such as /root?); use a system Python:" \
             "PYTHON=/usr/bin/python3 ./install.sh --service --venv /opt/sdrest/venv" >&2
        exit 1
    fi
    # The service's own folders: private to it (it also makes them 0700 itself).
    mkdir -p "$data_dir" "$output_dir"
    chown -R "$service_user:$service_user" "$data_dir" "$output_dir"
    chmod 0750 "$data_dir" "$output_dir"
    # Model folders: it may add files (conversions) but the files stay whoever's they are.
    find "$models_dir" -type d -exec chown "$service_user:$service_user" {} +

    if [ ! -e "$config" ]; then
        echo "==> writing $config (settings; see sdrest serve --help)"
        mkdir -p "$(dirname "$config")"
        printf '%s\n' "# sdrest settings (flags and SDREST_* variables use the same names)." \
            "host: 127.0.0.1" "port: 8080" "auth: none" "# cors_origins: https://app.example.com" \
            "# model: sd-v1-5" > "$config"
        chown "root:$service_user" "$config"
        chmod 0640 "$config"
    fi

    # Secrets stay out of the units and the settings: systemd reads this file (as root) into
    # the service's environment; the service user cannot read the file itself.
    env_file="$(dirname "$config")/sdrest.env"
    if [ ! -e "$env_file" ]; then
        echo "==> writing $env_file (0600: the database URL and its password go here)"
        (
            umask 077
            printf '%s\n' "# Environment of the sdrest services (read by systemd; keep it 0600, owned by root)." \
                "# A cluster's shared store (sdrest-worker.service and API nodes), e.g.:" \
                "# SDREST_STORE=postgresql://sdrest@db.internal/sdrest" \
                "# PGPASSWORD=the database password (or a ~/.pgpass of the service user)" > "$env_file"
        )
    fi
    chown root:root "$env_file"
    chmod 0600 "$env_file"

    # GPU builds need the GPU's device nodes; a CPU build runs without any.
    private_devices=yes
    if "$venv/bin/sdrest" --version | grep -q '^  backends:.*\(cuda\|vulkan\|hip\|rocm\|sycl\|opencl\)'; then
        private_devices=no
    fi
    mkdir -p "$unit_dir"
    for name in $units; do
        if [ "$name" = sdrest ]; then
            command=serve description="sdrest: Stable Diffusion REST server"
        else
            command=worker description="sdrest worker: generation worker of an sdrest cluster"
        fi
        unit="$unit_dir/$name.service"
        echo "==> installing $unit (runs as $service_user)"
        sed -e "s|@VENV@|$venv|g" -e "s|@USER@|$service_user|g" -e "s|@DATA_DIR@|$data_dir|g" \
            -e "s|@MODELS_DIR@|$models_dir|g" -e "s|@OUTPUT_DIR@|$output_dir|g" -e "s|@CONFIG@|$config|g" \
            -e "s|@PRIVATE_DEVICES@|$private_devices|g" -e "s|@COMMAND@|$command|g" \
            -e "s|@DESCRIPTION@|$description|g" -e "s|@ENV_FILE@|$env_file|g" sdrest.service.template > "$unit.tmp"
        chmod 0644 "$unit.tmp"
        mv "$unit.tmp" "$unit"

        if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
            systemctl daemon-reload
            systemctl enable --now "$name.service"
            echo "==> $name.service enabled and started: systemctl status $name; journalctl -u $name"
        else
            echo "==> systemd is not running here (or --unit-dir is elsewhere): enable it with"
            echo "    systemctl daemon-reload && systemctl enable --now $name.service"
        fi
    done
    echo "==> done. Put checkpoints in $models_dir/checkpoints; settings are in $config, secrets in $env_file"
    exit 0
fi

echo "==> done. Check the install:  $venv/bin/sdrest selftest"
