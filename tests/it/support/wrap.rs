//! Running `stele` under another program (script(1) for a pseudo-terminal,
//! unshare(1) for a namespace of its own) with the environment the
//! [`stele`](super::stele) helper gives it, so the run stays hermetic.

use std::process::Command;

/// `program`, to be given its arguments and then `inner`'s program and
/// arguments, with `inner`'s environment (variables set and removed).
pub fn wrapped(program: &str, inner: &Command) -> Command {
    let mut outer = Command::new(program);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    outer
}

/// `inner`'s program and arguments as one shell line (none of the
/// tests' paths holds a space or a quote).
pub fn shell_line(inner: &Command) -> String {
    std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| a.to_str().expect("UTF-8 arguments"))
        .collect::<Vec<_>>()
        .join(" ")
}
