#!/usr/bin/env bash
# The project's whole test suite:
#   1. the tools the tests use: stock adb (apt, when missing and running as root), a real APK
#      (npm), a virtualenv with requirements-test.txt (official SDK, ADB clients, androguard);
#   2. cargo build (all targets) and cargo test of the workspace;
#   3. the end-to-end suite in tests/sdk, which drives a real `cph serve` through the official
#      Huawei Cloud Python SDK and its phones through stock ADB clients, once per store (SQLite
#      and PostgreSQL), both runs in parallel.
#
# Usage: bash scripts/test.sh [extra pytest arguments]
#
# Environment:
#   CPH_TEST_PG_URL      PostgreSQL server URL; tests create (and drop) their own databases on it
#                        (default postgres://postgres@127.0.0.1:5432/postgres)
#   CPH_TEST_BACKENDS    stores the SDK suite runs against (default "sqlite postgres")
#   CPH_TEST_SKIP_CARGO  set to 1 to skip the cargo steps (the binary must already be built)
#   CPH_TEST_APK         an APK for the phone suite (default: fetched into target/test-assets)
#   PYTHON               interpreter used to create the virtualenv (default python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

export CPH_TEST_PG_URL="${CPH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BACKENDS="${CPH_TEST_BACKENDS:-sqlite postgres}"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv-test"
OUT="$ROOT/target/sdk-tests"

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nscripts/test.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# ---- Phone test tools -------------------------------------------------------------------------
# Stock adb (Debian's package) and a real APK (npm package io.appium.settings) for the phone suite.
step "phone test tools: adb, test APK"
if ! command -v adb >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -q adb >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q adb >/dev/null; } \
            || die "apt-get install adb"
    else
        die "stock adb is needed (apt-get install adb)"
    fi
fi
adb version | head -n 2
ASSETS="$ROOT/target/test-assets"
export CPH_TEST_APK="${CPH_TEST_APK:-$ASSETS/settings_apk-debug.apk}"
if [ ! -s "$CPH_TEST_APK" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch the test APK (or set CPH_TEST_APK)"
    mkdir -p "$ASSETS"
    TMP_APK=$(mktemp -d)
    (cd "$TMP_APK" && npm pack --silent io.appium.settings@8.0.10 >/dev/null && tar xzf io.appium.settings-8.0.10.tgz) \
        || die "fetching the test APK (npm pack io.appium.settings@8.0.10)"
    cp "$TMP_APK/package/apks/settings_apk-debug.apk" "$CPH_TEST_APK"
    rm -rf "$TMP_APK"
fi
ls -l "$CPH_TEST_APK"

# ---- Python virtualenv ------------------------------------------------------------------------
step "virtualenv $VENV (requirements-test.txt)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "cannot create a virtualenv with $PYTHON"
fi
printf '*\n' >"$VENV/.gitignore"
STAMP="$VENV/.requirements-test.installed"
if ! cmp -s requirements-test.txt "$STAMP"; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt \
        || die "pip install -r requirements-test.txt"
    cp requirements-test.txt "$STAMP"
else
    echo "requirements already installed"
fi

export CPH_TEST_PYTHON="$VENV/bin/python"

# ---- Rust -------------------------------------------------------------------------------------
if [ "${CPH_TEST_SKIP_CARGO:-0}" != 1 ]; then
    command -v cargo >/dev/null || die "cargo not found on PATH"
    step "cargo build --workspace --all-targets --locked"
    cargo build --workspace --all-targets --locked || die "cargo build"
    step "cargo test --workspace --locked (CPH_TEST_PG_URL=$CPH_TEST_PG_URL)"
    cargo test --workspace --locked || die "cargo test"
fi
export CPH_BIN="${CPH_BIN:-$ROOT/target/debug/cph}"
[ -x "$CPH_BIN" ] || die "server binary $CPH_BIN not found (build it with: cargo build -p cph)"

# ---- SDK end-to-end suite, one run per store --------------------------------------------------
case " $BACKENDS " in
*" postgres "*)
    if command -v pg_isready >/dev/null && ! pg_isready -q -d "$CPH_TEST_PG_URL"; then
        die "PostgreSQL is not accepting connections at $CPH_TEST_PG_URL"
    fi
    command -v psql >/dev/null || die "psql not found (the PostgreSQL run creates its database with it)"
    ;;
esac

mkdir -p "$OUT"
declare -A PIDS
for backend in $BACKENDS; do
    case "$backend" in sqlite | postgres) ;; *) die "unknown backend '$backend' in CPH_TEST_BACKENDS" ;; esac
    step "SDK suite on $backend (output: $OUT/$backend.log)"
    CPH_TEST_BACKEND="$backend" "$VENV/bin/python" -m pytest tests/sdk \
        --junitxml="$OUT/$backend.xml" "$@" >"$OUT/$backend.log" 2>&1 &
    PIDS[$backend]=$!
done

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM

FAILED=()
for backend in $BACKENDS; do
    rc=0
    wait "${PIDS[$backend]}" || rc=$?
    printf '\n==> SDK suite on %s: pytest exit status %d\n' "$backend" "$rc"
    cat "$OUT/$backend.log"
    [ "$rc" -eq 0 ] || FAILED+=("$backend")
done
trap - INT TERM

step "summary"
for backend in $BACKENDS; do
    printf '%-9s %s\n' "$backend" "$(grep -E '^=+ .* in [0-9.]+s( \([0-9:]+\))? =+$' "$OUT/$backend.log" | tail -n 1)"
done
if [ "${#FAILED[@]}" -ne 0 ]; then
    die "SDK suite failed on: ${FAILED[*]}"
fi
echo "all tests passed"
