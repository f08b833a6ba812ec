//! `tongdai ctl`: a command line over the control plane's REST admin API.
//!
//! Every operation of the API has a subcommand (`tenant`, `number`, `extension`,
//! `hunt-group`, `queue`, `agent`, `trunk`, `token`, `registration`, `cluster`, `node`,
//! `cdr`, `recording`). Updates read the resource, change the fields given and write it back
//! whole. Output is an aligned
//! table, or the API's JSON with `--json`. A follower's redirect is followed to the
//! leader for every method.
//!
//! [`run`] is the whole command, writing to any `Write`, so tests drive it in-process;
//! `main` maps [`CtlError::exit_code`] to the process's.

mod args;
mod client;
mod exec;
mod nodes;
mod records;
mod table;
mod trunks;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};

pub use args::CtlArgs;

use client::Client;

/// Why `tongdai ctl` failed.
#[derive(Debug)]
pub enum CtlError {
    /// Bad usage: a missing tenant or token, an unusable URL. Exit code 2.
    Usage(String),
    /// The API refused: its status, code, message and field. Exit code 1.
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// The API could not be reached or answered something unreadable. Exit code 1.
    Transport(String),
    /// Standard output could not be written. Exit code 1.
    Output(io::Error),
}

impl CtlError {
    /// 2 for bad usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(m) | CtlError::Transport(m) => f.write_str(m),
            CtlError::Api {
                status,
                code,
                message,
                field,
            } => {
                write!(f, "{message}")?;
                if let Some(field) = field {
                    write!(f, " (field: {field})")?;
                }
                write!(f, " [HTTP {status}")?;
                if !code.is_empty() {
                    write!(f, " {code}")?;
                }
                if *status == 401 {
                    write!(
                        f,
                        "; set TONGDAI_TOKEN or TONGDAI_TOKEN_FILE to a valid token"
                    )?;
                }
                f.write_str("]")
            }
            CtlError::Output(e) => write!(f, "writing the output: {e}"),
        }
    }
}

impl std::error::Error for CtlError {}

impl From<io::Error> for CtlError {
    fn from(e: io::Error) -> CtlError {
        CtlError::Output(e)
    }
}

/// Runs one `tongdai ctl` command, printing its result to `out`.
pub fn run(args: CtlArgs, out: &mut dyn Write) -> Result<(), CtlError> {
    let token = token(&args)?;
    let client = Client::new(&args.api, token)?;
    let mut ctx = exec::Ctx {
        client,
        json: args.json,
        tenant: args.tenant,
        out,
    };
    ctx.run(args.command)
}

/// `--token`, else the first line of `--token-file`.
fn token(args: &CtlArgs) -> Result<String, CtlError> {
    if let Some(t) = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(t.to_owned());
    }
    let Some(path) = &args.token_file else {
        return Err(CtlError::Usage(
            "no API token: pass --token, or set TONGDAI_TOKEN or TONGDAI_TOKEN_FILE".into(),
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        CtlError::Usage(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    text.lines()
        .next()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| CtlError::Usage(format!("the token file {} is empty", path.display())))
}
