#!/usr/bin/env bash
# The whole test suite: formatting, lints, native tests, and the wasm32 build of the crates that
# run in the browser. Installs what is missing first (rustup components and targets).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "wasm32 build of the browser crates (data, models, training, bundles)"
cargo build --target wasm32-unknown-unknown -p ssi-data -p ssi-models -p ssi-train -p ssi-bundle

step "cargo test (native)"
cargo test --workspace --no-fail-fast
