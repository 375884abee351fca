//! A supervisor's mailbox: many senders (its handles, its children's tasks),
//! one reader (its run loop).
//!
//! A queue under a mutex and a `Notify`, not a tokio channel: an idle tokio
//! channel allocates its shared state padded to cache lines and a first
//! block of 32 slots, about 800 bytes, and a gateway runs two supervisors
//! per `tcp-listen` sensor. This one costs nothing until mail arrives.
//! Mail is rare (starts, exits, commands), so the lock is never contended
//! in a way that matters.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::table::Mail;

/// The queue, whether a stop was asked for, and whether the reader has
/// gone.
#[derive(Default)]
struct Queue {
    mail: VecDeque<Box<Mail>>,
    stop: bool,
    closed: bool,
}

/// What the run loop waits for: a stop request comes before any mail.
pub(crate) enum Next {
    Mail(Box<Mail>),
    Stop,
}

/// Mail for one supervisor's run loop.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
    arrived: Notify,
}

/// The mailbox is closed: its supervisor has ended.
#[derive(Debug)]
pub(crate) struct Closed;

impl Mailbox {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while the lock was held left a plain queue behind.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `mail`; `Err` (and the mail dropped, so a request's caller
    /// learns it through its reply channel) when the supervisor has ended.
    pub(crate) fn send(&self, mail: Mail) -> Result<(), Closed> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(Closed);
        }
        queue.mail.push_back(Box::new(mail));
        drop(queue);
        // With no reader waiting, this leaves a permit: the next `recv`
        // returns at once, so no mail is missed between its check and wait.
        self.arrived.notify_one();
        Ok(())
    }

    /// Asks the supervisor to stop. Its stop signal travels through its
    /// mailbox rather than a cancellation token of its own: one wait less
    /// in every idle run loop, and no token to allocate per supervisor.
    pub(crate) fn request_stop(&self) {
        self.queue().stop = true;
        self.arrived.notify_one();
    }

    /// Whether a stop was asked for.
    pub(crate) fn stop_requested(&self) -> bool {
        self.queue().stop
    }

    /// A stop request or the next mail, waiting for either. Only the run
    /// loop calls it.
    pub(crate) async fn next(&self) -> Next {
        loop {
            if self.stop_requested() {
                return Next::Stop;
            }
            if let Some(mail) = self.try_recv() {
                return Next::Mail(mail);
            }
            self.arrived.notified().await;
        }
    }

    /// Resolves once a stop is asked for (mail arriving meanwhile stays
    /// queued for [`Mailbox::next`]).
    pub(crate) async fn stopped(&self) {
        while !self.stop_requested() {
            self.arrived.notified().await;
        }
    }

    /// The next mail if there is one.
    pub(crate) fn try_recv(&self) -> Option<Box<Mail>> {
        let mut queue = self.queue();
        let mail = queue.mail.pop_front();
        if queue.mail.is_empty() && queue.mail.capacity() > 0 {
            // An idle supervisor keeps no buffer from a burst.
            queue.mail = VecDeque::new();
        }
        mail
    }

    /// Refuses all further mail and hands back what was still queued.
    pub(crate) fn close(&self) -> VecDeque<Box<Mail>> {
        let mut queue = self.queue();
        queue.closed = true;
        std::mem::take(&mut queue.mail)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::supervisor::table::Command;

    fn ping() -> (Mail, oneshot::Receiver<()>) {
        let (reply, answer) = oneshot::channel();
        (Mail::Command(Command::Ping(reply)), answer)
    }

    #[tokio::test]
    async fn mail_arrives_in_order_and_wakes_the_reader() {
        let mailbox = Arc::new(Mailbox::default());
        let reader = tokio::spawn({
            let mailbox = mailbox.clone();
            async move {
                let mut answered = 0;
                while answered < 3 {
                    if let Next::Mail(mail) = mailbox.next().await {
                        let Mail::Command(Command::Ping(reply)) = *mail else {
                            continue;
                        };
                        let _ = reply.send(());
                        answered += 1;
                    }
                }
            }
        });
        let mut answers = Vec::new();
        for _ in 0..3 {
            tokio::task::yield_now().await;
            let (mail, answer) = ping();
            assert!(mailbox.send(mail).is_ok());
            answers.push(answer);
        }
        for answer in answers {
            assert!(answer.await.is_ok());
        }
        assert!(reader.await.is_ok());
        assert!(mailbox.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_stop_request_comes_before_queued_mail_and_wakes_a_waiting_stop() {
        let mailbox = Arc::new(Mailbox::default());
        let (mail, _answer) = ping();
        assert!(mailbox.send(mail).is_ok());
        let waiting = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.stopped().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "mail alone is no stop");
        mailbox.request_stop();
        assert!(waiting.await.is_ok());
        assert!(matches!(mailbox.next().await, Next::Stop));
        assert!(mailbox.try_recv().is_some(), "the mail is still queued");
    }

    #[test]
    fn a_closed_mailbox_refuses_and_returns_what_was_queued() {
        let mailbox = Mailbox::default();
        let (first, _a) = ping();
        assert!(mailbox.send(first).is_ok());
        assert_eq!(mailbox.close().len(), 1);
        let (second, _b) = ping();
        assert!(mailbox.send(second).is_err());
        assert!(mailbox.try_recv().is_none());
    }
}
