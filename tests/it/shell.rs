//! `dbtune completions` and `dbtune man`, read by the real shells and by
//! groff: a script that does not load, or a completion that offers nothing,
//! fails here.

use std::path::Path;
use std::process::Command;

use crate::harness::{dbtune, need, run_ok};

fn builtin_names() -> Vec<&'static str> {
    dbtune::profile::BUILTIN.iter().map(|(n, _)| *n).collect()
}

fn script(shell: &str) -> String {
    let out = dbtune().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What bash's completion offers for the words typed so far (the last one
/// being completed), with the generated script sourced as a user's
/// bash-completion would.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbtune.bash");
    std::fs::write(&file, script("bash")).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let code = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n_dbtune dbtune '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        quoted.join(" "),
        words[cword],
    );
    let mut c = Command::new(need("bash"));
    c.args(["--norc", "--noprofile", "-c", &code]);
    run_ok(c).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_a_subcommand() {
    assert_eq!(bash_complete(&["dbtune", "check-b"]), ["check-budget"]);
    let all = bash_complete(&["dbtune", ""]);
    for cmd in ["render", "check-budget", "completions", "man"] {
        assert!(all.iter().any(|w| w == cmd), "{cmd} not in {all:?}");
    }
}

#[test]
fn bash_completes_the_builtin_profile_names() {
    assert_eq!(
        bash_complete(&["dbtune", "render", "--profile", ""]),
        builtin_names()
    );
    assert_eq!(
        bash_complete(&["dbtune", "check-budget", "--profile", "low"]),
        ["low-memory"]
    );
    assert_eq!(
        bash_complete(&["dbtune", "bench", "--profile", "power"]),
        ["powerhouse"]
    );
}

/// The names are offered, not imposed: a user profile is any name.
#[test]
fn a_profile_name_not_builtin_still_parses() {
    let out = dbtune()
        .args(["render", "--profile", "my-own", "--only", "redis"])
        .env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("invalid value"), "clap refused it: {err}");
    assert!(err.contains("my-own"), "{err}");
}

#[test]
fn fish_completes_a_subcommand_and_a_profile_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbtune.fish");
    std::fs::write(&file, script("fish")).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let mut c = Command::new(need("fish"));
        c.args(["--no-config", "-c"])
            .arg(format!("source {}; complete -C'{line}'", file.display()));
        // Each candidate, then a tab and its description.
        run_ok(c)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(complete("dbtune check-b"), ["check-budget"]);
    let mut names = complete("dbtune render --profile ");
    names.sort();
    let mut want = builtin_names();
    want.sort();
    assert_eq!(names, want);
}

/// zsh's completion cannot be driven without a terminal: the script must
/// parse, and name the profiles as --profile's values.
#[test]
fn zsh_script_parses_and_offers_the_profile_names() {
    let text = script("zsh");
    assert!(text.starts_with("#compdef dbtune"), "{}", &text[..80]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("_dbtune");
    std::fs::write(&file, &text).unwrap();
    let mut c = Command::new(need("zsh"));
    c.arg("-n").arg(&file);
    run_ok(c);
    let values = format!(":NAME:({})", builtin_names().join(" "));
    assert!(
        text.lines()
            .any(|l| l.contains("--profile=[") && l.contains(&values)),
        "no --profile with {values}"
    );
}

/// groff reads the page without a warning (-ww), and man shows every
/// command and the flags of one.
fn groff_clean(page: &Path) -> String {
    let mut c = Command::new(need("groff"));
    c.args(["-man", "-Tutf8", "-ww"]).arg(page);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{}: {err}", page.display());
    // groff's terminal output overstrikes bold and underlined letters.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        plain.push(ch);
    }
    plain
}

#[test]
fn man_page_renders_and_names_every_command() {
    let out = dbtune().arg("man").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("dbtune.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let text = groff_clean(&page);
    for cmd in [
        "detect",
        "render",
        "check-budget",
        "inspect",
        "completions",
        "man",
    ] {
        assert!(text.contains(&format!("dbtune-{cmd}(1)")), "{cmd}: {text}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    dbtune()
        .args(["man", "--dir"])
        .arg(&pages)
        .assert()
        .success()
        .stdout("");
    for cmd in ["", "-render", "-check-budget", "-apply", "-completions"] {
        assert!(
            pages.join(format!("dbtune{cmd}.1")).is_file(),
            "dbtune{cmd}.1"
        );
    }
    let text = groff_clean(&pages.join("dbtune-check-budget.1"));
    assert!(text.contains("--format"), "{text}");
    assert!(text.contains("github"), "{text}");
}
