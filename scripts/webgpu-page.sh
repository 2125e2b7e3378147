#!/usr/bin/env bash
# Trunk post-build hook (Trunk.toml): builds the WebGPU page (webgpu.html, both backends) into
# webgpu/ beside the default CPU-only page, so the default download stays small and WebGPU is
# loaded only by a visitor who asks for it. The inner trunk run skips this hook.
set -euo pipefail
[ -n "${SSI_WEBGPU_PAGE:-}" ] && exit 0
profile=()
[ "${TRUNK_PROFILE:-debug}" = "release" ] && profile=(--release)
SSI_WEBGPU_PAGE=1 trunk build webgpu.html "${profile[@]}" \
  --dist "$TRUNK_STAGING_DIR/webgpu" --html-output index.html --public-url ./
