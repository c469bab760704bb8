//! The `pipe` binary: everything lives in the library; this only hands over the exit code.

fn main() {
    if pipe::supervisor::is_invocation() {
        std::process::exit(pipe::supervisor::serve());
    }
    pipe::supervisor::enable();
    std::process::exit(pipe::main());
}
