//! The `pipe` binary: everything lives in the library; this only hands over the exit code.

fn main() {
    if pipe::run::supervisor::is_invocation() {
        std::process::exit(pipe::run::supervisor::serve());
    }
    pipe::run::supervisor::enable();
    std::process::exit(pipe::cli::main());
}
