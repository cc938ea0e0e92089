# What the watch service's tests need: Debian's Chromium (the dashboard test drives it
# headless) and a Python virtual environment with the official OpenTelemetry SDK and
# its OTLP/HTTP exporter (the real-client test sends through it). Each is installed
# only when missing; the venv lives under the git-ignored bench/out/.

if [ ! -x /usr/bin/chromium ]; then
    echo "scripts/deps/20-watch: installing chromium" >&2
    if [ "$(id -u)" = 0 ]; then
        (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }) ||
            echo "scripts/deps/20-watch: could not install chromium" >&2
    fi
fi

STEWARD_OTEL_VENV="${STEWARD_ROOT:-$PWD}/bench/out/otel-venv"
export STEWARD_OTEL_PYTHON="$STEWARD_OTEL_VENV/bin/python"
if ! "$STEWARD_OTEL_PYTHON" -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http" 2>/dev/null; then
    echo "scripts/deps/20-watch: creating the OpenTelemetry Python venv" >&2
    if ! python3 -m venv "$STEWARD_OTEL_VENV" >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] && apt-get install -y --no-install-recommends python3-venv >/dev/null 2>&1
        python3 -m venv "$STEWARD_OTEL_VENV" >/dev/null 2>&1 || true
    fi
    "$STEWARD_OTEL_VENV/bin/pip" install --quiet --disable-pip-version-check \
        opentelemetry-sdk opentelemetry-exporter-otlp-proto-http >/dev/null 2>&1 ||
        echo "scripts/deps/20-watch: could not install the OpenTelemetry SDK" >&2
fi
