//! The command line: argument parsing (clap) and one module per command family, each a thin
//! shell that reads files, calls the phases, prints, and maps outcomes to exit codes.
