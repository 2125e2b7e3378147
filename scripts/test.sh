#!/usr/bin/env bash
# The whole test suite: formatting, lints, native tests, the browser tests (wasm-bindgen-test in
# headless Chromium) and the end-to-end test of the page built by trunk. Installs what is missing
# first (rustup components and target, Chromium, wasm-bindgen-cli, trunk, wasm-opt).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Each step prints its start time and the previous step's duration; the last line the total.
last_step=""
step_start=$SECONDS
step() {
  if [ -n "$last_step" ]; then printf '== %s took %d s\n' "$last_step" $((SECONDS - step_start)); fi
  last_step="$*"
  step_start=$SECONDS
  printf '\n== %s (%s)\n' "$*" "$(date +%T)"
}
trap 'step "done"' EXIT

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

step "the native wgpu build has kernel fusion and autotune (cargo tree)"
features=$(cargo tree -q -p ssi-cli --features wgpu -e features -i burn-cubecl)
for f in fusion autotune; do
  grep -q "burn-cubecl feature \"$f\"" <<<"$features" || { echo "wgpu build lacks burn-cubecl/$f"; exit 1; }
done

step "browser tools"
bash scripts/browser-tools.sh

step "the page: trunk build --release (dist/)"
cargo fetch -q
trunk build --release

step "cargo test (native; with the end-to-end test of dist/ in headless Chromium)"
# --include-ignored runs web/tests/e2e.rs, which needs dist/ and chromedriver.
CHROMEDRIVER=$(command -v chromedriver) cargo test --workspace --no-fail-fast -- --include-ignored

step "browser tests: wasm-bindgen-test in headless Chromium (CPU and WebGPU)"
# Release profile: shares the wasm32 build of burn with `trunk build --release` above.
# WebGPU is software-rendered on a machine without a GPU: a fine-tune step's first shader
# compilations take seconds, so each test gets more than the runner's 20 s default.
WASM_BINDGEN_TEST_TIMEOUT=120 CHROMEDRIVER=$(command -v chromedriver) \
  cargo test --release -p ssi-web --features webgpu,fusion --target wasm32-unknown-unknown --test browser
