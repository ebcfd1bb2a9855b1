#!/usr/bin/env bash
# Installs everything mirage_viz needs on a fresh Debian machine (run as root), without a CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(libusb-1.0-0 libgomp1 chromium)  # chromium: the browser tests (Playwright drives it)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test,notebooks]"
