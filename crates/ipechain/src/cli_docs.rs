//! `ipechain completions SHELL` and `ipechain man --dir DIR`: shell completions (clap_complete) and man pages
//! (clap_mangen) generated from the same clap definition as the command line, so they never drift from it.
//! docs/packaging.md says where a package puts them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;

/// Writes the completion script of `shell` for `ipechain`. A reader that stops early (`| head`) is not an
/// error.
pub(crate) fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = crate::Cli::command();
    // Rendered in memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ipechain", &mut script);
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing the completion script"),
    }
}

/// Writes `ipechain.1` and one page per subcommand, nested ones included (`ipechain-up.1`,
/// `ipechain-keys-generate.1`, …) into `dir`; returns the files written.
pub(crate) fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("ipechain manual")
        .source(concat!("ipechain ", env!("CARGO_PKG_VERSION")));
    let path = man.generate_to(dir).with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for word in ["up", "node", "keys", "status", "verify", "policy", "device", "completions", "man"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
            assert!(text.contains("print-config"), "{shell}: no --print-config"); // fish: `-l print-config`
        }
    }
}
