//! `dbtune detect`'s report: each fact with where it came from, one
//! section per part of the host.

use std::fmt;

use super::{is_zfs, Cpu, Facts, Memory, Servers, Storage, Zfs};

impl fmt::Display for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(h) = &self.hostname {
            writeln!(f, "host       {h}")?;
        }
        write!(f, "{}{}{}", self.memory, self.cpu, self.storage)?;
        write!(f, "{}", self.zfs)?;
        // Whether the ZFS-only settings are safe is a fact about the data
        // directory and its WAL together.
        let data_zfs = self
            .storage
            .filesystem
            .as_ref()
            .is_some_and(|fs| is_zfs(&fs.value));
        let verdict = if self.data_on_zfs() {
            "PostgreSQL's data is on ZFS: the ZFS-only settings (full_page_writes = off...) are safe"
        } else if data_zfs {
            "PostgreSQL's data is on ZFS but pg_wal is not: full_page_writes stays on"
        } else {
            "PostgreSQL's data is not on ZFS: full_page_writes stays on"
        };
        writeln!(f, "           {verdict}")?;
        write!(f, "{}", self.servers)?;
        if let Some(p) = &self.suggested_profile {
            writeln!(f, "profile    {} ({})", p.name, p.reason)?;
        }
        Ok(())
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory     {} physical ({})",
            self.physical.value, self.physical.source
        )?;
        match &self.cgroup_limit {
            Some(l) => writeln!(f, "           {} cgroup limit ({})", l.value, l.source)?,
            None => writeln!(f, "           no cgroup memory limit")?,
        }
        writeln!(
            f,
            "           {} effective{}",
            self.effective(),
            if self.effective() < self.physical.value {
                " (the cgroup limit is smaller)"
            } else {
                ""
            }
        )
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cpus       {} logical ({})",
            self.logical.value, self.logical.source
        )?;
        match &self.cgroup_quota {
            Some(q) => writeln!(
                f,
                "           {} CPUs of cgroup quota ({})",
                q.value, q.source
            )?,
            None => writeln!(f, "           no cgroup CPU quota")?,
        }
        writeln!(f, "           {} effective", self.effective())
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "storage    {} ({})", self.kind.value, self.kind.source)?;
        if let Some(d) = &self.doubt {
            writeln!(f, "           doubtful: {d}")?;
        }
        if let Some(d) = &self.data_dir {
            writeln!(
                f,
                "           data dir {d}{}",
                self.device
                    .as_ref()
                    .map_or(String::new(), |d| format!(" on device {d}"))
            )?;
        }
        if let Some(fs) = &self.filesystem {
            writeln!(f, "filesystem {} ({})", fs.value, fs.source)?;
        }
        if let (Some(dir), Some(fs)) = (&self.wal_dir, &self.wal_filesystem) {
            writeln!(
                f,
                "           pg_wal in {dir} on {} ({})",
                fs.value, fs.source
            )?;
        }
        if let Some(w) = &self.wal_space {
            writeln!(
                f,
                "           pg_wal's filesystem {} ({})",
                w.value, w.source
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Zfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.present {
            format!(
                "present, {}",
                self.version.as_deref().unwrap_or("version unknown")
            )
        } else {
            "not found".into()
        };
        writeln!(f, "zfs        {what} ({})", self.source)?;
        match self.pools.as_deref() {
            Some([]) => writeln!(f, "           no pools imported"),
            Some(pools) => writeln!(f, "           pools: {}", pools.join(", ")),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Servers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in [
            ("postgres", &self.postgres),
            ("redis", &self.redis),
            ("pgbouncer", &self.pgbouncer),
        ] {
            match v {
                Some(v) => writeln!(f, "{name:<10} {} ({})", v.value, v.source)?,
                None => writeln!(f, "{name:<10} not found")?,
            }
        }
        Ok(())
    }
}
