//! Where profiles come from: the built-ins embedded in the binary, and
//! the user's directory.

use super::*;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Error;

/// Every profile dbtune can see: built-ins, then files in the user's
/// profile directory (which shadow built-ins of the same name).
pub struct Profiles {
    pub entries: Vec<(Profile, Origin)>,
    pub user_dir: Option<PathBuf>,
}

/// `$DBTUNE_PROFILE_DIR`, else `$XDG_CONFIG_HOME/dbtune/profiles`, else
/// `~/.config/dbtune/profiles`.
pub fn user_profile_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DBTUNE_PROFILE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("dbtune/profiles"))
}

impl Profiles {
    pub fn load() -> Result<Profiles> {
        let mut entries: Vec<(Profile, Origin)> = BUILTIN
            .iter()
            .map(|(name, text)| {
                let p = Profile::parse(text, Path::new(&format!("profiles/{name}.toml")))
                    .expect("built-in profiles are valid (tested)");
                (p, Origin::Builtin)
            })
            .collect();
        let user_dir = user_profile_dir();
        if let Some(dir) = user_dir.as_ref().filter(|d| d.is_dir()) {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list profile directory `{}`", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "toml") && crate::input::is_regular(p)
                })
                .collect();
            files.sort();
            for f in files {
                let p = load_file(&f)?;
                entries.retain(|(e, _)| e.name != p.name);
                entries.push((p, Origin::File(f)));
            }
        }
        Ok(Profiles { entries, user_dir })
    }

    pub fn get(&self, name: &str) -> Result<(Profile, Origin), Error> {
        self.entries
            .iter()
            .find(|(p, _)| p.name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = self.entries.iter().map(|(p, _)| p.name.as_str()).collect();
                Error::plain(
                    format!("unknown profile `{name}`"),
                    format!(
                        "known profiles: {}; or pass --profile-file PATH",
                        names.join(", ")
                    ),
                )
            })
    }
}

pub fn load_file(path: &Path) -> Result<Profile> {
    let text = crate::input::read_text(path, "profile", crate::input::MAX_DOCUMENT)?;
    Ok(Profile::parse(&text, path)?)
}
