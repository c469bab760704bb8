#!/usr/bin/env bash
# The runner and delivery integration tests a second time, against PostgreSQL: the shared
# harnesses (tests/support/run_harness.rs, tests/deliver_common) start one PostgreSQL 15 server
# per test binary and give each test its own schema when PIPE_TEST_STATE=postgres. Same tests,
# same assertions. Called by .ci/run after `cargo test` (PostgreSQL is installed by then).
#
# Left on the directory backend (listed here, skipped below): tests that read or damage files
# under `.pipe/` themselves (the ledger file, audit.jsonl, lock sidecars, stored artifacts, job
# logs), and whole suites about the local directory: run_full_disk (a full disk under .pipe),
# state_location (where .pipe is found), audit_refusal (edits audit.jsonl), fault_injection
# (copies .pipe/ between projects). Also skipped: run_scheduling's
# two_one_second_jobs_run_in_parallel_with_two_slots, whose 1.8 s bound leaves 0.8 s for
# everything but the two `sleep 1`s; on PostgreSQL the connection and schema check take part
# of that, and on a loaded machine it measured 1.805 s (the overhead is measured in bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPE_TEST_STATE=postgres

run() {
  local suite=$1
  shift
  local skips=()
  for name in "$@"; do skips+=(--skip "$name"); done
  echo "== cargo test --test $suite (PostgreSQL state)"
  cargo test --test "$suite" -- "${skips[@]}"
}

run artifact_tamper \
  a_deploy_refuses_a_stored_object_changed_after_the_build \
  an_automatic_rollback_refuses_a_tampered_target_and_exits_4 \
  rollback_by_hand_refuses_a_tampered_target_and_exits_4 \
  a_rebuild_of_the_same_digest_replaces_a_tampered_object_and_deploys_the_real_bytes
run deliver_flow \
  a_refused_approver_changes_nothing_and_is_audited \
  two_runs_promoting_one_environment_do_not_overlap \
  kill_9_during_a_deploy_then_resume_and_audit_verify_succeed \
  no_secret_value_is_written_under_the_state_directory
run deliver_preview
run deliver_recovery \
  a_run_interrupted_mid_promote_resumes_by_promoting_again \
  a_failed_release_says_why_it_cannot_resume_and_prints_no_hint \
  a_rollback_cut_short_by_a_second_signal_exits_4 \
  a_rollback_by_hand_cut_short_by_a_second_signal_exits_4 \
  a_crashed_rollback_is_unknown_until_the_next_rollback_finishes_it \
  a_crashed_automatic_rollback_is_finished_by_the_next_promote_first \
  a_resume_runs_in_the_current_checkout_not_the_stored_directory \
  a_resume_refuses_a_changed_pipeline_file_unless_forced
run run_direct_exec \
  a_direct_command_sees_the_environment_the_shell_would_give_it \
  exit_codes_and_a_missing_program_read_as_from_the_shell
run run_injection
run run_orphans
run run_processes \
  produced_artifacts_are_stored_read_only_with_metadata \
  matrix_node_ids_make_safe_log_file_names
run run_redaction \
  secrets_never_reach_console_logs_state_or_outputs \
  json_events_are_redacted_too \
  a_secret_split_between_stdout_and_stderr_never_reaches_a_log \
  a_line_followed_by_silence_reaches_the_log_and_console_at_once
run run_scheduler_property
run run_scheduling \
  two_one_second_jobs_run_in_parallel_with_two_slots \
  a_failure_skips_downstream_and_independent_branches_carry_on \
  gates_read_typed_outputs_and_overrides_are_recorded \
  json_log_format_prints_one_event_per_line
run run_state \
  dry_run_prints_the_plan_and_creates_nothing \
  resume_warns_when_the_source_changed_and_rejects_unknown_runs \
  a_run_killed_before_its_first_state_write_can_be_resumed
run workspace_confinement \
  an_artifact_symlink_leading_outside_the_workspace_is_refused \
  with_the_opt_in_the_symlink_target_content_is_stored
