//! The process exit codes of `pipe` (0 ok, 1 failed, 2 usage, 3 awaiting approval, 4 rollback
//! failed, 130 interrupted): shared by the runner's `RunStatus` and the CLI.

pub const SUCCESS: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const AWAITING_APPROVAL: i32 = 3;
pub const ROLLBACK_FAILED: i32 = 4;
pub const INTERRUPTED: i32 = 130;
