# Shared helpers for the ops scripts (sourced, not run).

step() { printf '\n== %s\n' "$*"; }

# Puts a Swift 6 toolchain on PATH: an existing one, or /opt/swift's.
require_swift() {
    if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
        export PATH=/opt/swift/usr/bin:$PATH
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "swift not found: install a Swift 6 toolchain (swift.org) and put it on PATH" >&2
        exit 1
    fi
}
