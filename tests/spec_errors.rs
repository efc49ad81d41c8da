//! Regression tests for the ways a hand-typed spec goes wrong. Each test is
//! named after the smallest input that shows the problem, and checks that
//! the spec is refused with a message naming the place and the fix — or,
//! where the input is valid, that it runs exactly as written.

mod common;

use common::*;
use wdsweep::spec::Spec;

fn refused(text: &str) -> String {
    match Spec::from_toml(text, "s.toml", "s") {
        Ok(spec) => panic!("accepted {text:?} as {spec:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn lamda_in_grid_is_an_unknown_key_with_a_suggestion() {
    let err = refused("[grid]\nlamda = [0, 1]\n");
    assert_mentions(
        &err,
        &[
            "s.toml:2:1",
            "unknown key 'lamda' in [grid]",
            "did you mean 'lambda'?",
        ],
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    assert_mentions(
        &refused("nmae = \"x\"\n"),
        &["s.toml:1:1", "top level", "'name'"],
    );
    assert_mentions(&refused("[trian]\n"), &["unknown key 'trian'", "'train'"]);
    assert_mentions(
        &refused("[data]\nnum_trian = 3\n"),
        &["in [data]", "'num_train'"],
    );
    assert_mentions(
        &refused("[train]\nepoch = 3\n"),
        &["in [train]", "'epochs'"],
    );
    assert_mentions(
        &refused("[grid]\nlambda = { log = [1, 2], nmu = 2 }\n"),
        &["'nmu'", "did you mean 'num'?"],
    );
    assert_mentions(
        &refused("[grid]\nseed = { cout = 2 }\n"),
        &["'cout'", "'count'"],
    );
}

#[test]
fn epochs_as_a_string_names_the_key_and_the_type() {
    let err = refused("[train]\nepochs = \"ten\"\n");
    assert_mentions(&err, &["s.toml:2:10", "[train] epochs", "whole number"]);
}

#[test]
fn lambda_as_a_string_lists_the_axis_forms() {
    assert_mentions(
        &refused("[grid]\nlambda = \"3\"\n"),
        &["[grid] lambda", "log =", "linear ="],
    );
}

#[test]
fn integer_noise_std_is_accepted_as_a_float() {
    let spec = Spec::from_toml("[data]\nnoise_std = 1\n[grid]\nlr = [1]\n", "s.toml", "s").unwrap();
    assert_eq!(spec.data.book().unwrap().noise_std, 1.0);
    assert_eq!(spec.grid.lrs, vec![1.0]);
}

#[test]
fn nan_and_inf_are_refused_wherever_a_number_is_read() {
    for text in [
        "[data]\nnoise_std = nan\n",
        "[data]\ntrue_weight = inf\n",
        "[train]\ninit_std = -inf\n",
        "[train]\ndiverge_above = inf\n",
        "[grid]\nlambda = [0, nan]\n",
        "[grid]\nlr = [inf]\n",
        "[grid]\nlambda = { log = [1e-3, inf], num = 3 }\n",
        "[grid]\nlr = { linear = [0.1, 0.2], step = nan }\n",
    ] {
        assert_mentions(&refused(text), &["finite"]);
    }
}

#[test]
fn negative_lambda_is_refused() {
    assert_mentions(
        &refused("[grid]\nlambda = [0, -1]\n"),
        &["[grid] lambda", "-1", "0 or more"],
    );
}

#[test]
fn lr_of_zero_or_less_is_refused() {
    assert_mentions(&refused("[grid]\nlr = [0]\n"), &["[grid] lr", "above 0"]);
    assert_mentions(&refused("[grid]\nlr = [-0.1]\n"), &["[grid] lr", "above 0"]);
}

#[test]
fn zero_counts_are_refused() {
    for key in [
        "[train]\nepochs",
        "[train]\nbatch_size",
        "[data]\nnum_train",
        "[data]\nnum_val",
        "[data]\nnum_inputs",
    ] {
        let err = refused(&format!("{key} = 0\n"));
        assert_mentions(&err, &["= 0", "at least 1"]);
    }
}

#[test]
fn batch_size_above_num_train_is_refused() {
    assert_mentions(
        &refused("[data]\nnum_train = 4\n[train]\nbatch_size = 5\n"),
        &["batch_size = 5", "num_train = 4", "1 to 4"],
    );
}

#[test]
fn an_empty_axis_is_refused() {
    assert_mentions(
        &refused("[grid]\nlambda = []\n"),
        &["[grid] lambda is empty"],
    );
    assert_mentions(&refused("[grid]\nseed = []\n"), &["seed is empty"]);
    assert_mentions(&refused("[grid]\nseed = { count = 0 }\n"), &["count = 0"]);
}

#[test]
fn log_range_from_zero_suggests_zero_true() {
    let err = refused("[grid]\nlambda = { log = [0, 10], num = 3 }\n");
    assert_mentions(&err, &["above 0", "zero = true"]);
    let spec = Spec::from_toml(
        "[grid]\nlambda = { log = [0.1, 10], num = 3, zero = true }\n",
        "s.toml",
        "s",
    )
    .unwrap();
    assert_eq!(spec.grid.lambdas, vec![0.0, 0.1, 1.0, 10.0]);
}

#[test]
fn range_whose_start_exceeds_its_end_is_refused() {
    assert_mentions(
        &refused("[grid]\nlambda = { log = [10, 1], num = 3 }\n"),
        &["smaller end first"],
    );
    assert_mentions(
        &refused("[grid]\nlr = { linear = [0.5, 0.1], step = 0.1 }\n"),
        &["smaller end first"],
    );
}

#[test]
fn num_of_zero_is_refused() {
    assert_mentions(
        &refused("[grid]\nlr = { linear = [0.1, 0.5], num = 0 }\n"),
        &["num = 0"],
    );
}

#[test]
fn negative_or_fractional_seeds_are_refused() {
    assert_mentions(
        &refused("[grid]\nseed = [-1]\n"),
        &["[grid] seed", "negative"],
    );
    assert_mentions(
        &refused("[grid]\nseed = [1.5]\n"),
        &["[grid] seed", "whole number"],
    );
    assert_mentions(
        &refused("[grid]\nseed = { start = -3, count = 2 }\n"),
        &["negative"],
    );
}

#[test]
fn duplicate_values_in_an_axis_are_refused() {
    assert_mentions(&refused("[grid]\nlambda = [0.1, 1, 0.1]\n"), &["0.1 twice"]);
    assert_mentions(&refused("[grid]\nlr = [0.01, 1e-2]\n"), &["0.01 twice"]);
    assert_mentions(&refused("[grid]\nseed = [3, 1, 3]\n"), &["3 twice"]);
    // A list and a range's implied zero overlap.
    assert_mentions(
        &refused("[grid]\nlambda = { linear = [0, 1], num = 3, zero = true }\n"),
        &["0 twice"],
    );
}

#[test]
fn name_that_is_not_a_plain_file_name_is_refused() {
    for name in ["../x", "a/b", "", "..", "a\\\\b"] {
        assert_mentions(
            &refused(&format!("name = \"{name}\"\n")),
            &["plain folder name"],
        );
    }
}

#[test]
fn linear_0_8_to_1_0_step_0_1_is_exactly_three_points() {
    let spec = Spec::from_toml(
        "[grid]\nlr = { linear = [0.8, 1.0], step = 0.1 }\n",
        "s.toml",
        "s",
    )
    .unwrap();
    let bits: Vec<u64> = spec.grid.lrs.iter().map(|x| x.to_bits()).collect();
    assert_eq!(bits, [0.8f64.to_bits(), 0.9f64.to_bits(), 1.0f64.to_bits()]);
}

#[test]
fn step_that_does_not_divide_the_range_says_so() {
    assert_mentions(
        &refused("[grid]\nlr = { linear = [0.1, 0.5], step = 0.3 }\n"),
        &["step = 0.3 does not divide", "0.1", "0.5"],
    );
}

#[test]
fn two_to_the_40_jobs_are_refused_before_anything_is_allocated() {
    // Expanding any of these would need terabytes; refusing them must not.
    for text in [
        "[grid]\nseed = { count = 1099511627776 }\n",
        "[grid]\nlambda = { log = [1e-3, 1], num = 1099511627776 }\n",
        "[grid]\nlr = { linear = [0.1, 0.2], num = 1048576 }\nseed = { count = 1048576 }\n",
    ] {
        assert_mentions(
            &refused(text),
            &["1099511627776 jobs", "at most 1000000000"],
        );
    }
    assert_mentions(
        &refused("[grid]\nlambda = { log = [1, 2], num = 18446744073709551615 }\nlr = [1, 2]\n"),
        &["does not fit in 64 bits"],
    );
}

#[test]
fn grid_over_the_default_limit_names_the_option() {
    let err =
        refused("[grid]\nlambda = { log = [1e-3, 1], num = 1000 }\nseed = { count = 10001 }\n");
    assert_mentions(&err, &["10001000 jobs", "10000000", "--max-jobs 10001000"]);
    let ok = Spec::parse(
        "[grid]\nlambda = { log = [1e-3, 1], num = 1000 }\nseed = { count = 10001 }\n",
        "s.toml",
        "s",
        20_000_000,
    );
    assert!(ok.is_ok());
}

#[test]
fn point_one_plus_point_two_is_written_as_its_shortest_text() {
    // 0.30000000000000004 is a different float from 0.3: both must survive
    // as themselves, and 0.3 must not grow digits, in every file.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\nnum_inputs = 5\n[grid]\nlambda = [0.3, 0.30000000000000004]\nlr = [0.1]\n",
    );
    let out = dir.path().join("out");
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for text in [
        std::fs::read_to_string(out.join("jobs.csv")).unwrap(),
        std::fs::read_to_string(out.join("summary.csv")).unwrap(),
        std::fs::read_to_string(out.join("summary.md")).unwrap(),
        std::fs::read_to_string(out.join("spec.toml")).unwrap(),
        stdout.to_string(),
    ] {
        assert!(
            text.contains("0.3,") || text.contains("0.3 ") || text.contains("0.3]"),
            "{text}"
        );
        assert!(text.contains("0.30000000000000004"), "{text}");
        assert!(!text.contains("0.29999"), "{text}");
    }
}

#[test]
fn dry_run_prints_the_grid_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[grid]\nlambda = { log = [0.01, 1], num = 3, zero = true }\nlr = [0.01, 0.1]\nseed = { count = 5 }\n",
    );
    let out = dir.path().join("out");
    let o = wdsweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_mentions(
        &text,
        &["0, 0.01, 0.1, 1", "0.01, 0.1", "0 to 4", "40", "new"],
    );
    assert!(!out.exists(), "--dry-run must not create the output folder");
}

#[test]
fn a_missing_spec_file_exits_2_and_names_it() {
    let o = wdsweep()
        .args(["run", "no/such/spec.toml", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_mentions(&stderr(&o), &["no/such/spec.toml"]);
}

#[test]
fn lr_of_10_diverges_is_counted_and_never_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[grid]\nlambda = [0, 3]\nlr = [0.01, 10]\nseed = { count = 3 }\n",
    );
    let out = dir.path().join("out");
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_mentions(&stdout, &["6 of 12 jobs diverged", "lr = 0.01:"]);
    let (_, rows) = read_csv(&out.join("summary.csv"));
    for row in rows.iter().filter(|r| r[1] == "10") {
        assert_eq!((row[3].as_str(), row[4].as_str()), ("0", "3"), "{row:?}");
        assert!(row[5..].iter().all(String::is_empty), "{row:?}");
    }
    for file in ["jobs.csv", "summary.csv", "summary.md", "best.json"] {
        let text = std::fs::read_to_string(out.join(file))
            .unwrap()
            .to_lowercase();
        assert!(
            !text.contains("nan") && !text.contains("inf"),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_single_seed_has_empty_spread_and_no_nan() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\nnum_inputs = 5\n[grid]\nlambda = [0, 1]\n",
    );
    let out = dir.path().join("out");
    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, rows) = read_csv(&out.join("summary.csv"));
    for row in &rows {
        assert_eq!(row[3], "1");
        assert!(
            row[6].is_empty() && row[7].is_empty(),
            "std and SEM must be empty: {row:?}"
        );
    }
    let best = std::fs::read_to_string(out.join("best.json")).unwrap();
    assert!(best.contains("\"val_loss_sem\": null"), "{best}");
    for file in ["summary.csv", "summary.md", "best.json"] {
        let text = std::fs::read_to_string(out.join(file))
            .unwrap()
            .to_lowercase();
        assert!(!text.contains("nan"), "{file}: {text}");
    }
}

#[test]
fn a_grid_of_only_lambda_zero_or_one_lambda_still_plots() {
    for (i, lambda) in ["[0]", "[3]"].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(
            dir.path(),
            &format!("s{i}.toml"),
            &format!("[data]\nnum_inputs = 5\n[grid]\nlambda = {lambda}\nseed = {{ count = 2 }}\n"),
        );
        let out = dir.path().join("out");
        let o = run(&spec, &out, &[]);
        assert!(o.status.success(), "{lambda}: {}", stderr(&o));
        png_size(&out.join("val_loss_vs_lambda.png"));
        png_size(&out.join("loss_curves.png"));
    }
}

#[test]
fn the_csv_header_is_the_same_whatever_the_grid() {
    let mut headers = Vec::new();
    for grid in [
        "lambda = [0]",
        "lambda = [0, 1]\nlr = [10]\nseed = { count = 3 }",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(
            dir.path(),
            "s.toml",
            &format!("[data]\nnum_inputs = 5\n[grid]\n{grid}\n"),
        );
        let out = dir.path().join("out");
        run(&spec, &out, &[]);
        headers.push((
            read_csv(&out.join("jobs.csv")).0,
            read_csv(&out.join("summary.csv")).0,
        ));
    }
    assert_eq!(headers[0], headers[1]);
}

#[test]
fn three_range_ends_are_refused_not_truncated() {
    assert_mentions(
        &refused("[grid]\nlr = { linear = [0.01, 0.02, 0.03], num = 3 }\n"),
        &["[grid] lr", "exactly two numbers", "got 3"],
    );
    assert_mentions(
        &refused("[grid]\nlambda = { log = [1e-3, 30, 1e9], num = 3 }\n"),
        &["exactly two numbers"],
    );
}

#[test]
fn names_with_spaces_or_shell_characters_are_refused() {
    for name in ["my sweep", "a*b?", "tab\\there", "-rf", ".hidden"] {
        assert_mentions(
            &refused(&format!("name = \"{name}\"\n")),
            &["plain folder name"],
        );
    }
    let long = "x".repeat(101);
    assert_mentions(&refused(&format!("name = \"{long}\"\n")), &["up to 100"]);
    // A file name that cannot be a folder name asks for `name = ...`.
    let err = Spec::from_toml("", "it's.toml", "it's")
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["no name", "name = "]);
}

#[test]
fn a_data_set_too_large_for_memory_is_refused_before_anything_runs() {
    assert_mentions(
        &refused("[data]\nnum_inputs = 1000000000\n"),
        &["num_inputs", "2 GiB"],
    );
    assert_mentions(&refused("[data]\nnum_train = 100000000000\n"), &["2 GiB"]);
}

#[test]
fn values_near_the_float_limit_give_empty_cells_not_inf() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\ntrue_weight = 1e100\nnum_inputs = 5\n[grid]\nlr = [1e-300, 1e-10]\nseed = { count = 2 }\n",
    );
    let out = dir.path().join("out");
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for text in [
        std::fs::read_to_string(out.join("summary.csv")).unwrap(),
        std::fs::read_to_string(out.join("summary.md")).unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ] {
        assert!(!text.to_lowercase().contains("inf"), "{text}");
    }
}

#[test]
fn verify_sample_of_zero_is_refused() {
    let o = wdsweep()
        .args([
            "verify",
            "sweeps/ci.toml",
            "--against",
            "tests/golden/ci",
            "--sample",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn curves_on_for_more_rows_than_memory_holds_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[train]\nepochs = 2000000000\n[grid]\nlambda = [3]\n",
    );
    let out = dir.path().join("out");
    for extra in [&["--curves", "on"][..], &["--curves", "on", "--dry-run"]] {
        let o = run(&spec, &out, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert_mentions(
            &stderr(&o),
            &["--curves on", "2 000 000 001", "--curves off"],
        );
        assert!(!out.exists(), "{extra:?}: the output folder was touched");
    }
}

#[test]
fn a_spec_saved_where_the_run_writes_its_results_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    let text = "# my notes\n[data]\nnum_inputs = 5\n[grid]\nlambda = [0, 3]\n";
    for name in ["spec.toml", "best.json"] {
        let spec = write_spec(&out, name, text);
        for extra in [&[][..], &["--fresh"]] {
            let o = run(&spec, &out, extra);
            assert_eq!(o.status.code(), Some(2), "{name} {extra:?}: {}", stderr(&o));
            assert_mentions(&stderr(&o), &[name, "this run would write", "--out DIR"]);
            assert_eq!(std::fs::read_to_string(&spec).unwrap(), text);
        }
        std::fs::remove_file(&spec).unwrap();
    }

    // The spec.toml a run wrote may be rerun in place.
    let spec = write_spec(dir.path(), "s.toml", text);
    let written = dir.path().join("written");
    assert!(run(&spec, &written, &[]).status.success());
    let o = run(&written.join("spec.toml"), &written, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_step_so_small_the_axis_count_saturates_names_the_axis() {
    let err = refused("[grid]\nlambda = { linear = [0, 1], step = 1e-300 }\n");
    assert_mentions(
        &err,
        &["[grid] lambda", "100 000 000 values", "larger step"],
    );
    assert!(!err.contains("18446744073709551615"), "{err}");
}

#[test]
fn double_brackets_around_grid_say_to_use_single_ones() {
    for text in ["[[grid]]\nlambda = [0, 1]\n", "[[train]]\nepochs = 3\n"] {
        assert_mentions(&refused(text), &["list of tables", "single brackets"]);
    }
}

#[test]
fn a_range_too_narrow_for_its_points_says_so() {
    let err = refused("[grid]\nlambda = { linear = [1, 1.0000000000000002], num = 5 }\n");
    assert_mentions(&err, &["[grid] lambda", "too narrow for 5 distinct floats"]);
    let err = refused("[grid]\nlambda = [1, 2, 1]\n");
    assert_mentions(&err, &["holds 1 twice", "may appear once"]);
}
