#!/usr/bin/env bash
# Installs the Debian packages swift-reverb builds and tests with, when missing.
set -euo pipefail
# chromium and chromium-driver: the dashboard's browser test (headless, driven by Selenium through
# /usr/bin/chromedriver, so nothing is downloaded at test time).
packages=(libhiredis-dev libssl-dev pkg-config redis-server openssl chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# Debian's python3 needs python3-venv for `python3 -m venv` (a pyenv or other Python may not).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    echo "Installing ${missing[*]}"
    sudo_cmd=""
    [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
