//! One kind of timed event (a menu key's clicks, or orders) kept for window totals: which
//! followers' count or sum inside a window compares one way or the other.
//!
//! Entries are kept in time order, so a window is a binary search plus a scan of the entries
//! inside it, each added into its follower's slot of a scratch array as long as the followers
//! (8 MB at a million: it stays in the last-level cache, so even the million entries of orders
//! over 90 days take about 10 ms; a follower-major copy read sequentially measured no faster).

use roaring::RoaringBitmap;

/// Entries appended out of time order wait in a tail until it holds this many, or an eighth of
/// the sorted part if that is more, and are then merged in one sort: a backfill of old orders
/// costs a few merges, and a bulk load of millions costs O(n log n), not one merge per 4,096.
pub(super) const UNSORTED_LIMIT: usize = 4_096;

/// A set of followers filled in one pass, as plain bits: `RoaringBitmap::push` rescans a dense
/// container for its maximum on every append (`spent(all) > N` took 60 ms at a million
/// followers, 4 ms with this), while setting bits and converting once is a fraction of a
/// millisecond.
struct Followers {
    bits: Vec<u8>,
}

impl Followers {
    fn new(followers: usize) -> Self {
        Self { bits: vec![0; followers.div_ceil(8)] }
    }

    fn insert(&mut self, n: usize) {
        self.bits[n / 8] |= 1 << (n % 8);
    }

    fn into_bitmap(self) -> RoaringBitmap {
        RoaringBitmap::from_lsb0_bytes(0, &self.bits)
    }
}

/// One timed event of one follower; `value` is an order's amount in cents, 1 for a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub at: i64,
    pub who: u32,
    pub value: i64,
}

/// Whether a window total is wanted as a count of entries or a sum of their values.
#[derive(Debug, Clone, Copy)]
pub(super) enum Measure {
    Count,
    Sum,
}

/// Events of one kind in time order, stored column by column: a count over a window reads only
/// the followers' numbers (4 bytes an entry), a sum also the amounts. Plus a short unsorted tail.
#[derive(Debug, Default, Clone)]
pub(super) struct Timeline {
    at: Vec<i64>,
    who: Vec<u32>,
    /// Amounts in cents, in the order of `at`; empty unless `weighted` (clicks all count 1).
    value: Vec<i64>,
    weighted: bool,
    unsorted: Vec<Entry>,
    /// Weighted timelines only (orders: the longest, and `orders(all)` / `spent(all)` the
    /// costliest terms to scan): each follower's count and sum over every entry, kept as entries
    /// arrive, so a window of `all` is one pass in follower order instead of a scan of millions
    /// of entries with a random write each.
    all_counts: Vec<i64>,
    all_sums: Vec<i64>,
}

impl Timeline {
    pub fn weighted() -> Self {
        Self { weighted: true, ..Self::default() }
    }

    pub fn push(&mut self, entry: Entry) {
        if self.weighted {
            let who = entry.who as usize;
            if self.all_counts.len() <= who {
                self.all_counts.resize(who + 1, 0);
                self.all_sums.resize(who + 1, 0);
            }
            self.all_counts[who] += 1;
            self.all_sums[who] = self.all_sums[who].saturating_add(entry.value);
        }
        if self.unsorted.is_empty() && self.at.last().is_none_or(|&last| last <= entry.at) {
            self.push_sorted(entry);
            return;
        }
        self.unsorted.push(entry);
        if self.unsorted.len() >= UNSORTED_LIMIT.max(self.at.len() / 8) {
            self.settle();
        }
    }

    fn push_sorted(&mut self, entry: Entry) {
        self.at.push(entry.at);
        self.who.push(entry.who);
        if self.weighted {
            self.value.push(entry.value);
        }
    }

    /// Merges the unsorted tail in.
    pub fn settle(&mut self) {
        if self.unsorted.is_empty() {
            return;
        }
        let mut entries = std::mem::take(&mut self.unsorted);
        // Stable, and the tail is its own run: sorting it and merging keeps equal times in the
        // order they arrived.
        entries.sort_by_key(|e| e.at);
        let (at, who, value) =
            (std::mem::take(&mut self.at), std::mem::take(&mut self.who), std::mem::take(&mut self.value));
        let total = at.len() + entries.len();
        self.at.reserve_exact(total);
        self.who.reserve_exact(total);
        if self.weighted {
            self.value.reserve_exact(total);
        }
        let mut old = 0;
        for entry in entries {
            while old < at.len() && at[old] <= entry.at {
                self.push_sorted(Entry { at: at[old], who: who[old], value: value.get(old).copied().unwrap_or(1) });
                old += 1;
            }
            self.push_sorted(entry);
        }
        for i in old..at.len() {
            self.push_sorted(Entry { at: at[i], who: who[i], value: value.get(i).copied().unwrap_or(1) });
        }
    }

    /// Where the sorted part reaches `cutoff` (0 for `None`: every entry).
    fn start(&self, cutoff: Option<i64>) -> usize {
        cutoff.map_or(0, |c| self.at.partition_point(|&at| at < c))
    }

    fn unsorted_since(&self, cutoff: Option<i64>) -> impl Iterator<Item = &Entry> {
        self.unsorted.iter().filter(move |e| cutoff.is_none_or(|c| e.at >= c))
    }

    pub fn forget(&mut self, who: u32) {
        if let Some(count) = self.all_counts.get_mut(who as usize) {
            *count = 0;
            self.all_sums[who as usize] = 0;
        }
        self.unsorted.retain(|e| e.who != who);
        let mut kept = 0;
        for i in 0..self.at.len() {
            if self.who[i] != who {
                self.at[kept] = self.at[i];
                self.who[kept] = self.who[i];
                if self.weighted {
                    self.value[kept] = self.value[i];
                }
                kept += 1;
            }
        }
        self.at.truncate(kept);
        self.who.truncate(kept);
        self.value.truncate(kept);
    }

    pub fn len(&self) -> usize {
        self.at.len() + self.unsorted.len()
    }

    /// The followers (numbered below `followers`) whose count or sum of entries since `cutoff`
    /// is not 0 and satisfies `differs`. `totals` is scratch space at least `followers` long,
    /// zeroed, and left zeroed.
    pub fn differing(
        &self,
        cutoff: Option<i64>,
        measure: Measure,
        followers: usize,
        totals: &mut [i64],
        differs: impl Fn(i64) -> bool,
    ) -> RoaringBitmap {
        if cutoff.is_none() && self.weighted {
            let totals = match measure {
                Measure::Count => &self.all_counts,
                Measure::Sum => &self.all_sums,
            };
            let mut differing = Followers::new(totals.len());
            for (n, &total) in totals.iter().enumerate() {
                if total != 0 && differs(total) {
                    differing.insert(n);
                }
            }
            return differing.into_bitmap();
        }
        let start = self.start(cutoff);
        let who = &self.who[start..];
        match measure {
            Measure::Count => {
                for &n in who {
                    totals[n as usize] += 1;
                }
            }
            Measure::Sum => {
                for (&n, &cents) in who.iter().zip(&self.value[start..]) {
                    totals[n as usize] = totals[n as usize].saturating_add(cents);
                }
            }
        }
        for entry in self.unsorted_since(cutoff) {
            let add = match measure {
                Measure::Count => 1,
                Measure::Sum => entry.value,
            };
            totals[entry.who as usize] = totals[entry.who as usize].saturating_add(add);
        }
        let touched = who.len() + self.unsorted.len();
        if touched < followers / 16 {
            // Few entries: visit only the followers they name (inserting out of order is cheap
            // at this size), zeroing each slot the first time.
            let mut differing = RoaringBitmap::new();
            for n in who.iter().copied().chain(self.unsorted_since(cutoff).map(|e| e.who)) {
                let total = std::mem::take(&mut totals[n as usize]);
                if total != 0 && differs(total) {
                    differing.insert(n);
                }
            }
            differing
        } else {
            // Many: one pass over every follower in number order.
            let mut differing = Followers::new(followers);
            for (n, slot) in totals.iter_mut().enumerate().take(followers) {
                let total = std::mem::take(slot);
                if total != 0 && differs(total) {
                    differing.insert(n);
                }
            }
            differing.into_bitmap()
        }
    }
}
