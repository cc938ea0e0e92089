"""Sends logs and metrics to steward through the official OpenTelemetry Python SDK.

Usage: otel_client.py ENDPOINT MARKER
  ENDPOINT  the OTLP/HTTP base URL, e.g. http://127.0.0.1:4318
  MARKER    a word put in every log body, so a test can find exactly these records

Logs go through Python's logging module and the SDK's LoggingHandler, metrics through
a counter, a histogram and an up-down counter; both exporters use protobuf over HTTP
with gzip, as a real service would. Exits non-zero if an export reports failure.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def main() -> int:
    endpoint, marker = sys.argv[1].rstrip("/"), sys.argv[2]
    resource = Resource.create({"service.name": "otel-python", "deployment.environment": "test"})

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", compression=Compression.Gzip)
        )
    )
    log = logging.getLogger("shop")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logs))
    for i in range(20):
        log.info("order %d shipped to warehouse %d %s", 1000 + i, i % 3, marker)
    log.warning("inventory low for sku %d %s", 77, marker)
    log.error("payment gateway unreachable after %d retries %s", 3, marker)

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", compression=Compression.Gzip),
        export_interval_millis=3_600_000,
    )
    metrics = MeterProvider(resource=resource, metric_readers=[reader])
    meter = metrics.get_meter("shop")
    meter.create_counter("orders_shipped").add(20, {"region": "eu"})
    duration = meter.create_histogram("checkout_duration_ms")
    for value in (12.0, 15.0, 30.0):
        duration.record(value, {"region": "eu"})
    meter.create_up_down_counter("queue_depth").add(5)

    ok = metrics.force_flush(timeout_millis=10_000)
    ok = logs.force_flush(timeout_millis=10_000) and ok
    metrics.shutdown()
    logs.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
