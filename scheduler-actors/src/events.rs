//! Run events: what happens to each fire on a node, for the application that runs it.
//!
//! [`Node::subscribe`](crate::NodeHandle::subscribe) gives a [`RunEvents`], an async stream of
//! [`RunEvent`]s. The node keeps the latest events in a bounded ring
//! ([`NodeBuilder::event_buffer`](crate::NodeBuilder::event_buffer)); a subscriber that falls
//! further behind misses the oldest and is told how many with [`RunEvent::Lagged`]. Sending
//! never waits for a subscriber, so no subscriber can slow the scheduler down, and with none
//! subscribed no event is even built.
//!
//! An event is sent when the node decides the outcome, as its record goes to the database
//! (which a buffered write may do a little later, or, if the database stays away past the
//! buffer, not at all: the node logs that).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use entity::task_run::RunStatus;
use futures_util::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// How many events a subscriber may fall behind by default before it misses some
/// (see [`NodeBuilder::event_buffer`](crate::NodeBuilder::event_buffer)).
pub const DEFAULT_EVENT_BUFFER: usize = 4096;

/// Something that happened to a fire on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunEvent {
    /// A fire was handed to its task's executor, which takes the lock and the claim and runs
    /// the handler on the dot (another node may win the fire).
    FirePrepared {
        /// Task.
        task: String,
        /// The scheduled instant.
        fire_time: DateTime<Utc>,
        /// 1, or more for a re-run of a fire whose node died.
        attempt: u32,
    },
    /// This node won the fire and its handler started.
    RunStarted {
        /// Task.
        task: String,
        /// The run's id (as in the run record and the logs).
        run_id: String,
        /// The scheduled instant.
        fire_time: DateTime<Utc>,
        /// Attempt.
        attempt: u32,
    },
    /// A run ended, as recorded: `succeeded`, `failed`, `timed_out`, `panicked`,
    /// `interrupted`, `lock_lost`, or `abandoned` (its node died; reported by the node that
    /// settled it).
    RunFinished {
        /// Task.
        task: String,
        /// The run's id.
        run_id: String,
        /// The scheduled instant.
        fire_time: DateTime<Utc>,
        /// Attempt.
        attempt: u32,
        /// How it ended.
        status: RunStatus,
        /// How long the handler ran.
        duration: Duration,
        /// The error, for anything but `succeeded`.
        error: Option<String>,
    },
    /// A fire that did not run here: `skipped_overlap` (the previous run is still going, here
    /// or on another node, which keeps the record), or `misfired` (it could not start in time,
    /// or its claim could not be written; recorded).
    Skipped {
        /// Task.
        task: String,
        /// The scheduled instant.
        fire_time: DateTime<Utc>,
        /// Why, as a status.
        status: RunStatus,
        /// Why, in words.
        reason: String,
    },
    /// Fires missed while no node ran the task (or this node was paused) that its misfire
    /// policy drops; one event for all of them.
    Misfired {
        /// Task.
        task: String,
        /// How many (at least, when very many).
        count: u64,
        /// The latest of them.
        latest: DateTime<Utc>,
    },
    /// A running fire lost its lock (its lock could not be renewed); it is stopped and
    /// recorded `lock_lost` (a `RunFinished` follows).
    LockLost {
        /// Task.
        task: String,
        /// The run's id.
        run_id: String,
        /// The scheduled instant.
        fire_time: DateTime<Utc>,
    },
    /// This subscriber fell behind and missed this many events.
    Lagged {
        /// Events missed.
        missed: u64,
    },
    /// The node has shut down (every run ended; what could be written was); the last event
    /// of a subscription. Also sent when a [`Node`](crate::Node) is dropped without
    /// `shutdown`.
    NodeStopped,
}

/// An attempt as events show it (stored as a signed number, never below 1).
pub(crate) fn attempt(stored: i32) -> u32 {
    u32::try_from(stored.max(1)).unwrap_or(1)
}

/// The sending side, held by the actors. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct RunEventsSender(broadcast::Sender<RunEvent>);

impl RunEventsSender {
    pub(crate) fn new(buffer: usize) -> Self {
        RunEventsSender(broadcast::Sender::new(buffer.max(1)))
    }

    /// Sends the event `make` builds, if anyone listens; never waits.
    pub(crate) fn send(&self, make: impl FnOnce() -> RunEvent) {
        if self.0.receiver_count() > 0 {
            // An error only says every subscriber went away meanwhile.
            let _ = self.0.send(make());
        }
    }

    pub(crate) fn subscribe(&self) -> RunEvents {
        RunEvents {
            events: BroadcastStream::new(self.0.subscribe()),
            ended: false,
        }
    }
}

/// One subscription to a node's run events: a [`Stream`] of [`RunEvent`]s, or
/// [`RunEvents::next`] without any stream trait. It ends after [`RunEvent::NodeStopped`].
///
/// ```no_run
/// # async fn example(node: &scheduler_actors::Node) {
/// use scheduler_actors::events::{RunEvent, RunStatus};
///
/// let mut events = node.subscribe();
/// while let Some(event) = events.next().await {
///     match event {
///         RunEvent::RunFinished { task, status: RunStatus::Failed, error, .. } => {
///             eprintln!("{task} failed: {}", error.unwrap_or_default());
///         }
///         RunEvent::Lagged { missed } => eprintln!("missed {missed} events"),
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct RunEvents {
    events: BroadcastStream<RunEvent>,
    ended: bool,
}

impl RunEvents {
    /// The next event; `None` after [`RunEvent::NodeStopped`].
    pub async fn next(&mut self) -> Option<RunEvent> {
        futures_util::StreamExt::next(self).await
    }
}

impl Stream for RunEvents {
    type Item = RunEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RunEvent>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.events).poll_next(cx);
        polled.map(|item| {
            let event = match item? {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => RunEvent::Lagged { missed },
            };
            self.ended = event == RunEvent::NodeStopped;
            Some(event)
        })
    }
}
