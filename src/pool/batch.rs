//! `--batch-size`: how many nodes an upgrade takes out of service at once. A number (`2`), a
//! percentage of the nodes (`25%`), or a list of growing sizes (`1,10%,50%,100%`) whose last
//! entry repeats, so a canary goes first and the rest follows faster.

/// Why a `--batch-size` cannot be used (bad input: exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchSizeError {
    #[error("--batch-size: `{0}` is not a percentage")]
    NotPercent(String),
    #[error("--batch-size: `{0}` must be between 0% and 100%")]
    PercentRange(String),
    #[error("--batch-size: `{0}` is not a number or a percentage")]
    NotNumber(String),
    #[error("--batch-size: a batch needs at least 1 node")]
    Zero,
}

/// One entry of the list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Count(usize),
    Percent(f64),
}

/// A parsed `--batch-size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batches(Vec<Size>);

impl Batches {
    /// Parses `--batch-size`.
    ///
    /// Errors: an entry that is not a count of at least 1 or a percentage in (0, 100].
    pub fn parse(spec: &str) -> Result<Batches, BatchSizeError> {
        let mut out = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let size = if let Some(p) = part.strip_suffix('%') {
                let v: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| BatchSizeError::NotPercent(part.into()))?;
                if !(v > 0.0 && v <= 100.0) {
                    return Err(BatchSizeError::PercentRange(part.into()));
                }
                Size::Percent(v)
            } else {
                let v: usize = part
                    .parse()
                    .map_err(|_| BatchSizeError::NotNumber(part.into()))?;
                if v == 0 {
                    return Err(BatchSizeError::Zero);
                }
                Size::Count(v)
            };
            out.push(size);
        }
        Ok(Batches(out))
    }

    /// The size of batch `index` (0-based) for a pool of `total` nodes; at least 1.
    pub fn size(&self, index: usize, total: usize) -> usize {
        let entry = self.0[index.min(self.0.len() - 1)];
        match entry {
            Size::Count(n) => n,
            Size::Percent(p) => ((p * total as f64 / 100.0).ceil() as usize).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_batches_repeat_their_last_size() {
        let b = Batches::parse("1,10%,50%,100%").unwrap();
        let sizes: Vec<usize> = (0..5).map(|i| b.size(i, 20)).collect();
        assert_eq!(sizes, vec![1, 2, 10, 20, 20]);
        assert_eq!(Batches::parse("25%").unwrap().size(0, 6), 2);
        assert_eq!(Batches::parse("2").unwrap().size(7, 6), 2);
        assert!(Batches::parse("0").is_err());
        assert!(Batches::parse("150%").is_err());
        assert!(Batches::parse("a").is_err());
    }
}
