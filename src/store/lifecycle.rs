//! Lifecycle expiry: the [`ExpiryRule`]s of each bucket, applied by the
//! background reaper (`gc.rs`). A pass walks a bucket's versions page by
//! page in read transactions, decides what has expired, and applies each
//! action in its own write, which first checks that the version is still
//! the one seen: a client's write in between always wins.
//!
//! Time is counted in lifecycle days (`day_ms`, one real day unless a test
//! shortens it); like S3, an expiry time is rounded up to a day boundary.

use super::meta::MetaTxn;
use super::schema::{object_key, ExpireAfter, ExpiryRule, ObjectRecord, ObjectVersion};
use super::txn::read_object;
use super::version_list::{VersionEntry, VersionQuery};
use super::versions::{self, bucket_versioning, VersionId};
use super::{Store, StoreResult};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Current objects expired (removed, or hidden by a delete marker).
    pub expired: u64,
    /// Delete markers removed because they were a key's only version.
    pub markers_removed: u64,
    /// Noncurrent versions removed.
    pub noncurrent_removed: u64,
}

/// Versions read per read transaction.
const PAGE: usize = 1000;

#[derive(Debug, Clone)]
enum Action {
    ExpireCurrent { key: String, version: ObjectVersion },
    RemoveMarker { key: String, id: VersionId },
    RemoveNoncurrent { key: String, id: VersionId },
}

impl Action {
    fn key(&self) -> &str {
        match self {
            Action::ExpireCurrent { key, .. }
            | Action::RemoveMarker { key, .. }
            | Action::RemoveNoncurrent { key, .. } => key,
        }
    }
}

/// The time `days` lifecycle days after `start`, rounded up to a day boundary.
fn after_days(start_ms: i64, days: u32, day_ms: i64) -> i64 {
    let end = start_ms.saturating_add(i64::from(days).saturating_mul(day_ms));
    end.div_euclid(day_ms).saturating_add(i64::from(end.rem_euclid(day_ms) != 0)).saturating_mul(day_ms)
}

fn matches(rule: &ExpiryRule, key: &str, record: &ObjectRecord) -> bool {
    let f = &rule.filter;
    key.starts_with(f.prefix.as_str())
        && f.tags.iter().all(|tag| record.tags.contains(tag))
        && f.size_greater_than.is_none_or(|min| record.size > min)
        && f.size_less_than.is_none_or(|max| record.size < max)
}

/// What is known of the key being walked.
struct KeyState {
    key: String,
    /// Versions of the key seen so far, newest first.
    seen: u32,
    /// Noncurrent versions seen so far.
    noncurrent: u32,
    /// When the previous (newer) version was written: when the next one
    /// became noncurrent.
    newer_written_ms: i64,
    /// The key's latest version, if it is a delete marker.
    latest_marker: Option<VersionId>,
}

struct Planner<'a> {
    rules: &'a [ExpiryRule],
    now_ms: i64,
    day_ms: i64,
    state: Option<KeyState>,
    actions: Vec<Action>,
}

impl Planner<'_> {
    fn version(&mut self, key: &str, record: &ObjectRecord, latest: bool) {
        if self.state.as_ref().is_none_or(|s| s.key != key) {
            self.finish_key();
            let state =
                KeyState { key: key.to_string(), seen: 0, noncurrent: 0, newer_written_ms: 0, latest_marker: None };
            self.state = Some(state);
        }
        let Some(state) = self.state.as_mut() else { return };
        state.seen += 1;
        let (now, day) = (self.now_ms, self.day_ms);
        if latest && record.version.delete_marker {
            state.latest_marker = Some(VersionId::of(&record.version));
        } else if latest {
            let due = |rule: &ExpiryRule| match rule.expire {
                Some(ExpireAfter::Days(days)) => now >= after_days(record.last_modified_ms, days, day),
                Some(ExpireAfter::Date(date)) => now >= date,
                None => false,
            };
            if self.rules.iter().any(|r| due(r) && matches(r, key, record)) {
                self.actions.push(Action::ExpireCurrent { key: key.to_string(), version: record.version });
            }
        } else {
            state.noncurrent += 1;
            let (index, since) = (state.noncurrent, state.newer_written_ms);
            let due = |rule: &ExpiryRule| match rule.noncurrent {
                Some((days, keep)) => index > keep && now >= after_days(since, days, day),
                None => false,
            };
            if self.rules.iter().any(|r| due(r) && matches(r, key, record)) {
                let id = VersionId::of(&record.version);
                self.actions.push(Action::RemoveNoncurrent { key: key.to_string(), id });
            }
        }
        state.newer_written_ms = record.last_modified_ms;
    }

    /// A delete marker that is its key's only version expires at once
    /// under a rule with `ExpiredObjectDeleteMarker`.
    fn finish_key(&mut self) {
        let Some(state) = self.state.take() else { return };
        let Some(id) = state.latest_marker.filter(|_| state.seen == 1) else { return };
        let wanted = |r: &ExpiryRule| r.expired_object_delete_marker && state.key.starts_with(r.filter.prefix.as_str());
        if self.rules.iter().any(wanted) {
            self.actions.push(Action::RemoveMarker { key: state.key, id });
        }
    }
}

impl Store {
    /// One lifecycle pass over every bucket with expiry rules. Blocking.
    pub fn apply_lifecycle(&self, now_ms: i64, day_ms: i64) -> StoreResult<ExpiryReport> {
        let mut report = ExpiryReport::default();
        for (bucket, rules) in self.expiry_rules()? {
            for action in self.plan_expiry(&bucket, &rules, now_ms, day_ms.max(1))? {
                self.expire(&bucket, action, &mut report)?;
            }
        }
        Ok(report)
    }

    fn expiry_rules(&self) -> StoreResult<Vec<(String, Vec<ExpiryRule>)>> {
        let buckets = self.read(|txn| txn.buckets())?;
        let with_rules = buckets.into_iter().filter_map(|(name, record)| {
            let rules = record.lifecycle.map(|l| l.expiry_rules).unwrap_or_default();
            (!rules.is_empty()).then_some((name, rules))
        });
        Ok(with_rules.collect())
    }

    /// What has expired in `bucket`, walking its versions a page at a time.
    fn plan_expiry(&self, bucket: &str, rules: &[ExpiryRule], now_ms: i64, day_ms: i64) -> StoreResult<Vec<Action>> {
        let mut planner = Planner { rules, now_ms, day_ms, state: None, actions: Vec::new() };
        let mut query = VersionQuery {
            prefix: String::new(),
            delimiter: None,
            key_marker: None,
            version_marker: None,
            max_keys: PAGE,
        };
        loop {
            let page = self.list_versions(bucket, &query)?;
            for entry in &page.entries {
                if let VersionEntry::Version { key, record, latest } = entry {
                    planner.version(key, record, *latest);
                }
            }
            match (page.truncated, page.entries.last()) {
                (true, Some(VersionEntry::Version { key, record, .. })) => {
                    query.key_marker = Some(key.clone());
                    query.version_marker = Some(VersionId::of(&record.version));
                }
                _ => break,
            }
        }
        planner.finish_key();
        Ok(planner.actions)
    }

    /// Applies one action if what it was planned on is unchanged.
    fn expire(&self, bucket: &str, action: Action, report: &mut ExpiryReport) -> StoreResult<()> {
        let bucket = bucket.to_string();
        let done = self.write_freeing(move |txn| {
            let versioning = bucket_versioning(txn, &bucket)?;
            let key = action.key();
            let current = read_object(txn, &bucket, key)?;
            let row = object_key(&bucket, key.as_bytes());
            let dead = match &action {
                Action::ExpireCurrent { version, .. } if current.as_ref().is_some_and(|c| c.version == *version) => {
                    versions::delete_latest(txn, (&bucket, key), current, versioning)?.1
                }
                Action::RemoveMarker { id, .. } if current.is_none() && only_version_is(txn, &row, *id)? => {
                    versions::delete_version(txn, (&bucket, key), None, *id)?.1
                }
                Action::RemoveNoncurrent { id, .. } if versions::noncurrent(txn, &row, *id)?.is_some() => {
                    versions::delete_version(txn, (&bucket, key), current, *id)?.1
                }
                _ => return Ok((None, Vec::new())),
            };
            Ok((Some(action.clone()), dead))
        })?;
        match done {
            Some(Action::ExpireCurrent { .. }) => report.expired += 1,
            Some(Action::RemoveMarker { .. }) => report.markers_removed += 1,
            Some(Action::RemoveNoncurrent { .. }) => report.noncurrent_removed += 1,
            None => {}
        }
        Ok(())
    }
}

/// Whether the key `row` has exactly one noncurrent row, the version `id`.
fn only_version_is(txn: &dyn MetaTxn, row: &[u8], id: VersionId) -> StoreResult<bool> {
    let (mut seen, mut first) = (0, None);
    txn.find_version(row, &mut |record| {
        seen += 1;
        first = first.or(Some(VersionId::of(&record.version)));
        seen > 1
    })?;
    Ok(seen == 1 && first == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn expiry_times_round_up_to_a_day_boundary() {
        assert_eq!(after_days(0, 1, DAY), DAY);
        assert_eq!(after_days(1, 1, DAY), 2 * DAY, "written just after midnight: expires the midnight after next");
        assert_eq!(after_days(DAY - 1, 0, DAY), DAY);
        assert_eq!(after_days(5_000, 2, 1000), 7_000);
    }
}
