//! `huren`: the command line for departments, service windows and citizens.
//!
//! This file parses the command line (the grammar is in `args`) and dispatches to the
//! modules that do the work: `genesis` (keys and the genesis document), `offline`
//! (issuing and verifying with genesis only), `gov` (governance proposals, the network
//! in force), `qr` (rendering and reading QR images),
//! `online` (the node's HTTP API) and `import` (bulk issuing from CSV). `exit` maps every
//! outcome to one documented exit status; `files` reads and writes files with bounds.
//!
//! The CLI never writes to the ledger itself: online commands ask a `huren-node`, and
//! offline issuing produces a credential that is not on any chain.

mod args;
mod bundle;
mod card;
mod exit;
mod files;
mod genesis;
mod gov;
mod import;
mod lifecycle;
mod offline;
mod online;
mod proof;
mod qr;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, GenesisCommand, GovCommand, QrCommand};
use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            // Help and version are answers, not errors; everything else clap refuses is
            // a usage error and gets EX_USAGE rather than clap's own 2, which would read
            // as "undetermined" to a script that called `huren verify`.
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::OK,
                _ => Exit::USAGE,
            };
            // If even stderr is gone there is nobody left to tell.
            let _ = e.print();
            return ExitCode::from(code.0);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code.0),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::code_of(&err).0)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Genesis(GenesisCommand::Keygen(a)) => genesis::keygen(a),
        Command::Genesis(GenesisCommand::Build(a)) => genesis::build(a),
        Command::Genesis(GenesisCommand::Check(a)) => genesis::check(a),
        Command::Issue(a) => {
            if a.mode.offline {
                offline::issue(a)
            } else {
                online::issue(a)
            }
        }
        Command::Verify(a) => {
            if a.mode.offline {
                offline::verify(a)
            } else {
                online::verify(a)
            }
        }
        Command::Qr(QrCommand::Render(a)) => qr::render(a),
        Command::Qr(QrCommand::Decode(a)) => qr::decode(a),
        Command::Status(a) => online::status(a),
        Command::Suspend(a) => online::suspend(a),
        Command::Reinstate(a) => online::reinstate(a),
        Command::Revoke(a) => online::revoke(a),
        Command::Renew(a) => lifecycle::renew(a),
        Command::Reissue(a) => lifecycle::reissue(a),
        Command::Amend(a) => lifecycle::amend(a),
        Command::Transfer(a) => lifecycle::transfer(a),
        Command::AcceptTransfer(a) => lifecycle::accept_transfer(a),
        Command::Annul(a) => lifecycle::annul(a),
        Command::History(a) => lifecycle::history(a),
        Command::Import(a) => import::run(a),
        Command::Card(a) => card::run(a),
        Command::Gov(GovCommand::Propose(a)) => gov::propose(a.record),
        Command::Gov(GovCommand::Sign(a)) => gov::sign(a),
        Command::Gov(GovCommand::Submit(a)) => gov::submit(a),
        Command::Gov(GovCommand::Show(a)) => gov::show(a),
        Command::Gov(GovCommand::Export(a)) => gov::export(a),
        Command::Bundle(a) => bundle::fetch(a),
    }
}
