#!/usr/bin/env bash
# The headless browser of the report page's test (tests/test_report_page.py): Debian's Chromium and its chromedriver.
#
#   .ci/browser.sh install   # apt-get chromium and chromium-driver if missing (root or sudo; no-op when present)
#   .ci/browser.sh status    # exit 0 if both are installed, printing their versions
#
# The test drives them through selenium (pinned in requirements.lock) with a fresh profile and no network services;
# TICKETBENCH_REQUIRE_BROWSER=1 (.ci/run sets it) turns its "not installed" skip into a failure.
set -euo pipefail

PACKAGES=(chromium chromium-driver)
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

die() { echo "browser.sh: error: $*" >&2; exit 1; }
log() { echo "browser.sh: $*" >&2; }

installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || return 1
    done
    [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]
}

versions() { "$CHROMEDRIVER" --version | cut -d' ' -f1-2; dpkg-query -W -f='chromium ${Version}\n' chromium; }

cmd_install() {
    if installed; then
        log "chromium and chromium-driver already installed"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${PACKAGES[*]}"
        sudo="sudo"
    fi
    # The lock timeout: the other installs of .ci/run may hold apt's lock.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600)
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $sudo "${apt[@]}" update
    fi
    log "apt-get install ${PACKAGES[*]}"
    $sudo "${apt[@]}" install --no-install-recommends "${PACKAGES[@]}"
    installed || die "${PACKAGES[*]} still missing after apt-get install"
    log "installed: $(versions | paste -sd' ')"
}

cmd_status() {
    if installed; then versions; else echo "not installed: ${PACKAGES[*]}"; return 1; fi
}

case "${1:-}" in
    install) cmd_install ;;
    status) cmd_status ;;
    *) sed -n '2,5p' "$0" >&2; exit 2 ;;
esac
