# What the real-Prometheus test (crates/steward-watch/tests/prometheus.rs) needs:
# Debian's Prometheus server, which the test starts itself on a free port with its own
# configuration and data directory. The package starts a system service on :9090 when
# it is installed; that one is stopped so it neither holds the port nor scrapes.

if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
    echo "scripts/deps/30-prometheus: installing prometheus" >&2
    if [ "$(id -u)" = 0 ]; then
        (DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; }) ||
            echo "scripts/deps/30-prometheus: could not install prometheus" >&2
        # Without systemd the package's init script starts the daemon; with it, the unit.
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            systemctl disable --now prometheus >/dev/null 2>&1 || true
        fi
        if [ -x /etc/init.d/prometheus ]; then
            /etc/init.d/prometheus stop >/dev/null 2>&1 || true
        fi
    else
        echo "scripts/deps/30-prometheus: not root, cannot install prometheus" >&2
    fi
fi
