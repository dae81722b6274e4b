#!/usr/bin/env bash
# Re-vendor the web UI's only libraries from the npm registry: Preact (+ its hooks) and htm.
# Plain ES module files, no build step; the hooks module's bare `import "preact"` is rewritten
# to the file beside it so that no import map is needed.
#
#   webui/vendor/update.sh              the versions pinned below
#   PREACT=11.2.0 HTM=3.1.1 webui/vendor/update.sh
set -euo pipefail
cd "$(dirname "$0")"
PREACT=${PREACT:-11.2.0}
HTM=${HTM:-3.1.1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "preact@$PREACT" "htm@$HTM" >/dev/null)
mkdir -p "$work/preact" "$work/htm"
tar xzf "$work/preact-$PREACT.tgz" -C "$work/preact"
tar xzf "$work/htm-$HTM.tgz" -C "$work/htm"
strip_map() { sed -e '/^\/\/# sourceMappingURL=/d' "$1"; }
strip_map "$work/preact/package/dist/preact.mjs" > preact.mjs
strip_map "$work/preact/package/hooks/dist/hooks.mjs" | sed -e 's#from"preact"#from"./preact.mjs"#g' > hooks.mjs
strip_map "$work/htm/package/dist/htm.mjs" > htm.mjs
grep -q 'from"./preact.mjs"' hooks.mjs || { echo "update.sh: hooks.mjs import not rewritten" >&2; exit 1; }
{
    echo "preact $PREACT (MIT)  preact.mjs hooks.mjs"
    echo "htm $HTM (Apache-2.0)  htm.mjs"
    echo
    echo "sha256:"
    sha256sum preact.mjs hooks.mjs htm.mjs
} > VERSIONS.txt
{
    echo "== preact $PREACT =="; cat "$work/preact/package/LICENSE"; echo
    echo "== htm $HTM =="; cat "$work/htm/package/LICENSE"
} > LICENSES.txt
echo "vendored: preact $PREACT, htm $HTM"
