//! The failure budget of an upgrade. A node that fails stays cordoned, so it keeps using one
//! of the batch's slots for the rest of the run: the next batch has `size - failed` slots.
//! After each batch the run stops once more nodes failed than `--max-failures`.
//!
//! Today the two rules interact: with batch size 1, the first failure leaves no slot, so
//! `--max-failures N` cannot let the run go on there. Changing that is a change of
//! [`slots`] (and its table), nothing else.

use super::stop::Stop;

/// Nodes the next batch may take out of service: its `size` less the `failed` nodes of this
/// run that still hold a slot. [`Stop::NoSlotLeft`] when none is left.
pub fn slots(size: usize, failed: usize) -> Result<usize, Stop> {
    match size.saturating_sub(failed) {
        0 => Err(Stop::NoSlotLeft { failed, size }),
        n => Ok(n),
    }
}

/// After a batch: [`Stop::TooManyFailures`] once `failed` exceeds `--max-failures`.
pub fn check(failed: usize, max_failures: usize) -> Result<(), Stop> {
    if failed > max_failures {
        return Err(Stop::TooManyFailures {
            failed,
            max: max_failures,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_table() {
        // (batch size, failed so far) -> slots, or None for "no slot left"
        let rows: &[(usize, usize, Option<usize>)] = &[
            (1, 0, Some(1)),
            (1, 1, None), // --max-failures N with batch size 1 stops at the first failure
            (1, 2, None),
            (2, 0, Some(2)),
            (2, 1, Some(1)), // the failed node keeps its slot
            (2, 2, None),
            (2, 3, None),
            (5, 2, Some(3)),
            (20, 0, Some(20)),
        ];
        for &(size, failed, want) in rows {
            let got = slots(size, failed);
            match want {
                Some(n) => assert_eq!(got, Ok(n), "size {size}, failed {failed}"),
                None => assert_eq!(
                    got,
                    Err(Stop::NoSlotLeft { failed, size }),
                    "size {size}, failed {failed}"
                ),
            }
        }
    }

    #[test]
    fn check_table() {
        // (failed so far, --max-failures) -> the run goes on
        let rows: &[(usize, usize, bool)] = &[
            (0, 0, true),
            (1, 0, false), // the default stops at the first failure
            (1, 1, true),
            (2, 1, false),
            (2, 3, true),
            (3, 3, true),
            (4, 3, false),
        ];
        for &(failed, max, goes_on) in rows {
            let got = check(failed, max);
            if goes_on {
                assert_eq!(got, Ok(()), "failed {failed}, max {max}");
            } else {
                assert_eq!(
                    got,
                    Err(Stop::TooManyFailures { failed, max }),
                    "failed {failed}, max {max}"
                );
            }
        }
    }
}
