//! `cusp export`: observations with their themes as CSV or JSON Lines, streamed so that
//! memory stays flat for millions of rows; `--corrections`: people's corrections in the
//! labelled-file format `cusp eval` reads.

use std::io::Write;

use serde_json::json;

use crate::store::{CorrectionRow, ExportFilter, ExportRow, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

pub const CSV_HEADER: &str = "team_id,channel_id,user_id,ts,source,class,score,themes,created_at";

/// Writes every observation of `team` (or of every team, one team at a time) to `out`.
/// Returns the number of observations written.
pub async fn export(
    store: &Store,
    team: Option<&str>,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let teams = match team {
        Some(team) => vec![team.to_owned()],
        None => store.observed_teams().await?,
    };
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut count = 0u64;
    for team in &teams {
        store
            .for_each_observation(
                team,
                filter,
                &mut |row: ExportRow| -> Result<(), ExportError> {
                    count += 1;
                    match format {
                        ExportFormat::Csv => write_csv_row(out, &row),
                        ExportFormat::Json => write_json_row(out, &row),
                    }
                },
            )
            .await?;
    }
    out.flush()?;
    Ok(count)
}

/// What `export_corrections` wrote and what it had to leave out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrectionCounts {
    pub written: u64,
    /// Corrections whose person did not share their text: nothing to evaluate on.
    pub without_text: u64,
}

/// Writes the corrections of `team` (or of every team) that carry text as JSON Lines in the
/// labelled-file format of `eval/dev.jsonl` (`text`, `is_deal_update`, `class`, `themes`,
/// plus `id`, `team_id`, `note`), so `cusp eval` measures cusp on the team's own words.
pub async fn export_corrections(
    store: &Store,
    team: Option<&str>,
    filter: &ExportFilter,
    out: &mut dyn Write,
) -> Result<CorrectionCounts, ExportError> {
    let teams = match team {
        Some(team) => vec![team.to_owned()],
        None => store.corrected_teams().await?,
    };
    let mut counts = CorrectionCounts::default();
    for team in &teams {
        for row in store.corrections(team, filter).await? {
            if row.text.is_some() {
                write_correction(out, &row)?;
                counts.written += 1;
            } else {
                counts.without_text += 1;
            }
        }
    }
    out.flush()?;
    Ok(counts)
}

fn write_correction(out: &mut dyn Write, row: &CorrectionRow) -> Result<(), ExportError> {
    let engine = if row.engine.themes.is_empty() {
        "no theme".to_owned()
    } else {
        row.engine.themes.join(", ")
    };
    let note = format!(
        "corrected in Slack on {}; cusp had read: {}, {engine}",
        rfc3339(row.created_at_ms),
        if row.engine.deal_update {
            "deal update"
        } else {
            "not a deal update"
        }
    );
    let value = json!({
        "id": format!("correction-{}", row.id),
        "team_id": row.team_id,
        "text": row.text,
        "is_deal_update": row.corrected.deal_update,
        "class": row.class,
        "themes": row.corrected.themes,
        "note": note,
    });
    serde_json::to_writer(&mut *out, &value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn write_json_row(out: &mut dyn Write, row: &ExportRow) -> Result<(), ExportError> {
    let value = json!({
        "team_id": row.team_id,
        "channel_id": row.channel_id,
        "user_id": row.user_id,
        "ts": row.ts,
        "source": row.source,
        "class": row.class,
        "score": row.score,
        "themes": row.themes,
        "created_at": rfc3339(row.created_at_ms),
    });
    serde_json::to_writer(&mut *out, &value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn write_csv_row(out: &mut dyn Write, row: &ExportRow) -> Result<(), ExportError> {
    let fields = [
        csv_field(&row.team_id),
        csv_field(&row.channel_id),
        csv_field(&row.user_id),
        csv_field(row.ts.as_deref().unwrap_or("")),
        csv_field(&row.source),
        csv_field(&row.class),
        row.score.to_string(),
        csv_field(&row.themes.join(";")),
        rfc3339(row.created_at_ms),
    ];
    writeln!(out, "{}", fields.join(","))?;
    Ok(())
}

/// RFC 4180 quoting: only fields with a comma, quote or line break are quoted.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 timestamp → Unix milliseconds.
/// With `end_of_day`, a bare date means the end of that day, so `--until 2026-11-30`
/// includes the 30th.
pub fn parse_date_bound(input: &str, end_of_day: bool) -> Result<i64, String> {
    if let Ok(ts) = input.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let date: jiff::civil::Date = input.parse().map_err(|_| {
        format!(
            "{input:?} is not a date; use YYYY-MM-DD or an RFC 3339 time like 2026-11-01T09:00:00Z"
        )
    })?;
    let date = if end_of_day {
        date.tomorrow().map_err(|e| e.to_string())?
    } else {
        date
    };
    let ts = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .timestamp();
    Ok(ts.as_millisecond())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("C123"), "C123");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn date_bounds_cover_whole_days() {
        let start = parse_date_bound("2026-11-01", false).unwrap();
        let end = parse_date_bound("2026-11-01", true).unwrap();
        assert_eq!(end - start, 24 * 3600 * 1000);
        assert_eq!(
            parse_date_bound("2026-11-01T00:00:00Z", true).unwrap(),
            start
        );
        assert!(
            parse_date_bound("last tuesday", false)
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
    }
}
