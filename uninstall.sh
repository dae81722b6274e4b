#!/usr/bin/env bash
# Remove what install.sh set up: the systemd services (sdrest, sdrest-worker) and their user,
# the virtual environment, /etc/pam.d/sdrest (if install.sh wrote it). Models, data and
# settings stay unless --purge.
#
#   ./uninstall.sh               the services (if installed) and their venv, else ./.venv
#   ./uninstall.sh --purge       also the data folder (jobs, images, users, keys), the models,
#                                the settings file and the services' sdrest.env
#     --venv DIR --data-dir DIR --models-dir DIR --output-dir DIR --config FILE
#     --service-user NAME --unit-dir DIR (default /etc/systemd/system)
#
# Paths not given are read from the installed units' ExecStart (as install.sh wrote them).
set -euo pipefail
cd "$(dirname "$0")"

venv=""
models_dir=""
data_dir=""
output_dir=""
config=""
env_file=""
service_user=""
unit_dir=/etc/systemd/system
purge=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv="$2"; shift ;;
        --models-dir) models_dir="$2"; shift ;;
        --data-dir) data_dir="$2"; shift ;;
        --output-dir) output_dir="$2"; shift ;;
        --config) config="$2"; shift ;;
        --service-user) service_user="$2"; shift ;;
        --unit-dir) unit_dir="$2"; shift ;;
        --purge) purge=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# The value after FLAG in the unit's ExecStart line (empty if absent).
from_unit() { sed -n 's/^ExecStart=//p' "$unit" | tr ' ' '\n' | grep -A1 -x -- "$1" | tail -n 1; }

for name in sdrest sdrest-worker; do
    unit="$unit_dir/$name.service"
    [ -f "$unit" ] || continue
    exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
    venv=${venv:-${exec_path%/bin/sdrest}}
    data_dir=${data_dir:-$(from_unit --data-dir)}
    models_dir=${models_dir:-$(from_unit --models-dir)}
    output_dir=${output_dir:-$(from_unit --output-dir)}
    config=${config:-$(from_unit --config)}
    env_file=${env_file:-$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")}
    service_user=${service_user:-$(sed -n 's/^User=//p' "$unit")}

    if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
        echo "==> stopping and disabling $name.service"
        systemctl disable --now "$name.service" || true
    fi
    echo "==> removing $unit"
    rm -f "$unit"
    if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
        systemctl daemon-reload
    fi
done
venv=${venv:-.venv}
models_dir=${models_dir:-models}
data_dir=${data_dir:-data}

# Refuse to delete anything that is not what install.sh made, or a folder like / or /var.
removable() {
    local path
    path=$(realpath -m -- "$1")
    case "$path" in
        /|/bin|/boot|/dev|/etc|/home|/lib|/lib64|/opt|/proc|/root|/run|/sbin|/srv|/sys|/tmp|/usr|/var|/var/lib)
            echo "uninstall.sh: refusing to remove $path" >&2; return 1 ;;
    esac
}

if [ -f "$venv/pyvenv.cfg" ]; then
    removable "$venv"
    echo "==> removing the virtual environment $venv"
    rm -rf -- "$venv"
elif [ -e "$venv" ]; then
    echo "uninstall.sh: $venv is not a virtual environment; left as it is" >&2
fi

if [ -f /etc/pam.d/sdrest ] && grep -q "^# sdrest: used by 'sdrest serve --auth pam'" /etc/pam.d/sdrest; then
    echo "==> removing /etc/pam.d/sdrest"
    rm -f /etc/pam.d/sdrest
fi

if [ -n "$service_user" ] && id -u "$service_user" >/dev/null 2>&1; then
    echo "==> removing the system user $service_user"
    userdel "$service_user"
fi

if [ "$purge" = 1 ]; then
    for path in "$data_dir" "$output_dir" "$models_dir" "$config" "$env_file"; do
        [ -n "$path" ] && [ -e "$path" ] || continue
        removable "$path"
        echo "==> --purge: removing $path"
        rm -rf -- "$path"
    done
else
    echo "==> kept: models in $models_dir, data in $data_dir${config:+, settings in $config} (--purge removes them)"
fi
echo "==> done"
