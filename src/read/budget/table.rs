//! The budget as a table, term by term (render's stderr, check-budget's
//! and inspect's reports).

use std::fmt;

use super::*;
use crate::service::Scope;
use crate::units::ByteSize;

/// The budget as a table: one line per term with its source, a subtotal
/// per service, the total, the headroom, then the budget's own findings.
pub struct Table<'a>(pub &'a Budget);

impl fmt::Display for Table<'_> {
    fn fmt(&self, s: &mut fmt::Formatter<'_>) -> fmt::Result {
        let budget = self.0;
        let w = budget
            .terms
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(10)
            .max(10);
        writeln!(
            s,
            "{:<9} {:<w$} {:>10} {:>10}  source",
            "service", "term", "worst", "typical"
        )?;
        for t in &budget.terms {
            writeln!(
                s,
                "{:<9} {:<w$} {:>10} {:>10}  {}",
                t.service,
                t.name,
                t.worst.to_string(),
                t.typical.to_string(),
                t.source
            )?;
        }
        let mut services: Vec<Scope> = Vec::new();
        for t in &budget.terms {
            if !services.contains(&t.service) {
                services.push(t.service);
            }
        }
        for svc in services {
            let typical: ByteSize = budget
                .terms
                .iter()
                .filter(|t| t.service == svc)
                .map(|t| t.typical)
                .sum();
            writeln!(
                s,
                "{:<9} {:<w$} {:>10} {:>10}",
                "subtotal",
                svc,
                budget.service_worst(svc).to_string(),
                typical.to_string()
            )?;
        }
        writeln!(
            s,
            "{:<9} {:<w$} {:>10} {:>10}",
            "total",
            "",
            budget.worst.to_string(),
            budget.typical.to_string()
        )?;
        let head = budget.headroom();
        let head_s = if head >= 0 {
            ByteSize(head as u64).to_string()
        } else {
            format!("-{}", ByteSize((-head) as u64))
        };
        writeln!(
            s,
            "{:<9} {:<w$} {:>10}  ({} of RAM, {})",
            "headroom", "", head_s, budget.ram, budget.ram_source
        )?;
        Ok(())
    }
}
