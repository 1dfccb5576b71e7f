//! Tests of the method-specific collector parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;

fn import_value(v: &Value) -> Result<DataSource, DatasourceError> {
    import(&serde_json::to_string(v).unwrap())
}

fn builtin_doc(name: &str) -> Value {
    let ds = builtins().into_iter().find(|d| d.name == name).unwrap();
    serde_json::from_str(&export(&ds)).unwrap()
}

fn invalid(mut v: Value, change: impl FnOnce(&mut Value)) -> DatasourceError {
    change(&mut v);
    match import_value(&v) {
        Err(e) => e,
        Ok(_) => panic!("accepted: {v}"),
    }
}

fn field_of(e: &DatasourceError) -> String {
    match e {
        DatasourceError::Oid { field, .. }
        | DatasourceError::Instances { field, .. }
        | DatasourceError::Inconsistent { field, .. }
        | DatasourceError::Empty { field }
        | DatasourceError::ParserField { field, .. }
        | DatasourceError::Regex { field, .. }
        | DatasourceError::Url { field, .. }
        | DatasourceError::Template { field, .. }
        | DatasourceError::JsonPointer { field, .. }
        | DatasourceError::OutOfRange { field, .. }
        | DatasourceError::PromName { field, .. }
        | DatasourceError::ScriptName { field, .. }
        | DatasourceError::Count { field, .. } => field.clone(),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn snmp() {
    let base = builtin_doc("SNMP_Interfaces");
    for bad in [
        "1.3.6.x",
        ".1.3.6",
        "1",
        "1..3",
        "1.3.",
        "1.3.99999999999",
        "",
    ] {
        let e = invalid(base.clone(), |v| {
            v["collector"]["oids"]["ifInErrors"] = json!(bad)
        });
        assert_eq!(field_of(&e), "collector.oids.ifInErrors", "{bad}");
        assert!(matches!(e, DatasourceError::Oid { .. }));
    }
    let e = invalid(base.clone(), |v| {
        v["collector"]["table"]["indexOid"] = json!("ifIndex")
    });
    assert_eq!(field_of(&e), "collector.table.indexOid");
    let e = invalid(base.clone(), |v| v["hasMultiInstances"] = json!(false));
    assert!(matches!(&e, DatasourceError::Instances { field, .. } if field == "collector.table"));
    let e = invalid(builtin_doc("SNMP_System"), |v| {
        v["hasMultiInstances"] = json!(true)
    });
    assert!(matches!(&e, DatasourceError::Instances { field, .. } if field == "collector.table"));
    assert!(is_valid_oid("1.3.6.1.2.1.1.3.0"));
    assert!(is_valid_oid("0.0"));
}

#[test]
fn ssh() {
    let cpu = builtin_doc("HostCPU");
    let e = invalid(cpu.clone(), |v| {
        v["collector"]["fields"]["User"] = json!("usr")
    });
    assert!(matches!(
        &e,
        DatasourceError::ParserField { field, parser: "proc_stat", .. } if field == "collector.fields.User"
    ));
    let e = invalid(cpu.clone(), |v| v["collector"]["command"] = json!("  "));
    assert_eq!(field_of(&e), "collector.command");
    let e = invalid(cpu.clone(), |v| {
        v["collector"]["command"] = json!("cat /proc/stat\nrm -rf /")
    });
    assert_eq!(field_of(&e), "collector.command");
    let e = invalid(cpu.clone(), |v| v["hasMultiInstances"] = json!(true));
    assert_eq!(field_of(&e), "collector.parser");
    let e = invalid(builtin_doc("HostDisk"), |v| {
        v["hasMultiInstances"] = json!(false)
    });
    assert_eq!(field_of(&e), "collector.parser");
    // Target local needs no command.
    let mut local = cpu.clone();
    local["collector"]["target"] = json!("local");
    local["collector"]["command"] = json!("");
    let ds = import_value(&local).unwrap();
    let Collector::Ssh(c) = &ds.collector else {
        panic!()
    };
    assert_eq!(c.target, SshTarget::Local);
    // Omitted target and command read as auto and empty.
    let mut minimal = cpu.clone();
    minimal["collector"]
        .as_object_mut()
        .unwrap()
        .remove("target");
    assert!(import_value(&minimal).is_ok());

    // Generic parsers only over SSH, never on the collector host.
    let mut kv = cpu.clone();
    kv["collector"]["parser"] = json!({"kind": "key_value"});
    kv["collector"]["command"] = json!("/usr/local/bin/stats");
    let e = invalid(kv.clone(), |_| {});
    assert!(
        matches!(&e, DatasourceError::Inconsistent { field, .. } if field == "collector.target")
    );
    kv["collector"]["target"] = json!("ssh");
    let ds = import_value(&kv).unwrap();
    let Collector::Ssh(c) = &ds.collector else {
        panic!()
    };
    assert_eq!(
        c.parser,
        SshParser::KeyValue {
            separator: "=".into()
        }
    );
    let e = invalid(kv.clone(), |v| {
        v["collector"]["fields"]["User"] = json!("a=b")
    });
    assert!(matches!(e, DatasourceError::ParserField { .. }));
    let e = invalid(kv.clone(), |v| {
        v["collector"]["parser"]["separator"] = json!("")
    });
    assert_eq!(field_of(&e), "collector.parser.separator");
}

#[test]
fn ssh_regex() {
    let mut re = builtin_doc("HostDisk");
    re["collector"]["target"] = json!("ssh");
    re["collector"]["parser"] = json!({"kind": "regex", "pattern": r"(?m)^(?P<instance>\S+)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<available>\d+)"});
    assert!(import_value(&re).is_ok());
    let e = invalid(re.clone(), |v| {
        v["collector"]["fields"]["Used"] = json!("usage")
    });
    assert!(
        matches!(&e, DatasourceError::ParserField { parser: "regex", field, .. } if field == "collector.fields.Used")
    );
    let e = invalid(re.clone(), |v| {
        v["collector"]["parser"]["pattern"] =
            json!(r"(?P<total>\d+) (?P<used>\d+) (?P<available>\d+)")
    });
    assert!(matches!(&e, DatasourceError::Regex { .. }));
    let e = invalid(re.clone(), |v| {
        v["collector"]["parser"]["pattern"] = json!("(unclosed")
    });
    assert_eq!(field_of(&e), "collector.parser.pattern");
    let e = invalid(re, |v| {
        v["collector"]["parser"]["pattern"] = json!(r"(?P<instance>\w+){1000}{1000}")
    });
    assert!(matches!(e, DatasourceError::Regex { .. }));
}

#[test]
fn http() {
    let base = builtin_doc("HTTP");
    for bad in [
        "ftp://x/",
        "https://",
        "https:///path",
        "example.com",
        "https://a b/",
    ] {
        let e = invalid(base.clone(), |v| v["collector"]["url"] = json!(bad));
        assert!(matches!(&e, DatasourceError::Url { .. }), "{bad}: {e}");
    }
    let e = invalid(base.clone(), |v| {
        v["collector"]["url"] = json!("https://##system.hostname/")
    });
    assert!(matches!(e, DatasourceError::Template { .. }));
    let e = invalid(base.clone(), |v| {
        v["collector"]["url"] = json!("https://##system.hostname##/?key=##api.key##")
    });
    assert!(matches!(e, DatasourceError::Template { .. }));
    let e = invalid(base.clone(), |v| {
        v["collector"]["url"] = json!("http://##system.hostname##/")
    });
    assert!(
        matches!(&e, DatasourceError::Inconsistent { field, .. } if field == "collector.values.CertDaysToExpiry")
    );
    let e = invalid(base.clone(), |v| v["collector"]["body"] = json!("{}"));
    assert_eq!(field_of(&e), "collector.body");
    let mut post = base.clone();
    post["collector"]["httpMethod"] = json!("POST");
    post["collector"]["body"] = json!("{\"q\": 1}");
    assert!(import_value(&post).is_ok());
    let e = invalid(base.clone(), |v| {
        v["collector"]["expectedStatus"] = json!(99)
    });
    assert_eq!(field_of(&e), "collector.expectedStatus");
    let e = invalid(base.clone(), |v| v["hasMultiInstances"] = json!(true));
    assert_eq!(field_of(&e), "hasMultiInstances");
    let e = invalid(base.clone(), |v| {
        v["collector"]["values"]["BodyBytes"] = json!("json:a/b")
    });
    assert!(matches!(e, DatasourceError::JsonPointer { .. }));
    let e = invalid(base.clone(), |v| {
        v["collector"]["values"]["BodyBytes"] = json!("json:/a~2")
    });
    assert!(matches!(e, DatasourceError::JsonPointer { .. }));
    let mut json_value = base;
    json_value["collector"]["values"]["BodyBytes"] = json!("json:/status/queue~1depth");
    let ds = import_value(&json_value).unwrap();
    let Collector::Http(c) = &ds.collector else {
        panic!()
    };
    assert_eq!(
        c.values["BodyBytes"],
        HttpValue::Json("/status/queue~1depth".into())
    );
    assert!(export(&ds).contains("\"BodyBytes\": \"json:/status/queue~1depth\""));
}

#[test]
fn ping() {
    let base = builtin_doc("Ping");
    for bad in [0, 21] {
        let e = invalid(base.clone(), |v| v["collector"]["count"] = json!(bad));
        assert_eq!(field_of(&e), "collector.count");
    }
    let e = invalid(base.clone(), |v| {
        v["collectInterval"] = json!(10);
        v["collector"]["count"] = json!(20);
    });
    assert_eq!(field_of(&e), "collector.timeoutMs");
    let e = invalid(base, |v| {
        v["collector"]["values"]["RttAvgMs"] = json!("jitterMs")
    });
    assert!(matches!(e, DatasourceError::Format { .. }));
}

fn prometheus_doc() -> Value {
    json!({
        "name": "NodeExporterCPU",
        "appliesTo": "hasCategory(\"node_exporter\")",
        "collectMethod": "prometheus",
        "collectInterval": 60,
        "hasMultiInstances": true,
        "collector": {
            "method": "prometheus",
            "url": "http://##system.hostname##:9100/metrics",
            "instanceLabel": "cpu",
            "metrics": {
                "idle": {"metric": "node_cpu_seconds_total", "labels": {"mode": "idle"}},
                "all": {"metric": "node_cpu_seconds_total"}
            }
        },
        "dataPoints": [
            {"name": "idle", "type": "counter"},
            {"name": "all", "type": "counter"},
            {"name": "busy", "type": "expression", "expression": "100 * (all - idle) / all"}
        ]
    })
}

#[test]
fn prometheus() {
    let ds = import_value(&prometheus_doc()).unwrap();
    let text = export(&ds);
    assert_eq!(import(&text).unwrap(), ds);
    assert!(text.contains("\"tlsVerify\": true"));
    let e = invalid(prometheus_doc(), |v| {
        v["collector"]
            .as_object_mut()
            .unwrap()
            .remove("instanceLabel");
    });
    assert_eq!(field_of(&e), "collector.instanceLabel");
    let e = invalid(prometheus_doc(), |v| v["hasMultiInstances"] = json!(false));
    assert_eq!(field_of(&e), "collector.instanceLabel");
    let e = invalid(prometheus_doc(), |v| {
        v["collector"]["instanceLabel"] = json!("1cpu")
    });
    assert!(matches!(e, DatasourceError::PromName { what: "label", .. }));
    let e = invalid(prometheus_doc(), |v| {
        v["collector"]["metrics"]["all"]["metric"] = json!("node-cpu")
    });
    assert!(
        matches!(&e, DatasourceError::PromName { what: "metric", field, .. } if field == "collector.metrics.all.metric")
    );
    let e = invalid(prometheus_doc(), |v| {
        v["collector"]["metrics"]["idle"]["labels"] = json!({"mo de": "idle"})
    });
    assert!(matches!(e, DatasourceError::PromName { .. }));
}

fn script_doc() -> Value {
    json!({
        "name": "Backups",
        "appliesTo": "hasCategory(\"backup\")",
        "collectMethod": "script",
        "collectInterval": 3600,
        "hasMultiInstances": true,
        "collector": {
            "method": "script",
            "script": "backup_status.py",
            "args": ["--host", "##system.hostname##"],
            "keys": {"age": "age_seconds", "ok": "ok"}
        },
        "dataPoints": [
            {"name": "age", "type": "gauge", "alertExpr": "> 90000 180000"},
            {"name": "ok", "type": "gauge", "alertExpr": "< 1 1"}
        ]
    })
}

#[test]
fn script() {
    let ds = import_value(&script_doc()).unwrap();
    assert_eq!(import(&export(&ds)).unwrap(), ds);
    for bad in [
        "/bin/sh",
        "../x",
        "a b",
        "rm -rf /",
        ".hidden",
        "x;y",
        "",
        "sub/dir.sh",
    ] {
        let e = invalid(script_doc(), |v| v["collector"]["script"] = json!(bad));
        assert!(
            matches!(&e, DatasourceError::ScriptName { field, .. } if field == "collector.script"),
            "{bad}"
        );
    }
    let e = invalid(script_doc(), |v| {
        v["collector"]["args"] = json!(["##snmp.community##"])
    });
    assert!(matches!(&e, DatasourceError::Template { field, .. } if field == "collector.args[0]"));
    let e = invalid(script_doc(), |v| {
        v["collector"]["args"] = json!(vec!["x"; 33])
    });
    assert_eq!(field_of(&e), "collector.args");
    let e = invalid(script_doc(), |v| {
        v["collector"]["keys"]["ok"] = json!("a.b")
    });
    assert!(
        matches!(&e, DatasourceError::ParserField { field, .. } if field == "collector.keys.ok")
    );
}

#[test]
fn template_expansion_for_the_collector() {
    let props = |n: &str| (n == "system.hostname").then(|| "db-1".to_string());
    assert_eq!(
        expand_template("http://##system.hostname##:9100/metrics", &props).as_deref(),
        Some("http://db-1:9100/metrics")
    );
}

#[test]
fn script_source_is_kept_and_bounded() {
    let mut doc = script_doc();
    doc["collector"]["source"] = json!("#!/bin/sh\necho ok=1\n");
    let ds = import_value(&doc).unwrap();
    // Exported byte-stable with the source.
    let again: Value = serde_json::from_str(&export(&ds)).unwrap();
    assert_eq!(again["collector"]["source"], doc["collector"]["source"]);
    for bad in [json!(""), json!("a\0b"), json!("x".repeat(256 * 1024 + 1))] {
        let e = invalid(script_doc(), |v| v["collector"]["source"] = bad);
        assert_eq!(field_of(&e), "collector.source");
    }
}
