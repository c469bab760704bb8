//! Interrupts: SIGINT/SIGTERM as a shared level that every running part watches — the first
//! asks for a graceful stop (terminate process groups, save state), the second for an immediate
//! kill.

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InterruptLevel {
    None = 0,
    /// Stop scheduling; SIGTERM running process groups, SIGKILL after the grace period.
    Graceful = 1,
    /// SIGKILL running process groups at once.
    Immediate = 2,
}

/// A cloneable view of the run's interrupt level.
#[derive(Debug, Clone)]
pub struct Interrupt {
    receiver: watch::Receiver<InterruptLevel>,
}

/// The side that raises the level (signal handlers, tests, delivery's own aborts).
#[derive(Debug, Clone)]
pub struct InterruptTrigger {
    sender: watch::Sender<InterruptLevel>,
}

pub fn interrupt_pair() -> (InterruptTrigger, Interrupt) {
    let (sender, receiver) = watch::channel(InterruptLevel::None);
    (InterruptTrigger { sender }, Interrupt { receiver })
}

impl InterruptTrigger {
    /// Raises the level by one step (a second call escalates to immediate).
    pub fn escalate(&self) {
        self.sender.send_modify(|level| {
            *level = match *level {
                InterruptLevel::None => InterruptLevel::Graceful,
                _ => InterruptLevel::Immediate,
            }
        });
    }

    pub fn raise_to(&self, target: InterruptLevel) {
        self.sender
            .send_modify(|level| *level = (*level).max(target));
    }
}

impl Interrupt {
    /// An interrupt that never fires.
    pub fn never() -> Interrupt {
        let (trigger, interrupt) = interrupt_pair();
        // Leak-free: the receiver keeps the last value once the sender is gone.
        drop(trigger);
        interrupt
    }

    pub fn level(&self) -> InterruptLevel {
        *self.receiver.borrow()
    }

    pub fn is_set(&self) -> bool {
        self.level() >= InterruptLevel::Graceful
    }

    /// Waits until the level reaches `target`; never returns if it cannot anymore.
    pub async fn reached(&self, target: InterruptLevel) {
        let mut receiver = self.receiver.clone();
        if receiver.wait_for(|level| *level >= target).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Installs SIGINT and SIGTERM handlers that escalate `trigger`. Must run inside a runtime.
pub fn install_signal_handlers(trigger: InterruptTrigger) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminates = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = interrupts.recv() => trigger.escalate(),
                Some(()) = terminates.recv() => trigger.escalate(),
                else => break,
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn escalates_from_graceful_to_immediate() {
        let (trigger, interrupt) = interrupt_pair();
        assert!(!interrupt.is_set());
        trigger.escalate();
        interrupt.reached(InterruptLevel::Graceful).await;
        assert_eq!(interrupt.level(), InterruptLevel::Graceful);
        trigger.escalate();
        assert_eq!(interrupt.level(), InterruptLevel::Immediate);
    }
}
