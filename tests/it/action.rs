//! `action.yml`, the GitHub Action: its check-budget step run here as the
//! runner would run it (bash -eo pipefail, the inputs as its `env:` maps
//! them), against the dbtune just built. A flag renamed in dbtune, or an
//! input the script forgets, fails here rather than in a user's workflow.
//!
//! The file is read by line, not by a YAML parser: the test holds it to
//! the few shapes it relies on (inputs with a default, one step with
//! `id: check`, an `env:` of `NAME: ${{ inputs.X }}`, a `run: |` block) and
//! fails when the file leaves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{dbtune, fixture, need, whole_output};

struct Action {
    /// Each input and its default.
    inputs: BTreeMap<String, String>,
    /// The check step's environment: variable -> the input it carries.
    env: Vec<(String, String)>,
    /// The check step's script.
    run: String,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

fn read_action() -> Action {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"  using: composite"), "a composite action");

    let mut inputs = BTreeMap::new();
    let start = lines.iter().position(|l| *l == "inputs:").expect("inputs:");
    let mut name: Option<String> = None;
    for l in &lines[start + 1..] {
        if !l.is_empty() && indent(l) == 0 {
            break;
        }
        if indent(l) == 2 && l.trim_end().ends_with(':') {
            name = Some(l.trim().trim_end_matches(':').to_string());
        } else if let (Some(n), Some(d)) = (&name, l.trim().strip_prefix("default:")) {
            inputs.insert(n.clone(), unquote(d));
        }
    }

    let step = lines
        .iter()
        .position(|l| l.trim() == "id: check")
        .expect("a step with id: check");
    let step_indent = indent(lines[step]);
    let mut env = Vec::new();
    let mut run = String::new();
    let mut i = step + 1;
    while i < lines.len() && (lines[i].is_empty() || indent(lines[i]) >= step_indent) {
        let l = lines[i];
        if indent(l) == step_indent && l.trim() == "env:" {
            i += 1;
            while i < lines.len() && indent(lines[i]) > step_indent {
                let (var, value) = lines[i].trim().split_once(": ").unwrap();
                let input = value
                    .strip_prefix("${{ inputs.")
                    .and_then(|v| v.strip_suffix(" }}"))
                    .unwrap_or_else(|| panic!("{var} is not one input: {value}"));
                env.push((var.to_string(), input.to_string()));
                i += 1;
            }
            continue;
        }
        if indent(l) == step_indent && l.trim() == "run: |" {
            i += 1;
            while i < lines.len() && (lines[i].is_empty() || indent(lines[i]) > step_indent) {
                run.push_str(lines[i].get(step_indent + 2..).unwrap_or(""));
                run.push('\n');
                i += 1;
            }
            continue;
        }
        if indent(l) == step_indent - 2 {
            break; // the next step
        }
        i += 1;
    }
    assert!(!run.is_empty(), "the check step has no `run: |`");
    Action { inputs, env, run }
}

/// The check step run as the runner runs a `shell: bash` step, with these
/// inputs over the defaults, dbtune first on the PATH.
fn run_check(action: &Action, cwd: &Path, with: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check.sh");
    std::fs::write(&script, &action.run).unwrap();
    let bin: PathBuf = assert_cmd::cargo::cargo_bin("dbtune");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(need("bash"));
    c.args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script)
        .current_dir(cwd)
        .env("PATH", path)
        .env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
        .env("DBTUNE_TEMPLATE_DIR", "/nonexistent/dbtune-templates")
        .env("NO_COLOR", "1");
    for (k, _) in with {
        assert!(
            action.inputs.contains_key(*k),
            "action.yml has no input `{k}`"
        );
    }
    for (var, input) in &action.env {
        let value = with
            .iter()
            .find(|(k, _)| k == input)
            .map(|(_, v)| v.to_string())
            .or_else(|| action.inputs.get(input).cloned())
            .unwrap_or_else(|| panic!("{var} carries `{input}`, which is not an input"));
        c.env(var, value);
    }
    c.output().unwrap()
}

fn rendered(dir: &Path) {
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(dir)
        .assert()
        .success();
}

#[test]
fn every_check_budget_input_reaches_the_script() {
    let action = read_action();
    let carried: Vec<&str> = action.env.iter().map(|(_, i)| i.as_str()).collect();
    for input in action.inputs.keys() {
        if input != "install" {
            assert!(
                carried.contains(&input.as_str()),
                "input `{input}` is not used"
            );
        }
    }
    for (var, _) in &action.env {
        assert!(
            action.run.contains(&format!("\"${var}\"")),
            "{var} is not read"
        );
    }
    assert!(
        action.run.contains("dbtune \"${args[@]}\""),
        "{}",
        action.run
    );
    assert!(action.run.contains("--format github"), "{}", action.run);
}

#[test]
fn action_passes_a_rendered_directory() {
    let action = read_action();
    let dir = tempfile::tempdir().unwrap();
    rendered(&dir.path().join("deploy"));
    let out = run_check(&action, dir.path(), &[("paths", "deploy")]);
    let text = whole_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("::error"), "{text}");
    assert!(text.contains("headroom"), "{text}");
}

#[test]
fn action_annotates_an_unknown_setting_and_fails_the_step() {
    let action = read_action();
    let dir = tempfile::tempdir().unwrap();
    let typos = fixture("typos/postgresql.conf");
    let out = run_check(
        &action,
        dir.path(),
        &[("paths", &typos), ("ram", "4GiB"), ("pg-version", "15")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", whole_output(&out));
    assert!(
        text.lines().next().unwrap().starts_with("::error file="),
        "{text}"
    );
}

/// Every input set at once: each becomes a flag check-budget accepts (a
/// refused flag is exit 2 with clap's message).
#[test]
fn action_inputs_are_flags_check_budget_accepts() {
    let action = read_action();
    let dir = tempfile::tempdir().unwrap();
    rendered(&dir.path().join("a"));
    let facts = fixture("facts/staging.toml");
    let out = run_check(
        &action,
        dir.path(),
        &[
            ("paths", "a/postgresql.conf a/redis.conf"),
            ("facts", &facts),
            ("ram", "8GiB"),
            ("profile", "low-memory"),
            ("pg-version", "16"),
            ("level", "worst"),
            ("container", "true"),
            ("args", "--sorts-per-query 2 --busy-share 0.5"),
        ],
    );
    let text = whole_output(&out);
    assert_ne!(out.status.code(), Some(2), "{text}");
    assert!(!text.contains("unexpected argument"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Both paths were read, each flag taken.
    for said in [
        "a/postgresql.conf:",
        "a/redis.conf:",
        "8 GiB of RAM, --ram",
        "profile low-memory [[reserve]]",
        "PostgreSQL 16 (--pg-version)",
        "judged at worst case (--level)",
        "--container:",
        "50% of connections busy",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
}
