#!/usr/bin/env bash
# Installs what agentcell needs to build and test, from Debian 12's archive only.
set -euo pipefail
pkgs=(gcc clang make pkg-config libjansson-dev libseccomp-dev libcmocka-dev
      python3 procps util-linux busybox-static clang-format jq shellcheck
      libmicrohttpd-dev libcurl4-openssl-dev libarchive-dev libyaml-dev
      e2fsprogs libcap2-bin strace openssl libssl-dev iproute2 curl
      docker-registry apache2-utils zstd attr)
# Node.js runs the SDK compatibility tests; a machine that has it (any packaging) keeps it.
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (apt-get)" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
