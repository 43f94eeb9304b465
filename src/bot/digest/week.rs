//! Pure calendar logic for the digest: ISO weeks, a team's schedule, and which run is due
//! at a given instant. Time is always a parameter; nothing here reads the clock.
//!
//! A digest is named by the ISO week it reports on (Monday 00:00 to the next Monday 00:00
//! in the team's time zone). It is posted in the following ISO week, on the team's
//! weekday at its local time; a local time that does not exist that day (the spring-forward
//! gap) moves forward by the gap, and one that happens twice (fall-back) takes the first
//! (jiff's `compatible` disambiguation, as RFC 5545 prescribes).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A run this late (after its scheduled time) is still caught up; later ones are skipped.
pub const CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeekError {
    #[error("`{0}` is not an ISO week; use the form 2026-W47")]
    BadWeek(String),
    #[error("date out of range")]
    OutOfRange,
}

impl From<jiff::Error> for WeekError {
    fn from(_: jiff::Error) -> WeekError {
        WeekError::OutOfRange
    }
}

/// An ISO 8601 week, e.g. `2026-W47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    year: i16,
    week: i8,
}

impl IsoWeek {
    pub fn new(year: i16, week: i8) -> Result<IsoWeek, WeekError> {
        ISOWeekDate::new(year, week, Weekday::Monday)
            .map_err(|_| WeekError::BadWeek(format!("{year}-W{week:02}")))?;
        Ok(IsoWeek { year, week })
    }

    /// The ISO week a civil date falls in.
    pub fn containing(date: Date) -> IsoWeek {
        let iso = date.iso_week_date();
        IsoWeek {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The ISO week an instant falls in, in `tz`.
    pub fn at(ts: Timestamp, tz: &TimeZone) -> IsoWeek {
        IsoWeek::containing(ts.to_zoned(tz.clone()).date())
    }

    pub fn year(self) -> i16 {
        self.year
    }

    pub fn week(self) -> i8 {
        self.week
    }

    pub fn monday(self) -> Result<Date, WeekError> {
        Ok(ISOWeekDate::new(self.year, self.week, Weekday::Monday)?.date())
    }

    pub fn day(self, weekday: Weekday) -> Result<Date, WeekError> {
        Ok(ISOWeekDate::new(self.year, self.week, weekday)?.date())
    }

    pub fn next(self) -> Result<IsoWeek, WeekError> {
        Ok(IsoWeek::containing(self.monday()?.checked_add(7.days())?))
    }

    pub fn prev(self) -> Result<IsoWeek, WeekError> {
        Ok(IsoWeek::containing(self.monday()?.checked_sub(7.days())?))
    }

    /// `[start, end)` of the week in `tz`, as Unix milliseconds (midnight to midnight,
    /// so 167 or 169 hours in a week with a DST change).
    pub fn window_ms(self, tz: &TimeZone) -> Result<(i64, i64), WeekError> {
        let start = local_instant(self.monday()?, 0, 0, tz)?;
        let end = local_instant(self.next()?.monday()?, 0, 0, tz)?;
        Ok((start.as_millisecond(), end.as_millisecond()))
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for IsoWeek {
    type Err = WeekError;

    /// `2026-W47` (also `2026-w47`, `2026W47`).
    fn from_str(s: &str) -> Result<IsoWeek, WeekError> {
        let bad = || WeekError::BadWeek(s.to_owned());
        let t = s.trim();
        let (year, week) = t.split_once(['W', 'w']).ok_or_else(bad)?;
        let year = year.strip_suffix('-').unwrap_or(year);
        if year.len() != 4 || week.len() != 2 {
            return Err(bad());
        }
        let year: i16 = year.parse().map_err(|_| bad())?;
        let week: i8 = week.parse().map_err(|_| bad())?;
        IsoWeek::new(year, week).map_err(|_| bad())
    }
}

/// The instant of a local date and time in `tz`; gaps move forward, folds take the first.
pub fn local_instant(
    date: Date,
    hour: i8,
    minute: i8,
    tz: &TimeZone,
) -> Result<Timestamp, WeekError> {
    let dt = date.at(hour, minute, 0, 0);
    Ok(tz.to_ambiguous_zoned(dt).compatible()?.timestamp())
}

/// When a team's digest is posted: a weekday and local time in an IANA zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub weekday: Weekday,
    pub hour: i8,
    pub minute: i8,
    pub time_zone: TimeZone,
}

impl Schedule {
    /// Monday 09:00 UTC.
    pub fn default_utc() -> Schedule {
        Schedule {
            weekday: Weekday::Monday,
            hour: 9,
            minute: 0,
            time_zone: TimeZone::UTC,
        }
    }

    /// When the digest about `reported` is posted: in the following ISO week.
    pub fn scheduled_at(&self, reported: IsoWeek) -> Result<Timestamp, WeekError> {
        let date = reported.next()?.day(self.weekday)?;
        local_instant(date, self.hour, self.minute, &self.time_zone)
    }

    /// The week whose digest is posted during the ISO week containing `now`: the one before.
    pub fn reported_week_at(&self, now: Timestamp) -> Result<IsoWeek, WeekError> {
        IsoWeek::at(now, &self.time_zone).prev()
    }

    /// The first scheduled post strictly after `now`, and the week it reports on.
    pub fn next_run_after(&self, now: Timestamp) -> Result<(IsoWeek, Timestamp), WeekError> {
        let mut week = self.reported_week_at(now)?.prev()?;
        for _ in 0..3 {
            let at = self.scheduled_at(week)?;
            if at > now {
                return Ok((week, at));
            }
            week = week.next()?;
        }
        Err(WeekError::OutOfRange)
    }

    /// The latest scheduled post at or before `now`, and the week it reports on.
    pub fn last_run_at_or_before(&self, now: Timestamp) -> Result<(IsoWeek, Timestamp), WeekError> {
        let mut week = self.reported_week_at(now)?.next()?;
        for _ in 0..3 {
            let at = self.scheduled_at(week)?;
            if at <= now {
                return Ok((week, at));
            }
            week = week.prev()?;
        }
        Err(WeekError::OutOfRange)
    }
}

/// What the scheduler should do about a team at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing has been scheduled since the settings were saved.
    Nothing,
    /// Post the digest about `week` (on time, or caught up within 24 hours).
    Run {
        week: IsoWeek,
        scheduled_at: Timestamp,
    },
    /// The post about `week` is 24 hours late or more (downtime): record it as skipped.
    Skip {
        week: IsoWeek,
        scheduled_at: Timestamp,
    },
}

/// The run due at `now` for a schedule saved at `since`. Whether it was already done is
/// the store's business (the run row); this only says which week and whether it is still
/// worth posting.
pub fn due_run(schedule: &Schedule, now: Timestamp, since: Timestamp) -> Result<Due, WeekError> {
    let (week, scheduled_at) = schedule.last_run_at_or_before(now)?;
    if scheduled_at < since {
        return Ok(Due::Nothing);
    }
    let late = now.as_millisecond() - scheduled_at.as_millisecond();
    if late < CATCH_UP_WINDOW.as_millis() as i64 {
        Ok(Due::Run { week, scheduled_at })
    } else {
        Ok(Due::Skip { week, scheduled_at })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(weekday: Weekday, hour: i8, minute: i8, zone: &str) -> Schedule {
        Schedule {
            weekday,
            hour,
            minute,
            time_zone: tz(zone),
        }
    }

    fn local(at: Timestamp, zone: &str) -> String {
        at.to_zoned(tz(zone))
            .strftime("%Y-%m-%d %a %H:%M %Z")
            .to_string()
    }

    #[test]
    fn weeks_parse_print_and_step_across_years() {
        let w: IsoWeek = "2026-W47".parse().unwrap();
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!(
            "2026w05".parse::<IsoWeek>().unwrap().to_string(),
            "2026-W05"
        );
        for bad in ["2026-47", "2026-W54", "26-W01", "2025-W53", "", "2026-W4x"] {
            let err = bad.parse::<IsoWeek>().unwrap_err();
            assert!(err.to_string().contains("2026-W47"), "{bad}: {err}");
        }
        // 2026 has 53 ISO weeks; 2027-W01 starts on 4 Jan 2027.
        let last: IsoWeek = "2026-W53".parse().unwrap();
        assert_eq!(last.next().unwrap().to_string(), "2027-W01");
        assert_eq!(last.next().unwrap().prev().unwrap(), last);
        assert_eq!(
            last.next().unwrap().monday().unwrap().to_string(),
            "2027-01-04"
        );
        // 1 Jan 2027 (a Friday) belongs to 2026-W53.
        assert_eq!(IsoWeek::containing(jiff::civil::date(2027, 1, 1)), last);
    }

    #[test]
    fn berlin_nine_am_stays_nine_am_across_both_dst_changes() {
        let s = schedule(Weekday::Monday, 9, 0, "Europe/Berlin");
        // Clocks go forward on Sun 29 Mar 2026 and back on Sun 25 Oct 2026.
        let before = s.scheduled_at("2026-W12".parse().unwrap()).unwrap();
        let after = s.scheduled_at("2026-W13".parse().unwrap()).unwrap();
        assert_eq!(before, ts("2026-03-23T08:00:00Z"));
        assert_eq!(after, ts("2026-03-30T07:00:00Z"));
        assert_eq!(local(after, "Europe/Berlin"), "2026-03-30 Mon 09:00 CEST");
        let autumn = s.scheduled_at("2026-W43".parse().unwrap()).unwrap();
        assert_eq!(autumn, ts("2026-10-26T08:00:00Z"));
        assert_eq!(local(autumn, "Europe/Berlin"), "2026-10-26 Mon 09:00 CET");
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_and_a_repeated_one_takes_the_first() {
        // Sunday 29 Mar 2026 02:30 does not exist in Berlin; 25 Oct 02:30 happens twice.
        let s = schedule(Weekday::Sunday, 2, 30, "Europe/Berlin");
        let gap = s.scheduled_at("2026-W12".parse().unwrap()).unwrap();
        assert_eq!(local(gap, "Europe/Berlin"), "2026-03-29 Sun 03:30 CEST");
        let fold = s.scheduled_at("2026-W42".parse().unwrap()).unwrap();
        assert_eq!(fold, ts("2026-10-25T00:30:00Z"));
        assert_eq!(local(fold, "Europe/Berlin"), "2026-10-25 Sun 02:30 CEST");
    }

    #[test]
    fn new_york_schedule_follows_its_own_dst_dates() {
        // US clocks go forward on 8 Mar 2026, two weeks before Europe's.
        let s = schedule(Weekday::Monday, 9, 0, "America/New_York");
        assert_eq!(
            s.scheduled_at("2026-W10".parse().unwrap()).unwrap(),
            ts("2026-03-09T13:00:00Z")
        );
        assert_eq!(
            s.scheduled_at("2026-W09".parse().unwrap()).unwrap(),
            ts("2026-03-02T14:00:00Z")
        );
        // Fall back on 1 Nov 2026.
        assert_eq!(
            s.scheduled_at("2026-W44".parse().unwrap()).unwrap(),
            ts("2026-11-02T14:00:00Z")
        );
    }

    #[test]
    fn week_window_is_local_midnight_to_midnight_and_short_in_spring() {
        let berlin = tz("Europe/Berlin");
        let (start, end) = "2026-W13"
            .parse::<IsoWeek>()
            .unwrap()
            .window_ms(&berlin)
            .unwrap();
        assert_eq!(start, ts("2026-03-22T23:00:00Z").as_millisecond());
        assert_eq!(end, ts("2026-03-29T22:00:00Z").as_millisecond());
        assert_eq!(end - start, 167 * 3_600_000);
    }

    #[test]
    fn next_run_is_strictly_after_now() {
        let s = schedule(Weekday::Monday, 9, 0, "Europe/Berlin");
        let at = ts("2026-11-23T08:00:00Z"); // Mon 09:00 CET
        let (week, next) = s.next_run_after(at).unwrap();
        assert_eq!(
            (week.to_string(), next),
            ("2026-W48".into(), ts("2026-11-30T08:00:00Z"))
        );
        let (week, next) = s.next_run_after(ts("2026-11-23T07:59:59Z")).unwrap();
        assert_eq!((week.to_string(), next), ("2026-W47".into(), at));
    }

    #[test]
    fn due_run_posts_on_time_catches_up_under_a_day_and_skips_after() {
        let s = schedule(Weekday::Monday, 9, 0, "Europe/Berlin");
        let since = ts("2026-01-01T00:00:00Z");
        let at = ts("2026-11-23T08:00:00Z");
        let w47: IsoWeek = "2026-W47".parse().unwrap();
        let run = Due::Run {
            week: w47,
            scheduled_at: at,
        };
        assert_eq!(due_run(&s, at, since).unwrap(), run);
        let before = due_run(&s, ts("2026-11-23T07:59:00Z"), since).unwrap();
        assert_eq!(
            before,
            Due::Run {
                week: "2026-W46".parse().unwrap(),
                scheduled_at: ts("2026-11-16T08:00:00Z")
            }
            .skip_form()
        );
        assert_eq!(due_run(&s, ts("2026-11-24T07:59:59Z"), since).unwrap(), run);
        assert_eq!(
            due_run(&s, ts("2026-11-24T08:00:00Z"), since).unwrap(),
            Due::Skip {
                week: w47,
                scheduled_at: at
            }
        );
        // Set up after this week's time: nothing is owed until next week.
        assert_eq!(
            due_run(&s, ts("2026-11-23T10:00:00Z"), ts("2026-11-23T09:00:00Z")).unwrap(),
            Due::Nothing
        );
    }

    #[test]
    fn a_sunday_evening_run_is_still_caught_up_after_the_iso_week_turns() {
        let s = schedule(Weekday::Sunday, 23, 0, "UTC");
        // Due Sun 29 Nov 2026 23:00 UTC (reports W47); at Mon 01:00 it is 2 h late.
        let due = due_run(&s, ts("2026-11-30T01:00:00Z"), ts("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            due,
            Due::Run {
                week: "2026-W47".parse().unwrap(),
                scheduled_at: ts("2026-11-29T23:00:00Z")
            }
        );
    }

    impl Due {
        /// A week-old run seen just before the next one is due: skipped.
        fn skip_form(self) -> Due {
            match self {
                Due::Run { week, scheduled_at } => Due::Skip { week, scheduled_at },
                other => other,
            }
        }
    }
}
