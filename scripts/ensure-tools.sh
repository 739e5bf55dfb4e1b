#!/usr/bin/env bash
# Installs the Debian tools some tests drive (promtool, from the `prometheus` package; chromium,
# for the dashboard's browser tests) when they are missing. A failed install is reported, not
# fatal: the tests themselves then skip, or fail with CI=true.
set -u

# command → Debian package that provides it
TOOLS=(
  "promtool prometheus"
  "chromium chromium"
)

missing=()
for entry in "${TOOLS[@]}"; do
  read -r command package <<<"$entry"
  command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "ensure-tools: not root and no sudo; cannot install ${missing[*]}" >&2
    exit 0
  fi
fi
echo "ensure-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
  # A fresh machine has no package lists yet.
  $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || echo "ensure-tools: could not install ${missing[*]}" >&2
fi
exit 0
