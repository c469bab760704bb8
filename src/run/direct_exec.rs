//! Commands that need no shell: a single simple command of plain words runs as its own argv,
//! as `/bin/sh -ec` would run it, but without the extra shell process (make does the same).

use crate::shell_syntax::plain_command_words;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Names `sh` runs as builtins (or reads as syntax) whose behaviour differs from, or does not
/// exist as, a program on `PATH`: such a command always goes through the shell. `true` and
/// `false` are absent: the programs behave as the builtins do.
const SHELL_BUILTINS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "echo", "eval", "exec",
    "exit", "export", "fc", "fg", "for", "getopts", "hash", "if", "jobs", "kill", "local", "login",
    "logout", "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times",
    "trap", "type", "ulimit", "umask", "unalias", "unset", "wait", "while",
];

/// How to run a command without a shell.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectCommand {
    /// The program, found on the job's `PATH` as `sh` would find it.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// `sh` exports `PWD` (the physical working directory) to what it runs; so does this.
    pub pwd: PathBuf,
}

/// The command as a direct exec, or `None` when it needs the shell: a `shell` attribute, any
/// shell syntax, a builtin, an inherited `PWD`, or a program not found (the shell then reports
/// it, with its own message and exit code 127).
pub fn direct_command(
    shell: Option<&str>,
    command: &str,
    env: &BTreeMap<String, String>,
    workdir: &Path,
) -> Option<DirectCommand> {
    if shell.is_some() || env.contains_key("PWD") {
        return None;
    }
    let words = plain_command_words(command)?;
    let (name, args) = words.split_first()?;
    if SHELL_BUILTINS.contains(name) {
        return None;
    }
    let pwd = workdir.canonicalize().ok()?;
    let program = find_program(name, env.get("PATH").map(String::as_str), &pwd)?;
    Some(DirectCommand {
        program,
        args: args.iter().map(|arg| (*arg).to_string()).collect(),
        pwd,
    })
}

/// `sh`'s lookup: a name with a `/` is a path from the working directory; any other is the
/// first executable regular file among `PATH`'s directories (an empty entry is the working
/// directory).
fn find_program(name: &str, path: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let program = cwd.join(name);
        return is_executable(&program).then_some(program);
    }
    path?
        .split(':')
        .map(|dir| {
            if dir.is_empty() {
                cwd.to_path_buf()
            } else {
                cwd.join(dir)
            }
        })
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file())
        && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_path() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        )])
    }

    fn direct(command: &str) -> Option<DirectCommand> {
        direct_command(None, command, &env_with_path(), Path::new("/"))
    }

    #[test]
    fn a_plain_command_runs_as_its_argv_found_on_path() {
        let found = direct("touch  out/n1\tout/n2").expect("direct");
        assert!(found.program.ends_with("touch"), "{found:?}");
        assert!(found.program.is_absolute());
        assert_eq!(found.args, ["out/n1", "out/n2"]);
        assert_eq!(found.pwd, Path::new("/"));
    }

    #[test]
    fn shell_syntax_builtins_and_shell_attributes_keep_the_shell() {
        for command in [
            "true && false",
            "echo hi",
            "cd /tmp",
            "FOO=1 true",
            "touch $X",
            "touch 'a b'",
            "true # c",
            "true\nfalse",
            "exit 3",
            "ls *.rs",
            "",
            "   ",
        ] {
            assert_eq!(direct(command), None, "{command:?}");
        }
        let bash = direct_command(Some("bash"), "true", &env_with_path(), Path::new("/"));
        assert_eq!(bash, None);
    }

    #[test]
    fn a_missing_program_or_inherited_pwd_is_left_to_the_shell() {
        assert_eq!(direct("no-such-program-here x"), None);
        let mut env = env_with_path();
        env.insert("PWD".into(), "/".into());
        assert_eq!(direct_command(None, "true", &env, Path::new("/")), None);
        assert_eq!(
            direct_command(None, "true", &BTreeMap::new(), Path::new("/")),
            None,
            "no PATH: the shell's own default applies"
        );
    }

    #[test]
    fn a_relative_program_is_found_from_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tool.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let not_executable = direct_command(None, "./tool.sh", &env_with_path(), dir.path());
        assert_eq!(not_executable, None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = direct_command(None, "./tool.sh", &env_with_path(), dir.path()).unwrap();
        assert_eq!(
            found.program,
            dir.path().canonicalize().unwrap().join("./tool.sh")
        );
    }
}
