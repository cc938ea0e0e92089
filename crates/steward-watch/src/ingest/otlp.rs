//! OTLP over HTTP: `POST /v1/logs` and `POST /v1/metrics`, protobuf or JSON.
//!
//! Both encodings are first turned into the same protobuf structs ([`proto`]) and then
//! mapped once onto steward's vocabulary, so the JSON path cannot drift from the
//! protobuf path. The JSON reader accepts what the OTLP/JSON mapping allows: camelCase
//! or snake_case field names, 64-bit integers as numbers or strings, hex trace ids.

use std::collections::BTreeMap;

use prost::Message;
use serde_json::Value;
use steward_core::{LogLevel, LogRecord, Sample, SeriesKey};

use super::{Decoded, Format, IngestError, nanos_to_ms, now_ms};

pub mod proto;

/// The resource attribute that names a service, and the label steward files it under.
const SERVICE_NAME: &str = "service.name";

/// Decodes an `ExportLogsServiceRequest` into log records.
pub fn decode_logs(body: &[u8], format: Format) -> Result<Decoded<LogRecord>, IngestError> {
    let request = match format {
        Format::Protobuf => proto::ExportLogsServiceRequest::decode(body)
            .map_err(|e| IngestError::Malformed(format!("invalid OTLP logs protobuf: {e}")))?,
        Format::Json => json::logs_request(&parse_json(body)?)?,
    };
    Ok(logs_from_proto(request))
}

/// Decodes an `ExportMetricsServiceRequest` into samples.
pub fn decode_metrics(
    body: &[u8],
    format: Format,
) -> Result<Decoded<(SeriesKey, Sample)>, IngestError> {
    let request = match format {
        Format::Protobuf => proto::ExportMetricsServiceRequest::decode(body)
            .map_err(|e| IngestError::Malformed(format!("invalid OTLP metrics protobuf: {e}")))?,
        Format::Json => json::metrics_request(&parse_json(body)?)?,
    };
    Ok(metrics_from_proto(request))
}

fn parse_json(body: &[u8]) -> Result<Value, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::Malformed(format!("invalid JSON: {e}")))
}

/// The answer to an export: empty when everything was taken, with partial success
/// otherwise, in the request's encoding.
pub fn logs_response(rejected: u64, error: Option<&str>, format: Format) -> Vec<u8> {
    let partial = (rejected > 0).then(|| proto::ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: error.unwrap_or_default().to_string(),
    });
    match format {
        Format::Protobuf => proto::ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Format::Json => {
            let value = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records,
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            value.to_string().into_bytes()
        }
    }
}

/// The answer to a metrics export, like [`logs_response`].
pub fn metrics_response(rejected: u64, error: Option<&str>, format: Format) -> Vec<u8> {
    let partial = (rejected > 0).then(|| proto::ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: error.unwrap_or_default().to_string(),
    });
    match format {
        Format::Protobuf => proto::ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Format::Json => {
            let value = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": p.rejected_data_points,
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            value.to_string().into_bytes()
        }
    }
}

/// Renders an attribute value as the text steward stores: strings as they are,
/// everything else as compact JSON.
fn any_to_string(value: &proto::AnyValue) -> String {
    use proto::any_value::Value as V;
    match &value.value {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => hex(b),
        Some(_) => any_to_json(value).to_string(),
    }
}

fn any_to_json(value: &proto::AnyValue) -> Value {
    use proto::any_value::Value as V;
    match &value.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::from(s.as_str()),
        Some(V::BoolValue(b)) => Value::from(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => Value::from(*d),
        Some(V::BytesValue(b)) => Value::from(hex(b)),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(any_to_json).collect()),
        Some(V::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(Value::Null, any_to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn service_of(resource: Option<&proto::Resource>) -> Option<String> {
    resource?
        .attributes
        .iter()
        .find(|kv| kv.key == SERVICE_NAME)
        .and_then(|kv| kv.value.as_ref())
        .map(any_to_string)
        .filter(|s| !s.is_empty())
}

/// Maps decoded OTLP logs onto log records. A record with neither a body nor an event
/// name carries nothing to mine and is rejected.
pub fn logs_from_proto(request: proto::ExportLogsServiceRequest) -> Decoded<LogRecord> {
    let mut out = Decoded::default();
    let now = now_ms();
    for resource_logs in request.resource_logs {
        let service = service_of(resource_logs.resource.as_ref());
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                let proto::LogRecord {
                    time_unix_nano,
                    observed_time_unix_nano,
                    severity_number,
                    severity_text,
                    body,
                    attributes: kvs,
                    trace_id,
                    span_id,
                    event_name,
                } = record;
                // Strings are moved out of the decoded message, not copied.
                let body = match body.and_then(|b| b.value) {
                    Some(proto::any_value::Value::StringValue(s)) => s,
                    Some(other) => any_to_string(&proto::AnyValue { value: Some(other) }),
                    None if !event_name.is_empty() => event_name,
                    None => {
                        out.reject(|| "log record has no body".to_string());
                        continue;
                    }
                };
                let level = LogLevel::from_otlp_severity(severity_number)
                    .or_else(|| severity_text.parse().ok());
                let mut attributes = BTreeMap::new();
                for kv in kvs {
                    let value = match kv.value.and_then(|v| v.value) {
                        Some(proto::any_value::Value::StringValue(s)) => s,
                        Some(other) => any_to_string(&proto::AnyValue { value: Some(other) }),
                        None => String::new(),
                    };
                    attributes.insert(kv.key, value);
                }
                if !trace_id.is_empty() {
                    attributes.insert("trace_id".into(), hex(&trace_id));
                }
                if !span_id.is_empty() {
                    attributes.insert("span_id".into(), hex(&span_id));
                }
                let timestamp_ms = nanos_to_ms(time_unix_nano)
                    .or_else(|| nanos_to_ms(observed_time_unix_nano))
                    .unwrap_or(now);
                out.items.push(LogRecord {
                    timestamp_ms: Some(timestamp_ms),
                    service: service.clone(),
                    level,
                    body,
                    attributes,
                });
            }
        }
    }
    out
}

/// Maps decoded OTLP metrics onto samples. Gauges and sums give one sample per point;
/// histograms and summaries give `_count` and `_sum` series (and one series per
/// quantile for summaries), as Prometheus names them; a monotonic, cumulative sum (an
/// OpenTelemetry counter) gets the `_total` suffix Prometheus's OTLP receiver gives
/// it, which is also how the detectors know to judge it by its rate. A metric
/// without a name, or a point without a value, is rejected.
pub fn metrics_from_proto(
    request: proto::ExportMetricsServiceRequest,
) -> Decoded<(SeriesKey, Sample)> {
    use proto::metric::Data;
    let mut out = Decoded::default();
    let now = now_ms();
    for resource_metrics in request.resource_metrics {
        let service = service_of(resource_metrics.resource.as_ref());
        let key = |name: &str, attributes: &[proto::KeyValue]| {
            let mut key = SeriesKey::new(name);
            if let Some(service) = &service {
                key.labels.insert("service".into(), service.clone());
            }
            for kv in attributes {
                let value = kv.value.as_ref().map(any_to_string).unwrap_or_default();
                key.labels.insert(kv.key.clone(), value);
            }
            key
        };
        let ts = |nanos: u64| nanos_to_ms(nanos).unwrap_or(now);
        for scope_metrics in resource_metrics.scope_metrics {
            for metric in scope_metrics.metrics {
                if metric.name.is_empty() {
                    let n = points_in(metric.data.as_ref());
                    for _ in 0..n.max(1) {
                        out.reject(|| "metric has no name".to_string());
                    }
                    continue;
                }
                let counter_name;
                let name = match &metric.data {
                    Some(Data::Sum(sum))
                        if sum.is_monotonic
                            && sum.aggregation_temporality != TEMPORALITY_DELTA
                            && !metric.name.ends_with("_total") =>
                    {
                        counter_name = format!("{}_total", metric.name);
                        counter_name.as_str()
                    }
                    _ => metric.name.as_str(),
                };
                match &metric.data {
                    None => out.reject(|| format!("metric {name:?} has no data")),
                    Some(Data::Gauge(proto::Gauge { data_points }))
                    | Some(Data::Sum(proto::Sum { data_points, .. })) => {
                        for point in data_points {
                            let value = match point.value {
                                Some(proto::number_data_point::Value::AsDouble(v)) => v,
                                #[allow(clippy::cast_precision_loss)]
                                Some(proto::number_data_point::Value::AsInt(v)) => v as f64,
                                None => {
                                    out.reject(|| format!("a point of {name:?} has no value"));
                                    continue;
                                }
                            };
                            out.items.push((
                                key(name, &point.attributes),
                                Sample::new(ts(point.time_unix_nano), value),
                            ));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for point in &h.data_points {
                            let attrs = &point.attributes;
                            let t = ts(point.time_unix_nano);
                            push_count_and_sum(
                                &mut out.items,
                                &key,
                                name,
                                attrs,
                                t,
                                point.count,
                                point.sum,
                            );
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for point in &h.data_points {
                            let attrs = &point.attributes;
                            let t = ts(point.time_unix_nano);
                            push_count_and_sum(
                                &mut out.items,
                                &key,
                                name,
                                attrs,
                                t,
                                point.count,
                                point.sum,
                            );
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for point in &s.data_points {
                            let attrs = &point.attributes;
                            let t = ts(point.time_unix_nano);
                            push_count_and_sum(
                                &mut out.items,
                                &key,
                                name,
                                attrs,
                                t,
                                point.count,
                                Some(point.sum),
                            );
                            for q in &point.quantile_values {
                                let k = key(name, &point.attributes)
                                    .with_label("quantile", q.quantile.to_string());
                                out.items.push((k, Sample::new(t, q.value)));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// OTLP's `AGGREGATION_TEMPORALITY_DELTA`: each point counts only its own interval.
const TEMPORALITY_DELTA: i32 = 1;

/// The `_count` and `_sum` series of a histogram or summary point, as Prometheus names them.
fn push_count_and_sum(
    items: &mut Vec<(SeriesKey, Sample)>,
    key: &impl Fn(&str, &[proto::KeyValue]) -> SeriesKey,
    name: &str,
    attributes: &[proto::KeyValue],
    t: i64,
    count: u64,
    sum: Option<f64>,
) {
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    items.push((
        key(&format!("{name}_count"), attributes),
        Sample::new(t, count),
    ));
    if let Some(sum) = sum {
        items.push((key(&format!("{name}_sum"), attributes), Sample::new(t, sum)));
    }
}

fn points_in(data: Option<&proto::metric::Data>) -> usize {
    use proto::metric::Data;
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// OTLP/JSON into the protobuf structs.
mod json {
    use serde_json::{Map, Value};

    use super::proto;
    use crate::ingest::IngestError;

    type Obj = Map<String, Value>;

    fn malformed(msg: impl Into<String>) -> IngestError {
        IngestError::Malformed(msg.into())
    }

    /// A field by its camelCase or snake_case name.
    fn field<'a>(obj: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
        obj.get(camel)
            .or_else(|| obj.get(snake))
            .filter(|v| !v.is_null())
    }

    fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Obj, IngestError> {
        value
            .as_object()
            .ok_or_else(|| malformed(format!("{what}: expected a JSON object")))
    }

    fn array<'a>(obj: &'a Obj, camel: &str, snake: &str) -> Result<&'a [Value], IngestError> {
        match field(obj, camel, snake) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(malformed(format!("`{camel}`: expected an array"))),
        }
    }

    fn string(obj: &Obj, camel: &str, snake: &str) -> Result<String, IngestError> {
        match field(obj, camel, snake) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(malformed(format!("`{camel}`: expected a string"))),
        }
    }

    /// A 64-bit unsigned integer: the JSON mapping allows a number or a decimal string.
    fn u64_of(obj: &Obj, camel: &str, snake: &str) -> Result<u64, IngestError> {
        match field(obj, camel, snake) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| malformed(format!("`{camel}`: expected an unsigned integer"))),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| malformed(format!("`{camel}`: expected an unsigned integer"))),
            Some(_) => Err(malformed(format!("`{camel}`: expected an integer"))),
        }
    }

    fn i64_value(value: &Value, what: &str) -> Result<i64, IngestError> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| malformed(format!("`{what}`: expected an integer"))),
            Value::String(s) => s
                .parse()
                .map_err(|_| malformed(format!("`{what}`: expected an integer"))),
            _ => Err(malformed(format!("`{what}`: expected an integer"))),
        }
    }

    fn f64_value(value: &Value, what: &str) -> Result<f64, IngestError> {
        match value {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| malformed(format!("`{what}`: expected a number"))),
            Value::String(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => s
                    .parse()
                    .map_err(|_| malformed(format!("`{what}`: expected a number"))),
            },
            _ => Err(malformed(format!("`{what}`: expected a number"))),
        }
    }

    fn i32_of(obj: &Obj, camel: &str, snake: &str) -> Result<i32, IngestError> {
        match field(obj, camel, snake) {
            None => Ok(0),
            Some(v) => i32::try_from(i64_value(v, camel)?)
                .map_err(|_| malformed(format!("`{camel}`: out of range"))),
        }
    }

    /// Hex for trace and span ids (the OTLP/JSON exception); anything else is dropped
    /// rather than failing the record, since ids are only carried along.
    fn hex_bytes(obj: &Obj, camel: &str, snake: &str) -> Vec<u8> {
        let Some(Value::String(s)) = field(obj, camel, snake) else {
            return Vec::new();
        };
        if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Vec::new();
        }
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }

    fn any_value(value: &Value, depth: usize) -> Result<proto::AnyValue, IngestError> {
        use proto::any_value::Value as V;
        if depth > 32 {
            return Err(malformed("attribute value nested too deeply"));
        }
        let obj = object(value, "AnyValue")?;
        let v = if let Some(s) = field(obj, "stringValue", "string_value") {
            V::StringValue(
                s.as_str()
                    .ok_or_else(|| malformed("`stringValue`: expected a string"))?
                    .to_string(),
            )
        } else if let Some(b) = field(obj, "boolValue", "bool_value") {
            V::BoolValue(
                b.as_bool()
                    .ok_or_else(|| malformed("`boolValue`: expected a boolean"))?,
            )
        } else if let Some(i) = field(obj, "intValue", "int_value") {
            V::IntValue(i64_value(i, "intValue")?)
        } else if let Some(d) = field(obj, "doubleValue", "double_value") {
            V::DoubleValue(f64_value(d, "doubleValue")?)
        } else if let Some(a) = field(obj, "arrayValue", "array_value") {
            let values = array(object(a, "arrayValue")?, "values", "values")?
                .iter()
                .map(|v| any_value(v, depth + 1))
                .collect::<Result<_, _>>()?;
            V::ArrayValue(proto::ArrayValue { values })
        } else if let Some(kv) = field(obj, "kvlistValue", "kvlist_value") {
            let values = key_values(
                array(object(kv, "kvlistValue")?, "values", "values")?,
                depth + 1,
            )?;
            V::KvlistValue(proto::KeyValueList { values })
        } else if let Some(b) = field(obj, "bytesValue", "bytes_value") {
            V::BytesValue(
                b.as_str()
                    .ok_or_else(|| malformed("`bytesValue`: expected a string"))?
                    .as_bytes()
                    .to_vec(),
            )
        } else {
            return Ok(proto::AnyValue { value: None });
        };
        Ok(proto::AnyValue { value: Some(v) })
    }

    fn key_values(items: &[Value], depth: usize) -> Result<Vec<proto::KeyValue>, IngestError> {
        items
            .iter()
            .map(|item| {
                let obj = object(item, "KeyValue")?;
                Ok(proto::KeyValue {
                    key: string(obj, "key", "key")?,
                    value: field(obj, "value", "value")
                        .map(|v| any_value(v, depth))
                        .transpose()?,
                })
            })
            .collect()
    }

    fn resource(obj: &Obj) -> Result<Option<proto::Resource>, IngestError> {
        field(obj, "resource", "resource")
            .map(|r| {
                Ok(proto::Resource {
                    attributes: key_values(
                        array(object(r, "resource")?, "attributes", "attributes")?,
                        0,
                    )?,
                })
            })
            .transpose()
    }

    pub fn logs_request(value: &Value) -> Result<proto::ExportLogsServiceRequest, IngestError> {
        let root = object(value, "request")?;
        let mut request = proto::ExportLogsServiceRequest::default();
        for rl in array(root, "resourceLogs", "resource_logs")? {
            let rl = object(rl, "resourceLogs")?;
            let mut out = proto::ResourceLogs {
                resource: resource(rl)?,
                scope_logs: Vec::new(),
            };
            for sl in array(rl, "scopeLogs", "scope_logs")? {
                let sl = object(sl, "scopeLogs")?;
                let mut scope = proto::ScopeLogs::default();
                for r in array(sl, "logRecords", "log_records")? {
                    let r = object(r, "logRecord")?;
                    scope.log_records.push(proto::LogRecord {
                        time_unix_nano: u64_of(r, "timeUnixNano", "time_unix_nano")?,
                        observed_time_unix_nano: u64_of(
                            r,
                            "observedTimeUnixNano",
                            "observed_time_unix_nano",
                        )?,
                        severity_number: i32_of(r, "severityNumber", "severity_number")?,
                        severity_text: string(r, "severityText", "severity_text")?,
                        body: field(r, "body", "body")
                            .map(|b| any_value(b, 0))
                            .transpose()?,
                        attributes: key_values(array(r, "attributes", "attributes")?, 0)?,
                        trace_id: hex_bytes(r, "traceId", "trace_id"),
                        span_id: hex_bytes(r, "spanId", "span_id"),
                        event_name: string(r, "eventName", "event_name")?,
                    });
                }
                out.scope_logs.push(scope);
            }
            request.resource_logs.push(out);
        }
        Ok(request)
    }

    fn number_points(obj: &Obj) -> Result<Vec<proto::NumberDataPoint>, IngestError> {
        use proto::number_data_point::Value as N;
        array(obj, "dataPoints", "data_points")?
            .iter()
            .map(|p| {
                let p = object(p, "dataPoint")?;
                let value = if let Some(d) = field(p, "asDouble", "as_double") {
                    Some(N::AsDouble(f64_value(d, "asDouble")?))
                } else if let Some(i) = field(p, "asInt", "as_int") {
                    Some(N::AsInt(i64_value(i, "asInt")?))
                } else {
                    None
                };
                Ok(proto::NumberDataPoint {
                    attributes: key_values(array(p, "attributes", "attributes")?, 0)?,
                    start_time_unix_nano: u64_of(p, "startTimeUnixNano", "start_time_unix_nano")?,
                    time_unix_nano: u64_of(p, "timeUnixNano", "time_unix_nano")?,
                    value,
                })
            })
            .collect()
    }

    fn opt_f64(obj: &Obj, camel: &str) -> Result<Option<f64>, IngestError> {
        field(obj, camel, camel)
            .map(|v| f64_value(v, camel))
            .transpose()
    }

    pub fn metrics_request(
        value: &Value,
    ) -> Result<proto::ExportMetricsServiceRequest, IngestError> {
        use proto::metric::Data;
        let root = object(value, "request")?;
        let mut request = proto::ExportMetricsServiceRequest::default();
        for rm in array(root, "resourceMetrics", "resource_metrics")? {
            let rm = object(rm, "resourceMetrics")?;
            let mut out = proto::ResourceMetrics {
                resource: resource(rm)?,
                scope_metrics: Vec::new(),
            };
            for sm in array(rm, "scopeMetrics", "scope_metrics")? {
                let sm = object(sm, "scopeMetrics")?;
                let mut scope = proto::ScopeMetrics::default();
                for m in array(sm, "metrics", "metrics")? {
                    let m = object(m, "metric")?;
                    let data = if let Some(g) = field(m, "gauge", "gauge") {
                        Some(Data::Gauge(proto::Gauge {
                            data_points: number_points(object(g, "gauge")?)?,
                        }))
                    } else if let Some(s) = field(m, "sum", "sum") {
                        let s = object(s, "sum")?;
                        Some(Data::Sum(proto::Sum {
                            data_points: number_points(s)?,
                            aggregation_temporality: i32_of(
                                s,
                                "aggregationTemporality",
                                "aggregation_temporality",
                            )?,
                            is_monotonic: field(s, "isMonotonic", "is_monotonic")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        }))
                    } else if let Some(h) = field(m, "histogram", "histogram") {
                        let points = array(object(h, "histogram")?, "dataPoints", "data_points")?
                            .iter()
                            .map(|p| {
                                let p = object(p, "dataPoint")?;
                                Ok(proto::HistogramDataPoint {
                                    attributes: key_values(
                                        array(p, "attributes", "attributes")?,
                                        0,
                                    )?,
                                    time_unix_nano: u64_of(p, "timeUnixNano", "time_unix_nano")?,
                                    count: u64_of(p, "count", "count")?,
                                    sum: opt_f64(p, "sum")?,
                                    ..proto::HistogramDataPoint::default()
                                })
                            })
                            .collect::<Result<_, IngestError>>()?;
                        Some(Data::Histogram(proto::Histogram {
                            data_points: points,
                            aggregation_temporality: 0,
                        }))
                    } else if let Some(s) = field(m, "summary", "summary") {
                        let points = array(object(s, "summary")?, "dataPoints", "data_points")?
                            .iter()
                            .map(|p| {
                                let p = object(p, "dataPoint")?;
                                let quantiles = array(p, "quantileValues", "quantile_values")?
                                    .iter()
                                    .map(|q| {
                                        let q = object(q, "quantileValue")?;
                                        Ok(proto::ValueAtQuantile {
                                            quantile: opt_f64(q, "quantile")?.unwrap_or(0.0),
                                            value: opt_f64(q, "value")?.unwrap_or(0.0),
                                        })
                                    })
                                    .collect::<Result<_, IngestError>>()?;
                                Ok(proto::SummaryDataPoint {
                                    attributes: key_values(
                                        array(p, "attributes", "attributes")?,
                                        0,
                                    )?,
                                    time_unix_nano: u64_of(p, "timeUnixNano", "time_unix_nano")?,
                                    count: u64_of(p, "count", "count")?,
                                    sum: opt_f64(p, "sum")?.unwrap_or(0.0),
                                    quantile_values: quantiles,
                                    ..proto::SummaryDataPoint::default()
                                })
                            })
                            .collect::<Result<_, IngestError>>()?;
                        Some(Data::Summary(proto::Summary {
                            data_points: points,
                        }))
                    } else {
                        None
                    };
                    scope.metrics.push(proto::Metric {
                        name: string(m, "name", "name")?,
                        description: string(m, "description", "description")?,
                        unit: string(m, "unit", "unit")?,
                        data,
                    });
                }
                out.scope_metrics.push(scope);
            }
            request.resource_metrics.push(out);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> proto::KeyValue {
        proto::KeyValue {
            key: key.into(),
            value: Some(proto::AnyValue {
                value: Some(proto::any_value::Value::StringValue(value.into())),
            }),
        }
    }

    #[test]
    fn protobuf_logs_map_to_records_and_reject_empty_ones() {
        let request = proto::ExportLogsServiceRequest {
            resource_logs: vec![proto::ResourceLogs {
                resource: Some(proto::Resource {
                    attributes: vec![kv("service.name", "cart")],
                }),
                scope_logs: vec![proto::ScopeLogs {
                    scope: None,
                    log_records: vec![
                        proto::LogRecord {
                            time_unix_nano: 1_700_000_000_123_000_000,
                            severity_number: 17,
                            body: Some(proto::AnyValue {
                                value: Some(proto::any_value::Value::StringValue(
                                    "payment failed for order 42".into(),
                                )),
                            }),
                            attributes: vec![kv("order", "42")],
                            trace_id: vec![0xab, 0x01],
                            ..proto::LogRecord::default()
                        },
                        proto::LogRecord::default(),
                    ],
                }],
            }],
        };
        let body = request.encode_to_vec();
        let decoded = decode_logs(&body, Format::Protobuf).unwrap();
        assert_eq!(decoded.rejected, 1);
        assert_eq!(
            decoded.first_error.as_deref(),
            Some("log record has no body")
        );
        let record = &decoded.items[0];
        assert_eq!(record.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(record.service.as_deref(), Some("cart"));
        assert_eq!(record.level, Some(LogLevel::Error));
        assert_eq!(record.attributes["trace_id"], "ab01");
        assert_eq!(record.attributes["order"], "42");
    }

    #[test]
    fn json_logs_accept_both_spellings_and_string_integers() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"db"}}]},
          "scopeLogs":[{"logRecords":[
            {"timeUnixNano":"1700000000000000000","severityText":"WARN","body":{"stringValue":"slow query 2003 ms"},"traceId":"00ff"},
            {"time_unix_nano":1700000000001000000,"severity_number":9,"body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"3"}}]}}}
          ]}]}]}"#;
        let decoded = decode_logs(body, Format::Json).unwrap();
        assert_eq!(decoded.rejected, 0);
        assert_eq!(decoded.items.len(), 2);
        assert_eq!(decoded.items[0].level, Some(LogLevel::Warn));
        assert_eq!(decoded.items[0].attributes["trace_id"], "00ff");
        assert_eq!(decoded.items[1].body, r#"{"a":3}"#);
        assert_eq!(decoded.items[1].timestamp_ms, Some(1_700_000_000_001));
    }

    #[test]
    fn malformed_bodies_are_errors_with_reasons() {
        let err = decode_logs(b"{not json", Format::Json).unwrap_err();
        assert!(err.to_string().starts_with("invalid JSON"), "{err}");
        let err = decode_logs(br#"{"resourceLogs":{}}"#, Format::Json).unwrap_err();
        assert!(err.to_string().contains("resourceLogs"), "{err}");
        let err = decode_logs(&[0xff, 0xff, 0xff], Format::Protobuf).unwrap_err();
        assert!(err.to_string().contains("protobuf"), "{err}");
    }

    #[test]
    fn metrics_of_every_kind_become_samples() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
          "scopeMetrics":[{"metrics":[
            {"name":"disk.used","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":0.5,"attributes":[{"key":"mount","value":{"stringValue":"/"}}]}]}},
            {"name":"requests","sum":{"isMonotonic":true,"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"7"},{"timeUnixNano":"1700000000000000000"}]}},
            {"name":"latency","histogram":{"dataPoints":[{"timeUnixNano":"1700000000000000000","count":"4","sum":2.5}]}},
            {"name":"","gauge":{"dataPoints":[{"asDouble":1}]}},
            {"name":"per_interval","sum":{"isMonotonic":true,"aggregationTemporality":1,"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"3"}]}}
          ]}]}]}"#;
        let decoded = decode_metrics(body, Format::Json).unwrap();
        let keys: Vec<String> = decoded.items.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            keys,
            [
                r#"disk.used{mount="/",service="api"}"#,
                r#"requests_total{service="api"}"#,
                r#"latency_count{service="api"}"#,
                r#"latency_sum{service="api"}"#,
                // A delta sum is already a count per interval: no counter suffix.
                r#"per_interval{service="api"}"#,
            ]
        );
        assert_eq!(decoded.items[1].1.value, 7.0);
        assert_eq!(decoded.rejected, 2);
    }

    #[test]
    fn responses_carry_partial_success() {
        let bytes = logs_response(2, Some("log record has no body"), Format::Protobuf);
        let response = proto::ExportLogsServiceResponse::decode(&bytes[..]).unwrap();
        assert_eq!(response.partial_success.unwrap().rejected_log_records, 2);
        assert_eq!(logs_response(0, None, Format::Json), b"{}");
    }
}
