# Streamwire's system packages (sourced by scripts/quickstart, scripts/test and .ci/run).
# Debian 12 / Ubuntu names. GStreamer 1.22 is the floor.

# Needed to build and run Streamwire.
STREAMWIRE_APT_PACKAGES="build-essential pkg-config ca-certificates \
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev \
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-tools \
gstreamer1.0-plugins-base-apps gstreamer1.0-x"

# Additionally needed by the test suite: `ip`, `unshare` and `nsenter` for the network
# namespaces, Chromium for the browser interop tests, node (Debian `nodejs`) for the web
# client's unit tests, ffmpeg (`ffprobe`) for the recording checks, coturn (`turnserver`) for
# the TURN tests, nftables to cut paths and drop traffic inside a test's namespace, Janus
# (VideoRoom) for the SFU tests.
STREAMWIRE_APT_TEST_PACKAGES="iproute2 util-linux chromium nodejs ffmpeg coturn nftables janus"

# Print the packages from the given list that are not installed.
streamwire_missing_packages() {
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            printf '%s\n' "$p"
        fi
    done
}

# Install missing packages on Debian/Ubuntu; elsewhere print what to do and return 1 when
# GStreamer >= 1.22 is not found.
streamwire_ensure_packages() {
    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        missing=$(streamwire_missing_packages "$@")
        if [ -n "$missing" ]; then
            echo "Installing missing packages:" $missing
            if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
            $SUDO apt-get update
            # shellcheck disable=SC2086
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
        fi
        return 0
    fi
    if pkg-config --atleast-version=1.22 gstreamer-1.0 2>/dev/null; then
        return 0
    fi
    cat >&2 <<'MSG'
GStreamer 1.22 or newer (with development files and plugins) is needed.
  macOS (Homebrew):  brew install gstreamer pkg-config rustup && rustup-init
  Nix:               nix develop        # uses flake.nix: Rust, GStreamer and all plugins
  Fedora:            sudo dnf install gstreamer1-devel gstreamer1-plugins-base-devel \
                       gstreamer1-plugins-bad-free-devel gstreamer1-plugins-good \
                       gstreamer1-plugins-ugly-free gstreamer1-libav libnice-gstreamer1
Then run this script again.
MSG
    return 1
}

streamwire_ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        cat >&2 <<'MSG'
Rust is needed (1.95 or newer). Install it with rustup:
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or `. "$HOME/.cargo/env"`) and run this script again.
MSG
        return 1
    fi
}
