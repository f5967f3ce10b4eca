//! The VM list as `GET /api/v1/vms` answers it: read from libvirt at most once per
//! [`LIST_FRESHNESS`], and again at once after anything changed.
//!
//! Why: the list is what every page and poller asks most, and opening a libvirt connection
//! and listing for each request made libvirt the limit (`cargo xtask bench web`: about 1,700
//! requests/s, against about 48,000 for the same server's session check alone). A list at most
//! a second old is as live as a page needs, and it is never older than a change the server
//! knows of: any change asked for through the API, and any VM or task event
//! ([`super::events::EventHub`]), makes the next request read libvirt again. Changes made
//! behind the server's back (virsh on the host) show within [`LIST_FRESHNESS`]. Concurrent
//! requests that find the list stale wait for one reading rather than each making their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Bytes;

use super::ApiError;

/// The oldest a list is answered.
pub const LIST_FRESHNESS: Duration = Duration::from_secs(1);

/// The last list read, as JSON, and what makes it stale.
#[derive(Debug, Default)]
pub struct VmList {
    last: Mutex<Option<Reading>>,
    /// One reading at a time; the others wait and take its result.
    reading: tokio::sync::Mutex<()>,
    /// Moved by every change asked for through the API.
    changes: AtomicU64,
}

#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    changes: u64,
    events: u64,
    answer: Bytes,
}

impl VmList {
    /// Makes the next request read libvirt again: something changed.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    fn fresh(&self, events: u64) -> Option<Bytes> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let reading = last.as_ref()?;
        let fresh = reading.at.elapsed() < LIST_FRESHNESS
            && reading.changes == self.changes.load(Ordering::SeqCst)
            && reading.events == events;
        fresh.then(|| reading.answer.clone())
    }

    /// The list's answer: the last reading while it is fresh (`events` is the event hub's
    /// last id), else one made by `read`.
    pub async fn answer<F, Fut>(&self, events: impl Fn() -> u64, read: F) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, ApiError>>,
    {
        if let Some(answer) = self.fresh(events()) {
            return Ok(answer);
        }
        let _reading = self.reading.lock().await;
        // Another request may have read it while this one waited.
        if let Some(answer) = self.fresh(events()) {
            return Ok(answer);
        }
        let (changes, events_before) = (self.changes.load(Ordering::SeqCst), events());
        let at = Instant::now();
        let answer = read().await?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Reading {
            at,
            changes,
            events: events_before,
            answer: answer.clone(),
        });
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    async fn read_counted(list: &VmList, reads: &AtomicUsize, events: u64) -> Bytes {
        list.answer(
            || events,
            || async {
                let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Bytes::from(format!("reading {n}")))
            },
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_fresh_list_is_reused_until_a_change_or_an_event() {
        let list = VmList::default();
        let reads = AtomicUsize::new(0);
        assert_eq!(read_counted(&list, &reads, 0).await, "reading 1");
        assert_eq!(read_counted(&list, &reads, 0).await, "reading 1");
        list.changed();
        assert_eq!(read_counted(&list, &reads, 0).await, "reading 2");
        assert_eq!(read_counted(&list, &reads, 1).await, "reading 3");
        assert_eq!(read_counted(&list, &reads, 1).await, "reading 3");
    }

    #[tokio::test]
    async fn a_failed_reading_is_not_kept() {
        let list = VmList::default();
        let failed = list
            .answer(
                || 0,
                || async { Err(ApiError::unavailable("libvirt is down")) },
            )
            .await;
        assert!(failed.is_err());
        let reads = AtomicUsize::new(0);
        assert_eq!(read_counted(&list, &reads, 0).await, "reading 1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_find_it_stale_share_one_reading() {
        let list = Arc::new(VmList::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let (list, reads) = (Arc::clone(&list), Arc::clone(&reads));
            waiting.push(tokio::spawn(async move {
                list.answer(
                    || 0,
                    || async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Bytes::from_static(b"list"))
                    },
                )
                .await
                .unwrap()
            }));
        }
        for handle in waiting {
            assert_eq!(handle.await.unwrap(), "list");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
