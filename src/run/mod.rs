//! Run: executes a compiled plan — scheduler, processes, outputs, artifacts, redaction, logs,
//! run state, resume and interrupts. It sees only the plan, never the source.
