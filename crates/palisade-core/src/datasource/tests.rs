//! Tests of the datasource format: built-ins, import/export, validation errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

fn builtin(name: &str) -> DataSource {
    builtins()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no built-in {name}"))
}

/// The exported JSON of a built-in, as a value to mutate.
fn doc(name: &str) -> Value {
    serde_json::from_str(&export(&builtin(name))).unwrap()
}

fn import_value(v: &Value) -> Result<DataSource, DatasourceError> {
    import(&serde_json::to_string(v).unwrap())
}

/// A small script datasource used as a base for method-independent checks.
fn script_doc() -> Value {
    json!({
        "name": "Demo",
        "appliesTo": "true",
        "collectMethod": "script",
        "collectInterval": 60,
        "collector": {"method": "script", "script": "demo.sh", "keys": {"a": "a", "b": "b"}},
        "dataPoints": [
            {"name": "a", "type": "gauge"},
            {"name": "b", "type": "counter"},
            {"name": "c", "type": "expression", "expression": "a + b"}
        ]
    })
}

#[test]
fn every_builtin_is_valid_canonical_and_round_trips() {
    assert_eq!(builtin::COUNT, 10);
    let all = builtins();
    assert_eq!(
        all.len(),
        builtin::COUNT,
        "a built-in file failed to import"
    );
    for (file, ds) in builtin::files().iter().zip(&all) {
        ds.validate().unwrap();
        let text = export(ds);
        assert_eq!(&text, file, "{} is not in canonical form", ds.name);
        assert_eq!(import(&text).unwrap(), *ds);
        assert!(ds.applies_to.len() > 3, "{} applies to nothing", ds.name);
        ExpressionSet::compile(ds).unwrap();
    }
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "HostCPU",
            "HostMemory",
            "HostDisk",
            "HostNetwork",
            "SNMP_System",
            "SNMP_Interfaces",
            "SNMP_HR_Storage",
            "SNMP_HR_Processor",
            "Ping",
            "HTTP"
        ]
    );
}

#[test]
fn builtin_details() {
    let interfaces = builtin("SNMP_Interfaces");
    let Collector::Snmp(snmp) = &interfaces.collector else {
        panic!("not snmp")
    };
    assert_eq!(snmp.oids["ifHCInOctets"], "1.3.6.1.2.1.31.1.1.1.6");
    assert_eq!(snmp.oids["ifHCOutOctets"], "1.3.6.1.2.1.31.1.1.1.10");
    assert_eq!(snmp.oids["ifOperStatus"], "1.3.6.1.2.1.2.2.1.8");
    let table = snmp.table.as_ref().unwrap();
    assert_eq!(table.name_oid.as_deref(), Some("1.3.6.1.2.1.31.1.1.1.1"));
    assert_eq!(
        interfaces.datapoint("ifHCInOctets").unwrap().kind,
        DatapointType::Counter
    );
    let http = builtin("HTTP");
    assert_eq!(
        http.datapoint("CertDaysToExpiry").unwrap().alert_expr,
        "< 30 14 7"
    );
    let cpu = builtin("HostCPU");
    let Collector::Ssh(ssh) = &cpu.collector else {
        panic!("not ssh")
    };
    assert_eq!(ssh.target, SshTarget::Auto);
    let applies = crate::applies_to::parse(&cpu.applies_to).unwrap();
    let collector_host = |n: &str| (n == COLLECTOR_HOST_PROPERTY).then(|| "true".to_string());
    assert!(applies.matches(&collector_host));
    assert!(applies.matches(&|n: &str| (n == "ssh.user").then(|| "root".to_string())));
    assert!(!applies.matches(&|_: &str| None));
    let snmp_applies = crate::applies_to::parse(&interfaces.applies_to).unwrap();
    assert!(snmp_applies.matches(&|n: &str| (n == "system.categories").then(|| "snmp".into())));
    assert!(snmp_applies.matches(&|n: &str| (n == "snmp.community").then(|| "public".into())));
}

#[test]
fn builtin_expressions_compute() {
    let storage = builtin("SNMP_HR_Storage");
    let set = ExpressionSet::compile(&storage).unwrap();
    let mut values: BTreeMap<String, f64> = [
        ("hrStorageAllocationUnits".to_string(), 4096.0),
        ("hrStorageSize".to_string(), 1000.0),
        ("hrStorageUsed".to_string(), 250.0),
    ]
    .into();
    set.evaluate(&mut values);
    assert_eq!(values["PercentUsed"], 25.0);
    assert_eq!(values["SizeBytes"], 4_096_000.0);
    values.insert("hrStorageSize".into(), 0.0);
    set.evaluate(&mut values);
    assert!(!values.contains_key("PercentUsed"));
}

#[test]
fn expression_order_follows_dependencies() {
    let mut v = script_doc();
    v["dataPoints"] = json!([
        {"name": "d", "type": "expression", "expression": "c * 2"},
        {"name": "c", "type": "expression", "expression": "a + b"},
        {"name": "a", "type": "gauge"},
        {"name": "b", "type": "gauge"}
    ]);
    let ds = import_value(&v).unwrap();
    let set = ExpressionSet::compile(&ds).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["c", "d"]);
    let mut values: BTreeMap<String, f64> = [("a".into(), 1.0), ("b".into(), 2.0)].into();
    set.evaluate(&mut values);
    assert_eq!(values["d"], 6.0);
}

#[test]
fn export_is_pretty_stable_and_drops_the_id() {
    let mut ds = import_value(&script_doc()).unwrap();
    ds.id = Some(42);
    let text = export(&ds);
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    assert!(!text.contains("\"id\""));
    assert!(text.starts_with("{\n  \"name\": \"Demo\",\n  \"displayName\": \"\","));
    let back = import(&text).unwrap();
    assert_eq!(back.id, None);
    assert_eq!(export(&back), text);
    // Defaults are written out, so the file says everything.
    assert!(text.contains("\"alertForNoData\": 1"));
    assert!(text.contains("\"timeoutMs\": 30000"));
}

#[test]
fn import_ignores_id_but_api_json_keeps_it() {
    let mut v = script_doc();
    v["id"] = json!(7);
    let ds = import_value(&v).unwrap();
    assert_eq!(ds.id, None);
    let with_id = DataSource { id: Some(7), ..ds };
    assert!(serde_json::to_string(&with_id)
        .unwrap()
        .starts_with("{\"id\":7,"));
}

fn format_error(v: &Value) -> String {
    match import_value(v) {
        Err(DatasourceError::Format { message }) => message,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    let mut v = script_doc();
    v["colectInterval"] = json!(60);
    assert!(format_error(&v).contains("unknown field `colectInterval`"));
    let mut v = script_doc();
    v["dataPoints"][0]["alertExp"] = json!("> 1");
    assert!(format_error(&v).contains("alertExp"));
    let mut v = script_doc();
    v["collector"]["scirpt"] = json!("x");
    assert!(format_error(&v).contains("scirpt"));
    let mut v = doc("HostCPU");
    v["collector"]["parser"]["pattern"] = json!("x");
    assert!(format_error(&v).contains("pattern"));
    let mut v = doc("SNMP_Interfaces");
    v["collector"]["table"]["nameOId"] = json!("1.2");
    assert!(format_error(&v).contains("nameOId"));
    let mut v = doc("HTTP");
    v["collector"]["values"]["StatusOk"] = json!("statusOK");
    assert!(format_error(&v).contains("unknown HTTP value"));
}

#[test]
fn format_errors() {
    assert!(matches!(
        import("not json"),
        Err(DatasourceError::Format { .. })
    ));
    assert!(matches!(import("{}"), Err(DatasourceError::Format { .. })));
    let mut v = script_doc();
    v["dataPoints"][0]["alertForNoData"] = json!(5);
    assert!(format_error(&v).contains("alertForNoData must be 1"));
    let mut v = script_doc();
    v["collector"]["method"] = json!("wmi");
    assert!(format_error(&v).contains("wmi"));
    let mut v = script_doc();
    v["dataPoints"][0]["type"] = json!("absolute");
    assert!(format_error(&v).contains("absolute"));
    let huge = " ".repeat(MAX_DOCUMENT_LEN + 1);
    assert!(matches!(
        import(&huge),
        Err(DatasourceError::TooLong { .. })
    ));
}

/// Applies `change` to the script document and returns the validation error.
fn invalid(change: impl FnOnce(&mut Value)) -> DatasourceError {
    invalid_from(script_doc(), change)
}

fn invalid_from(mut v: Value, change: impl FnOnce(&mut Value)) -> DatasourceError {
    change(&mut v);
    match import_value(&v) {
        Err(e) => e,
        Ok(_) => panic!("accepted: {v}"),
    }
}

#[test]
fn names() {
    for bad in ["", "has space", "é", "a.b", &"x".repeat(65)] {
        let e = invalid(|v| v["name"] = json!(bad));
        assert!(
            matches!(&e, DatasourceError::Name { field, .. } if field == "name"),
            "{e}"
        );
    }
    assert!(import_value(&{
        let mut v = script_doc();
        v["name"] = json!(format!("A-b_9{}", "x".repeat(59)));
        v
    })
    .is_ok());
    for bad in ["1a", "a-b", "", "a b", &"x".repeat(65)] {
        let e = invalid(|v| v["dataPoints"][0]["name"] = json!(bad));
        assert!(
            matches!(&e, DatasourceError::DatapointName { field, .. } if field == "dataPoints[0].name"),
            "{e}"
        );
    }
    let e = invalid(|v| v["dataPoints"][1]["name"] = json!("a"));
    assert!(matches!(
        &e,
        DatasourceError::DuplicateDatapoint { field, name } if field == "dataPoints[1].name" && name == "a"
    ));
    assert_eq!(
        e.to_string(),
        "dataPoints[1].name: the datapoint name `a` is used twice"
    );
}

#[test]
fn general_fields() {
    for bad in [0, 9, 86_401] {
        let e = invalid(|v| v["collectInterval"] = json!(bad));
        assert!(
            matches!(&e, DatasourceError::OutOfRange { field, .. } if field == "collectInterval")
        );
    }
    let e = invalid(|v| v["appliesTo"] = json!("system.x =="));
    assert!(matches!(e, DatasourceError::AppliesTo(_)));
    assert!(e.to_string().starts_with("appliesTo:"));
    let e = invalid(|v| v["appliesTo"] = json!("unknownFn()"));
    assert!(matches!(e, DatasourceError::AppliesTo(_)));
    let e = invalid(|v| v["collectMethod"] = json!("ssh"));
    assert_eq!(
        e,
        DatasourceError::MethodMismatch {
            collect_method: CollectMethod::Ssh,
            collector: CollectMethod::Script
        }
    );
    let e = invalid(|v| v["displayName"] = json!("x".repeat(129)));
    assert!(matches!(&e, DatasourceError::TooLong { field, .. } if field == "displayName"));
    let e = invalid(|v| v["dataPoints"] = json!([]));
    assert!(matches!(&e, DatasourceError::Count { field, .. } if field == "dataPoints"));
    // An empty appliesTo is allowed: the datasource applies to no device.
    let mut v = script_doc();
    v["appliesTo"] = json!("");
    assert!(import_value(&v).is_ok());
}

#[test]
fn datapoint_fields() {
    for bad in [">", "> x", "> 1 2 3 4", ">> 1", "80", "> inf", "=> 5", ">1"] {
        let e = invalid(|v| v["dataPoints"][0]["alertExpr"] = json!(bad));
        assert!(
            matches!(&e, DatasourceError::AlertExpr { field, .. } if field == "dataPoints[0].alertExpr"),
            "{bad}: {e}"
        );
    }
    for good in [
        "",
        "  ",
        "> 80 90 95",
        ">= -1.5",
        "!= 1",
        "= 2 3",
        "<= 0.5 0.25",
    ] {
        assert!(is_light_threshold(good), "{good}");
    }
    let e = invalid(|v| v["dataPoints"][0]["alertTransitionInterval"] = json!(61));
    assert!(
        matches!(&e, DatasourceError::OutOfRange { field, .. } if field == "dataPoints[0].alertTransitionInterval")
    );
    let e = invalid(|v| {
        v["dataPoints"][0]["minValue"] = json!(10);
        v["dataPoints"][0]["maxValue"] = json!(10);
    });
    assert!(matches!(&e, DatasourceError::MinMax { field, .. } if field == "dataPoints[0]"));
    let e = invalid(|v| v["dataPoints"][2] = json!({"name": "c", "type": "expression"}));
    assert!(
        matches!(&e, DatasourceError::MissingExpression { field } if field == "dataPoints[2].expression")
    );
    let e = invalid(|v| v["dataPoints"][0]["expression"] = json!("1"));
    assert!(
        matches!(&e, DatasourceError::UnexpectedExpression { field } if field == "dataPoints[0].expression")
    );
}

#[test]
fn expression_errors() {
    let e = invalid(|v| v["dataPoints"][2]["expression"] = json!("a +"));
    assert!(matches!(
        &e,
        DatasourceError::Expression { field, source: expr::ExprError::UnexpectedEnd { .. } }
            if field == "dataPoints[2].expression"
    ));
    let e = invalid(|v| v["dataPoints"][2]["expression"] = json!("a + missing"));
    assert!(matches!(
        &e,
        DatasourceError::UnknownReference { reference, .. } if reference == "missing"
    ));
    let e = invalid(|v| v["dataPoints"][2]["expression"] = json!("c + 1"));
    assert_eq!(
        e,
        DatasourceError::ExpressionCycle {
            cycle: "c -> c".into()
        }
    );
    let e = invalid(|v| {
        v["dataPoints"][2]["expression"] = json!("a + e");
        v["dataPoints"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "d", "type": "expression", "expression": "c"}));
        v["dataPoints"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "e", "type": "expression", "expression": "d * 2"}));
    });
    assert_eq!(
        e,
        DatasourceError::ExpressionCycle {
            cycle: "c -> e -> d -> c".into()
        }
    );
}

#[test]
fn collector_mapping() {
    let e = invalid(|v| {
        v["collector"]["keys"].as_object_mut().unwrap().remove("b");
    });
    assert_eq!(
        e,
        DatasourceError::MissingSource {
            field: "collector.keys".into(),
            datapoint: "b".into()
        }
    );
    let e = invalid(|v| v["collector"]["keys"]["c"] = json!("c"));
    assert!(
        matches!(&e, DatasourceError::UnknownSource { field, .. } if field == "collector.keys.c")
    );
    let e = invalid(|v| v["collector"]["keys"]["zz"] = json!("zz"));
    assert!(matches!(&e, DatasourceError::UnknownSource { datapoint, .. } if datapoint == "zz"));
    let e = invalid(|v| v["collector"]["timeoutMs"] = json!(60_001));
    assert!(
        matches!(&e, DatasourceError::OutOfRange { field, .. } if field == "collector.timeoutMs")
    );
    let e = invalid(|v| v["collector"]["timeoutMs"] = json!(99));
    assert!(matches!(&e, DatasourceError::OutOfRange { .. }));
}
