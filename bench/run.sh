#!/usr/bin/env bash
# FastGate benchmark: FastGate vs nginx vs direct, written to docs/performance.md.
# Targets: direct, nginx, fastgate-1t, fastgate (every feature on, these are judged)
# and fastgate-1t-noaudit, fastgate-noaudit (the same with the audit off, to show
# what it costs).
#
#   bash bench/run.sh            # full suite (~7-9 min once tools and binaries exist)
#   bash bench/run.sh --quick    # short smoke run (~3 min)
#   bash bench/run.sh --scenarios a32,c --targets direct,nginx,fastgate-1t,fastgate-1t-noaudit
#   bash bench/run.sh --no-pin   # no taskset pinning
#
# Installs what is missing (nginx from the distribution's packages, oha
# with `cargo install --locked`), builds the release binaries, raises the
# open-file limit and runs bench/harness.py. Loopback traffic only.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '[bench] %s\n' "$*"; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    say "installing $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || return 1
}

export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin"

missing_pkgs=()
command -v python3 >/dev/null 2>&1 || missing_pkgs+=(python3)
command -v nginx >/dev/null 2>&1 || missing_pkgs+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing_pkgs+=(util-linux)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
    apt_install "${missing_pkgs[@]}" || die "missing ${missing_pkgs[*]}: install them (Debian: apt-get install -y ${missing_pkgs[*]})"
fi
command -v nginx >/dev/null 2>&1 || die "nginx not found after installation"
command -v python3 >/dev/null 2>&1 || die "python3 not found"

if ! command -v oha >/dev/null 2>&1; then
    command -v cargo >/dev/null 2>&1 || die "oha missing and cargo not found"
    say "installing oha with cargo install --locked (one-time, takes a few minutes)"
    cargo install --locked oha || die "cannot install oha; install it with: cargo install --locked oha"
fi

say "building release binaries (fastgate, bench-mock, bench-stream)"
cargo build --release -p fastgate -p fastgate-bench

# Up to 10,000 concurrent streams need ~2 descriptors each in the proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
say "open-file limit: $(ulimit -n)"

exec python3 "$ROOT/bench/harness.py" "$@"
