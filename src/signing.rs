//! Replay protection shared by the signed webhooks (Slack's and CRMs'): a Unix-seconds
//! timestamp header must be digits only and within a window of our clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    Malformed,
    Stale { skew_secs: i64 },
}

/// The timestamp, if `raw` is a plain decimal number no more than `max_skew_secs` away
/// from `now_unix` in either direction.
pub fn check_timestamp(
    raw: &[u8],
    now_unix: i64,
    max_skew_secs: i64,
) -> Result<i64, TimestampError> {
    let ts: i64 = std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or(TimestampError::Malformed)?;
    let skew = now_unix.saturating_sub(ts);
    if skew.saturating_abs() > max_skew_secs {
        return Err(TimestampError::Stale { skew_secs: skew });
    }
    Ok(ts)
}
