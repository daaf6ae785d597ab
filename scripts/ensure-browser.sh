#!/usr/bin/env bash
# The page test drives a real headless Chromium through Debian's chromium + chromium-driver.
# Installs them when this user can (root with apt-get); otherwise says how, and fails.
set -euo pipefail
if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium and chromium-driver for the web page test" >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
  exit 0
fi
cat >&2 <<'MSG'
error: the web page test needs Chromium and its driver, and this user cannot install them.
  Debian/Ubuntu:  sudo apt-get install chromium chromium-driver
  Fedora:         sudo dnf install chromium chromedriver
  macOS:          brew install --cask chromium && brew install chromedriver
Then run `make test` again (or `make test FACEREC_SKIP_BROWSER=1` to skip that one test, said in the summary).
MSG
exit 1
