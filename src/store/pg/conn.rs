//! Connection: one PostgreSQL session owned by a dedicated std thread (the sync client must not
//! run on a tokio runtime thread, where the scheduler calls the store), reached by sending it
//! jobs. It reconnects lazily; reads are retried with bounded backoff, a write never is once
//! it may have reached the server.

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Transaction};
use std::sync::mpsc;
use std::time::Duration;

/// The waits between attempts of a read, or of connecting before a write.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The session a connection's thread owns.
pub struct Session {
    config: Config,
    pub(super) client: Option<Client>,
}

impl Session {
    /// The open client, connecting first if there is none (or it was closed).
    pub fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => self.config.connect(NoTls)?,
        };
        Ok(self.client.insert(client))
    }

    /// Runs `query` on the session, reconnecting and retrying (with backoff) when the
    /// connection failed: a read can be repeated safely.
    pub fn read<R>(
        &mut self,
        query: impl Fn(&mut Client) -> Result<R, postgres::Error>,
    ) -> Result<R, postgres::Error> {
        let mut waits = BACKOFF.iter();
        loop {
            let outcome = self.client().and_then(&query);
            match outcome {
                Err(error) if is_connection_error(&error) => {
                    self.client = None;
                    match waits.next() {
                        Some(wait) => std::thread::sleep(*wait),
                        None => return Err(error),
                    }
                }
                other => return other,
            }
        }
    }

    /// Runs `change` in one transaction. Connecting and `BEGIN` are retried like a read (nothing
    /// was written yet); once the transaction started, a failure is returned, never repeated.
    pub fn write<R>(
        &mut self,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<R, postgres::Error>,
    ) -> Result<R, postgres::Error> {
        let mut waits = BACKOFF.iter();
        loop {
            let wait = match self.client().and_then(|client| client.transaction()) {
                Ok(mut transaction) => {
                    let value = change(&mut transaction)?;
                    transaction.commit()?;
                    return Ok(value);
                }
                Err(error) if is_connection_error(&error) => match waits.next() {
                    Some(wait) => *wait,
                    None => return Err(error),
                },
                Err(error) => return Err(error),
            };
            self.client = None;
            std::thread::sleep(wait);
        }
    }
}

/// Whether `error` says the connection failed (rather than the statement): worth a reconnect.
pub fn is_connection_error(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        None => {
            std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
        }
    }
}

/// A handle on one session's thread; dropping it ends the thread and closes the session.
pub struct Connection {
    jobs: mpsc::Sender<Job>,
}

impl Connection {
    /// Starts the thread; it connects on its first job.
    pub fn open(config: Config, purpose: &str) -> std::io::Result<Connection> {
        let (jobs, received) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("pipe-pg-{purpose}"))
            .spawn(move || {
                let mut session = Session {
                    config,
                    client: None,
                };
                for job in received {
                    job(&mut session);
                }
            })?;
        Ok(Connection { jobs })
    }

    /// Runs `job` on the session and waits for its answer; `None` if the thread is gone.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Session) -> R + Send + 'static,
    ) -> Option<R> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let _ = answer.send(job(session));
        });
        self.jobs.send(job).ok()?;
        answered.recv().ok()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}
