//! The options of the `--nemesis` items (`kill:leader`, `loss:0.2`, `stall:1000`): each item's
//! parser, with the error that says what the option must be.

use std::str::FromStr;

use crate::spec::{
    Target, MAX_APPLY_DELAY_MS, MAX_REORDER_MS, MAX_STALE_HOLD_MS, MAX_STALL_AWAKE_MS, MAX_WEIGHT,
};

pub(crate) fn parse_opt<T: FromStr<Err = String>>(
    option: Option<&str>,
) -> std::result::Result<Option<T>, String> {
    option.map(str::parse).transpose()
}

/// Corrupting a majority of disks can lose committed data in any Raft, so those targets are
/// refused rather than blamed on the node.
pub(crate) fn parse_corrupt(option: Option<&str>) -> std::result::Result<Option<Target>, String> {
    match parse_opt::<Target>(option)? {
        Some(t @ (Target::Majority | Target::All)) => Err(format!(
            "corrupt:{t} would damage a majority of disks, which loses committed data in any Raft \
             implementation; use corrupt:one, corrupt:minority, corrupt:leader or corrupt:random \
             (and power-cut:all for every node at once)"
        )),
        target => Ok(target),
    }
}

pub(crate) fn parse_reorder(option: Option<&str>) -> std::result::Result<Option<u16>, String> {
    parse_ms(option, MAX_REORDER_MS, |text, max| {
        format!(
            "reorder `{text}` must be the longest hold of a peer message in ms, 1 to {max}, \
             e.g. reorder:50"
        )
    })
}

pub(crate) fn parse_stall(option: Option<&str>) -> std::result::Result<Option<u16>, String> {
    parse_ms(option, MAX_STALL_AWAKE_MS, |text, max| {
        format!(
            "stall `{text}` must be how long the woken leader stays cut off in ms, 1 to {max}, \
             e.g. stall:1000"
        )
    })
}

pub(crate) fn parse_stale_hold(option: Option<&str>) -> std::result::Result<Option<u16>, String> {
    parse_ms(option, MAX_STALE_HOLD_MS, |text, max| {
        format!(
            "stale-candidate `{text}` must be how long the lagging node stays the only link \
             between the others in ms, 1 to {max}, e.g. stale-candidate:1000"
        )
    })
}

pub(crate) fn parse_apply_delay(option: Option<&str>) -> std::result::Result<Option<u16>, String> {
    parse_ms(option, MAX_APPLY_DELAY_MS, |text, max| {
        format!(
            "slow-apply `{text}` must be the delay between commit and apply in ms, 1 to {max}, \
             e.g. slow-apply:500"
        )
    })
}

/// An option of whole milliseconds, 1 to `max` (a trailing `ms` allowed); `None` if absent.
fn parse_ms(
    option: Option<&str>,
    max: u16,
    error: impl Fn(&str, u16) -> String,
) -> std::result::Result<Option<u16>, String> {
    let Some(text) = option else {
        return Ok(None);
    };
    match text.trim_end_matches("ms").parse::<u16>() {
        Ok(ms) if (1..=max).contains(&ms) => Ok(Some(ms)),
        _ => Err(error(text, max)),
    }
}

pub(crate) fn parse_delay(option: Option<&str>) -> std::result::Result<Option<u16>, String> {
    let Some(text) = option else {
        return Ok(None);
    };
    let max = crate::delay::MAX_DELAY_MS;
    match text.trim_end_matches("ms").parse::<u16>() {
        Ok(ms) if (1..=max).contains(&ms) => Ok(Some(ms)),
        _ => Err(format!(
            "delay `{text}` must be the longest delay per link in ms, 1 to {max}, e.g. delay:100"
        )),
    }
}

pub(crate) fn parse_probability(option: Option<&str>) -> std::result::Result<Option<f64>, String> {
    let Some(text) = option else {
        return Ok(None);
    };
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(Some(p)),
        _ => Err(format!(
            "loss probability `{text}` must be a number in (0, 1], e.g. loss:0.2"
        )),
    }
}

/// An item's `*WEIGHT`: a whole number, 1 to [`MAX_WEIGHT`].
pub(crate) fn parse_weight(text: &str) -> std::result::Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(w) if (1..=MAX_WEIGHT).contains(&w) => Ok(w),
        _ => Err(format!(
            "weight `*{text}` must be a whole number, 1 to {MAX_WEIGHT}: how many times as often \
             the item is drawn as one without a weight, e.g. stall*3"
        )),
    }
}
