//! Schema: the tables `pipe` keeps in its PostgreSQL schema and the versioned migrations that
//! create them. A database migrated by a newer `pipe` is refused, never guessed at.

use postgres::Transaction;

/// Each migration, in order: version N is `MIGRATIONS[N - 1]`. `{s}` is the quoted schema.
/// Never edit one that shipped; add the next.
const MIGRATIONS: &[&str] = &[
    // 1: runs' documents, ledgers, locks with fencing tokens, the audit chain, evidence.
    "CREATE TABLE {s}.run_docs (
        run text NOT NULL,
        doc text NOT NULL,
        body bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run, doc));
     CREATE TABLE {s}.ledgers (
        pipeline text NOT NULL,
        environment text NOT NULL,
        body jsonb NOT NULL,
        lock_token bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline, environment));
     CREATE TABLE {s}.locks (
        pipeline text NOT NULL,
        environment text NOT NULL,
        token bigint NOT NULL,
        held boolean NOT NULL,
        run text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        since text NOT NULL,
        backend_pid integer NOT NULL,
        PRIMARY KEY (pipeline, environment));
     CREATE TABLE {s}.audit (
        seq bigint PRIMARY KEY,
        line text NOT NULL,
        appended_at timestamptz NOT NULL DEFAULT now());
     CREATE TABLE {s}.evidence (
        kind text NOT NULL,
        name text NOT NULL,
        body bytea NOT NULL,
        PRIMARY KEY (kind, name));",
];

/// The schema version this `pipe` writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Serialises migrations of every schema in the database across agents.
const MIGRATION_LOCK: i64 = 0x7069_7065_6d69_6772; // "pipemigr"

/// Why the schema cannot be used.
pub enum Refusal {
    Newer { found: i64 },
}

/// Creates the schema if needed and applies the migrations it lacks, in one transaction.
pub fn migrate(
    transaction: &mut Transaction<'_>,
    schema: &str,
    quoted: &str,
) -> Result<Result<(), Refusal>, postgres::Error> {
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
    // schema exists, and a team's DBA may have made it for a role without that right.
    let exists = transaction
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?
        .is_some();
    if !exists {
        transaction.batch_execute(&format!("CREATE SCHEMA {quoted}"))?;
    }
    transaction.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
            version bigint PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now(),
            pipe_version text NOT NULL)"
    ))?;
    let row = transaction.query_one(
        &format!("SELECT coalesce(max(version), 0) FROM {quoted}.schema_migrations"),
        &[],
    )?;
    let found: i64 = row.get(0);
    if found > VERSION {
        return Ok(Err(Refusal::Newer { found }));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        transaction.batch_execute(&migration.replace("{s}", quoted))?;
        transaction.execute(
            &format!(
                "INSERT INTO {quoted}.schema_migrations (version, pipe_version) VALUES ($1, $2)"
            ),
            &[&(index as i64 + 1), &env!("CARGO_PKG_VERSION")],
        )?;
    }
    Ok(Ok(()))
}
