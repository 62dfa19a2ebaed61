//! One partition's read: its units (scan segments, Queries, key batches) read
//! concurrently, one task per unit reading that unit's pages in order, under
//! the scan's shared limit of requests in flight; pages are handed on as they
//! arrive.
//!
//! - Every item belongs to exactly one unit and every unit to one partition;
//!   a unit's pages follow `LastEvaluatedKey` one after the other, so nothing
//!   is skipped or read twice whatever order units finish in.
//! - A page holds a place in the scan's buffer from before its request
//!   until it has been decoded, so pages in memory never exceed the scan's
//!   `max_concurrency`; attempts on the wire follow the adaptive limit
//!   (`read::concurrency`) inside the reader.
//! - With an item limit the partition reads one unit at a time and each page
//!   waits for the previous one to be counted, so no more items are asked
//!   for than are still wanted (as a sequential read would).
//! - Dropping the stream aborts every task, in flight or waiting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::plan::{ReadUnit, ScanPlan};
use crate::read::{Page, Reader};

/// Items a limited partition still wants; `usize::MAX` when unlimited.
#[derive(Debug)]
pub(crate) struct Remaining(AtomicUsize);

impl Remaining {
    pub(crate) fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Self(AtomicUsize::new(limit.unwrap_or(usize::MAX))))
    }

    /// `None` when unlimited.
    pub(crate) fn get(&self) -> Option<usize> {
        match self.0.load(Ordering::Acquire) {
            usize::MAX => None,
            n => Some(n),
        }
    }

    /// Counts `n` items handed on.
    pub(crate) fn take(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r != usize::MAX).then(|| r.saturating_sub(n))
            });
    }
}

/// A page, with the places it holds until it has been handed on.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub page: Page,
    _buffered: Option<OwnedSemaphorePermit>,
    _turn: Option<OwnedSemaphorePermit>,
}

enum Message {
    Page(Arrival),
    Failed(Error),
}

/// What every unit task of a partition shares.
struct Shared {
    client: Client,
    plan: Arc<ScanPlan>,
    reader: Reader,
    remaining: Arc<Remaining>,
    /// With a limit: one page at a time, each after the previous was counted.
    turn: Option<Arc<Semaphore>>,
    tx: mpsc::UnboundedSender<Message>,
}

/// Reads one unit's pages in order and sends each as it arrives.
async fn read_unit(shared: Arc<Shared>, unit: ReadUnit) {
    let mut start = None;
    loop {
        let turn = match &shared.turn {
            Some(t) => match Arc::clone(t).acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            None => None,
        };
        let remaining = shared.remaining.get();
        if remaining == Some(0) {
            return;
        }
        let buffered = match &shared.reader.buffer {
            Some(b) => match Arc::clone(b).acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            None => None,
        };
        let page = shared
            .reader
            .page(&shared.client, &shared.plan, &unit, start.take(), remaining)
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let _ = shared.tx.send(Message::Failed(e));
                return;
            }
        };
        let next = page.next.clone();
        let arrival = Arrival {
            page,
            _buffered: buffered,
            _turn: turn,
        };
        if shared.tx.send(Message::Page(arrival)).is_err() {
            return;
        }
        match next {
            Some(key) => start = Some(key),
            None => return,
        }
    }
}

/// The state of one partition's read.
struct Driver {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Message>,
    tasks: JoinSet<()>,
    pending: VecDeque<ReadUnit>,
    /// Units read at once.
    width: usize,
    done: bool,
}

impl Driver {
    fn start_units(&mut self) {
        while self.tasks.len() < self.width {
            let Some(unit) = self.pending.pop_front() else {
                return;
            };
            self.tasks.spawn(read_unit(Arc::clone(&self.shared), unit));
        }
    }

    async fn next(&mut self) -> Option<Result<Arrival>> {
        if self.done {
            return None;
        }
        loop {
            self.start_units();
            if self.tasks.is_empty() {
                // Every unit has ended: what they sent is all there is.
                return match self.rx.try_recv() {
                    Ok(message) => self.deliver(message),
                    Err(_) => {
                        self.done = true;
                        None
                    }
                };
            }
            tokio::select! {
                biased;
                Some(message) = self.rx.recv() => return self.deliver(message),
                Some(joined) = self.tasks.join_next() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        self.done = true;
                        return Some(Err(Error::Metadata {
                            table: self.shared.plan.table().to_string(),
                            reason: format!("a read task failed: {e}"),
                        }));
                    }
                }
            }
        }
    }

    fn deliver(&mut self, message: Message) -> Option<Result<Arrival>> {
        match message {
            Message::Page(arrival) => Some(Ok(arrival)),
            Message::Failed(e) => {
                // The first error ends the partition; the other tasks stop with it.
                self.done = true;
                self.tasks.abort_all();
                Some(Err(e))
            }
        }
    }
}

/// The pages of `units`, as they arrive.
pub(crate) fn drive(
    client: Client,
    plan: Arc<ScanPlan>,
    reader: Reader,
    units: Vec<ReadUnit>,
    remaining: Arc<Remaining>,
) -> impl Stream<Item = Result<Arrival>> + Send {
    let limited = remaining.get().is_some();
    let (tx, rx) = mpsc::unbounded_channel();
    let width = if limited { 1 } else { units.len().max(1) };
    let driver = Driver {
        shared: Arc::new(Shared {
            client,
            plan,
            reader,
            remaining,
            turn: limited.then(|| Arc::new(Semaphore::new(1))),
            tx,
        }),
        rx,
        tasks: JoinSet::new(),
        pending: units.into(),
        width,
        done: false,
    };
    futures::stream::unfold(driver, |mut d| async move {
        let next = d.next().await?;
        Some((next, d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_counts_down_to_zero_and_no_limit_stays_none() {
        let limited = Remaining::new(Some(10));
        limited.take(4);
        assert_eq!(limited.get(), Some(6));
        limited.take(100);
        assert_eq!(limited.get(), Some(0), "never below zero");
        let unlimited = Remaining::new(None);
        unlimited.take(usize::MAX - 1);
        assert_eq!(
            unlimited.get(),
            None,
            "what is handed on never makes a limit"
        );
    }
}
