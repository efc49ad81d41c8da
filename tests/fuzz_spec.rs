//! Fuzzing the spec parser: arbitrary bytes and arbitrary TOML built from
//! the spec's own vocabulary must give a spec or a [`SpecError`], never a
//! panic. `WDSWEEP_FUZZ_CASES` sets the number of inputs per test (default
//! 2 000, which keeps `cargo test` quick; the closing notes quote longer
//! runs).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use wdsweep::spec::Spec;

fn cases() -> u32 {
    std::env::var("WDSWEEP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// A small job limit keeps accepted grids cheap to expand.
fn parse(text: &str) {
    let _ = Spec::parse(text, "fuzz.toml", "fuzz", 10_000);
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-5i64..40).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        (0.0f64..2.0).prop_map(|v| v.to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e-3".to_string()),
        Just("0".to_string()),
        Just("18446744073709551615".to_string()),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        number(),
        "\"[a-z./]{0,6}\"".prop_map(|s| s),
        Just("true".to_string()),
        Just("\"optimizer\"".to_string()),
        Just("\"loss\"".to_string()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        let key = prop_oneof![
            Just("log"),
            Just("linear"),
            Just("num"),
            Just("step"),
            Just("zero"),
            Just("start"),
            Just("count"),
            Just("nmu"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key, inner), 0..4).prop_map(|kv| {
                let mut seen = std::collections::HashSet::new();
                let body: Vec<String> = kv
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
    .boxed()
}

fn document() -> BoxedStrategy<String> {
    let key = prop_oneof![
        Just("name"),
        Just("num_train"),
        Just("num_val"),
        Just("num_inputs"),
        Just("noise_std"),
        Just("true_weight"),
        Just("true_bias"),
        Just("epochs"),
        Just("batch_size"),
        Just("init_std"),
        Just("penalty"),
        Just("diverge_above"),
        Just("lambda"),
        Just("lr"),
        Just("seed"),
        Just("lamda"),
    ];
    let section = prop_oneof![
        Just(""),
        Just("[data]"),
        Just("[train]"),
        Just("[grid]"),
        Just("[x]")
    ];
    let table = (section, prop::collection::vec((key, value()), 0..5)).prop_map(|(h, kv)| {
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<String> = kv
            .into_iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("{h}\n{}\n", lines.join("\n"))
    });
    prop::collection::vec(table, 0..4)
        .prop_map(|t| t.concat())
        .boxed()
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..256), |bytes| {
            parse(&String::from_utf8_lossy(&bytes));
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_spec_shaped_toml_never_panics() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0u32);
    runner
        .run(&document(), |text| {
            if Spec::parse(&text, "fuzz.toml", "fuzz", 10_000).is_ok() {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach valid specs too, or it tests only the parser's
    // first line of defence.
    assert!(accepted.get() > 0, "no generated spec was valid");
    println!(
        "{} of {} generated specs were valid",
        accepted.get(),
        cases()
    );
}
