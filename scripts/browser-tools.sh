#!/usr/bin/env bash
# Installs what the browser tests and the page build need, when missing: the wasm32 target,
# Debian's chromium and chromium-driver, wasm-bindgen-cli at the exact version of wasm-bindgen in Cargo.lock, trunk,
# and binaryen 132's wasm-opt from npm (Debian's wasm-opt 108 breaks the page). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing chromium and chromium-driver (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The tools' own release profiles ask for fat LTO in one codegen unit (trunk: tens of minutes on 2
# cores); CI and the page need them to work, not to be as fast as can be.
tool_profile=(env CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)

bindgen=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen" ]; then
  echo "installing wasm-bindgen-cli $bindgen"
  # Not --locked: one locked dependency of this release is missing from the registry.
  "${tool_profile[@]}" cargo install -q wasm-bindgen-cli --version "$bindgen" --force
fi

if ! command -v trunk >/dev/null; then
  echo "installing trunk"
  # trunk 0.22 asks for a newer rustc than this machine's; it builds and works with 1.95.
  "${tool_profile[@]}" cargo install -q trunk --version 0.22.1 --locked --ignore-rust-version
fi

if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "132" ]; then
  echo "installing binaryen 132 (wasm-opt) from npm"
  $SUDO npm install -g -s binaryen@132
fi

chromium --version
chromedriver --version
wasm-bindgen --version
trunk --version
wasm-opt --version
