//! `tongdai ctl trunk ...`, and the call-settings flags of `tenant` and `number`.

use serde_json::{Map, Value, json};

use super::CtlError;
use super::args::{
    CallArgs, CallClearArgs, CodecArg, RecordingArg, RegistrationArgs, TransportArg, TrunkCmd,
};
use super::client::seg;
use super::exec::{Ctx, password_from_stdin, set};
use super::table::Kind;

impl Ctx<'_> {
    pub(super) fn trunk(&mut self, cmd: TrunkCmd) -> Result<(), CtlError> {
        let base = self.scoped("trunks")?;
        match cmd {
            TrunkCmd::List => self.list(Kind::Trunk, &base),
            TrunkCmd::Get { id } => self.list(Kind::Trunk, &format!("{base}/{}", seg(&id))),
            TrunkCmd::Create {
                id,
                address,
                transport: via,
                trust,
                max_calls,
                failover,
                registration,
            } => {
                let mut body = Map::new();
                body.insert("id".into(), json!(id));
                body.insert("address".into(), json!(address));
                body.insert("transport".into(), json!(transport(via)));
                body.insert("trusted_sources".into(), json!(trust));
                body.insert("max_concurrent_calls".into(), json!(max_calls));
                set(&mut body, "failover", failover);
                let mut reg = Map::new();
                registration_into(&mut reg, registration)?;
                if !reg.is_empty() {
                    body.insert("registration".into(), Value::Object(reg));
                }
                self.create(Kind::Trunk, &base, &Value::Object(body))
            }
            TrunkCmd::Update {
                id,
                address,
                transport: via,
                trust,
                no_trust,
                max_calls,
                failover,
                no_failover,
                registration,
                no_registration,
            } => self.update(Kind::Trunk, &format!("{base}/{}", seg(&id)), |t| {
                set(t, "address", address);
                set(t, "transport", via.map(transport));
                if no_trust || !trust.is_empty() {
                    t.insert("trusted_sources".into(), json!(trust));
                }
                set(t, "max_concurrent_calls", max_calls);
                if no_failover {
                    t.remove("failover");
                }
                set(t, "failover", failover);
                if no_registration {
                    t.remove("registration");
                }
                let reg = t
                    .entry("registration")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(r) = reg.as_object_mut() {
                    // Read back as `password_set`; without a new password the stored
                    // one stays.
                    r.remove("password_set");
                    registration_into(r, registration)?;
                }
                if reg.as_object().is_some_and(Map::is_empty) {
                    t.remove("registration");
                }
                Ok(())
            }),
            TrunkCmd::Delete { id } => {
                self.delete(&format!("{base}/{}", seg(&id)), &format!("trunk {id}"))
            }
        }
    }
}

/// Puts the registration fields given into `reg`, replacing any there.
fn registration_into(reg: &mut Map<String, Value>, r: RegistrationArgs) -> Result<(), CtlError> {
    let password = if r.register_password_stdin {
        Some(password_from_stdin()?)
    } else {
        r.register_password
    };
    set(reg, "username", r.register_user);
    set(reg, "domain", r.register_domain);
    set(reg, "password", password);
    set(reg, "expires_secs", r.register_expires);
    Ok(())
}

/// Puts the call settings given into a tenant's `calls`, replacing any there.
pub(super) fn call_settings(calls: &mut Map<String, Value>, c: CallArgs) {
    if let Some(codecs) = c.codecs {
        let names: Vec<&str> = codecs.into_iter().map(codec).collect();
        calls.insert("codecs".into(), json!(names));
    }
    if c.allow_other_codecs {
        calls.insert("allow_other_codecs".into(), json!(true));
    }
    set(calls, "recording", c.recording.map(recording));
    set(calls, "outbound_trunk", c.outbound_trunk);
    set(calls, "caller_id", c.caller_id);
}

/// Clears the call settings named.
pub(super) fn clear_call_settings(calls: &mut Map<String, Value>, c: CallClearArgs) {
    if c.no_other_codecs {
        calls.insert("allow_other_codecs".into(), json!(false));
    }
    if c.no_outbound_trunk {
        calls.remove("outbound_trunk");
    }
    if c.no_caller_id {
        calls.remove("caller_id");
    }
}

fn codec(c: CodecArg) -> &'static str {
    match c {
        CodecArg::Pcmu => "pcmu",
        CodecArg::Pcma => "pcma",
        CodecArg::TelephoneEvent => "telephone_event",
    }
}

pub(super) fn recording(r: RecordingArg) -> &'static str {
    match r {
        RecordingArg::Always => "always",
        RecordingArg::Never => "never",
        RecordingArg::OnDemand => "on_demand",
    }
}

fn transport(t: TransportArg) -> &'static str {
    match t {
        TransportArg::Udp => "udp",
        TransportArg::Tcp => "tcp",
        TransportArg::Tls => "tls",
    }
}
