//! Diffs of file content for the plan, with secrets masked: a plan is shown and logged, a
//! secret in it would leak.

use crate::secret::{REDACTED, Secrets};

/// A unified diff of `old` to `new`. Secrets are masked: known values in both versions, and
/// in removed lines whatever follows the prefix at which a new line carries a secret (so an
/// old, unknown `static-auth-secret=...` does not leak either).
pub fn diff_text(old: &str, new: &str, label: &str, secrets: &Secrets) -> String {
    let prefixes: Vec<&str> = new
        .lines()
        .filter_map(|l| secrets.first_secret_at(l).map(|i| &l[..i]))
        .filter(|p| !p.trim().is_empty())
        .collect();
    let mask_old = |line: &str| -> String {
        if secrets.contains_secret(line) {
            return secrets.redact(line);
        }
        match prefixes.iter().find(|p| line.starts_with(**p)) {
            Some(p) => format!("{p}{REDACTED} (old value)"),
            None => line.to_string(),
        }
    };
    let old_masked: String = old.lines().map(|l| mask_old(l) + "\n").collect();
    let new_masked = secrets.redact(new);
    let d = similar::TextDiff::from_lines(&old_masked, &new_masked);
    d.unified_diff()
        .context_radius(3)
        .header(&format!("{label} (current)"), &format!("{label} (wanted)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_secret_values_are_masked_in_diffs() {
        let secrets = Secrets::new(vec!["NEWSECRET".into()]);
        let d = diff_text(
            "static-auth-secret=OLDVALUE\nrealm=x\n",
            "static-auth-secret=NEWSECRET\nrealm=x\n",
            "t:/etc/turnserver.conf",
            &secrets,
        );
        assert!(!d.contains("OLDVALUE") && !d.contains("NEWSECRET"), "{d}");
        assert!(
            d.contains(
                "-static-auth-secret=<redacted> (old value)\n+static-auth-secret=<redacted>\n"
            ),
            "{d}"
        );
    }
}
