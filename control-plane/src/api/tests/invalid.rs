//! Invalid input on every endpoint: each answer has the right status, code and field,
//! and nothing changes.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// (method, path, raw JSON body, status, code, field).
const Q: &str = r#""quotas": {"max_concurrent_calls": 1, "max_call_attempts_per_sec": 1, "max_registrations": 1}"#;

/// One request with invalid input and the answer expected.
struct Case {
    method: &'static str,
    path: String,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn c(
    method: &'static str,
    path: impl Into<String>,
    body: impl Into<String>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        path: path.into(),
        body: body.into(),
        status,
        code,
        field,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let mut cases = vec![
        c("POST", "/v1/tenants", "{", 400, "malformed_json", None),
        c("POST", "/v1/tenants", String::new(), 400, "malformed_json", None),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", "name": "X", {Q}}} trailing"#), 400, "malformed_json", None),
        c("POST", "/v1/tenants", "[1, 2]", 422, "wrong_type", None),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", "name": "X", {Q}, "extra": 1}}"#), 422, "unknown_field", Some("extra")),
        c("POST", "/v1/tenants", r#"{"id": "x", "name": "X", "quotas": {"max_concurrent_calls": 1, "max_call_attempts_per_sec": 1, "max_registrations": 1, "max_cps": 2}}"#, 422, "unknown_field", Some("quotas.max_cps")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", "name": 5, {Q}}}"#), 422, "wrong_type", Some("name")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", {Q}}}"#), 422, "missing_field", Some("name")),
        c("POST", "/v1/tenants", r#"{"id": "x", "name": "X", "quotas": {"max_concurrent_calls": 1, "max_call_attempts_per_sec": 1}}"#, 422, "missing_field", Some("quotas.max_registrations")),
        c("POST", "/v1/tenants", format!(r#"{{"name": "X", {Q}}}"#), 422, "missing_field", Some("id")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "Bad Id", "name": "X", {Q}}}"#), 422, "invalid_value", Some("id")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", "name": "", {Q}}}"#), 422, "invalid_text", Some("name")),
        c("POST", "/v1/tenants", r#"{"id": "x", "name": "X", "quotas": {"max_concurrent_calls": 1, "max_call_attempts_per_sec": 1, "max_registrations": 2000000}}"#, 422, "quota_out_of_bounds", Some("quotas.max_registrations")),
        c("POST", "/v1/tenants", r#"{"id": "x", "name": "X", "quotas": {"max_concurrent_calls": -1, "max_call_attempts_per_sec": 1, "max_registrations": 1}}"#, 422, "invalid_value", Some("quotas.max_concurrent_calls")),
        c("POST", "/v1/tenants", r#"{"id": "x", "name": "X", "quotas": {"max_concurrent_calls": 1, "max_call_attempts_per_sec": 100001, "max_registrations": 1}}"#, 422, "quota_out_of_bounds", Some("quotas.max_call_attempts_per_sec")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "acme", "name": "X", {Q}}}"#), 409, "tenant_exists", Some("id")),
        c("PUT", "/v1/tenants/acme", format!(r#"{{"id": "beta", "name": "X", {Q}}}"#), 422, "path_mismatch", Some("id")),
        c("PUT", "/v1/tenants/Bad", format!(r#"{{"name": "X", {Q}}}"#), 400, "invalid_id", Some("tenant")),
        c("GET", "/v1/tenants/-x", String::new(), 400, "invalid_id", Some("tenant")),
        c("DELETE", "/v1/tenants/a%20b", String::new(), 400, "invalid_id", Some("tenant")),
    ];
    let a = "/v1/tenants/acme";
    let n = "/v1/tenants/acme/numbers";
    let e = "/v1/tenants/acme/extensions";
    let hg = "/v1/tenants/acme/hunt-groups";
    let qu = "/v1/tenants/acme/queues";
    let ag = "/v1/tenants/acme/agents";
    let tr = "/v1/tenants/acme/trunks";
    let dest = r#""destination": {"type": "extension", "id": "1001"}"#;
    cases.extend([
        // Numbers.
        c("POST", n, format!(r#"{{"digits": "12345", {dest}}}"#), 422, "invalid_number", Some("digits")),
        c("POST", n, format!(r#"{{"digits": "19006868", "kind": "toll_free_1800", {dest}}}"#), 422, "invalid_number", Some("digits")),
        c("POST", n, format!(r#"{{"digits": "18001111", "kind": "mobile", {dest}}}"#), 422, "invalid_value", Some("kind")),
        c("POST", n, format!(r#"{{"digits": 18001111, {dest}}}"#), 422, "wrong_type", Some("digits")),
        c("POST", n, format!(r#"{{{dest}}}"#), 422, "missing_field", Some("digits")),
        c("POST", n, r#"{"digits": "18001111"}"#, 422, "missing_field", Some("destination")),
        c("POST", n, format!(r#"{{"digits": "18001111", "tariff_band": "b", {dest}}}"#), 422, "unexpected_tariff_band", Some("tariff_band")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "fax", "id": "x"}}"#, 422, "invalid_value", Some("destination.type")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "extension", "id": "1001", "ring": 1}}"#, 422, "unknown_field", Some("destination.ring")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "extension"}}"#, 422, "missing_field", Some("destination.id")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "external", "number": "call me"}}"#, 422, "invalid_external_number", Some("destination.number")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "extension", "id": "9999"}}"#, 422, "unknown_extension", Some("destination.id")),
        c("POST", n, r#"{"digits": "18001111", "destination": {"type": "queue", "id": "nope"}}"#, 422, "unknown_queue", Some("destination.id")),
        c("POST", n, format!(r#"{{"digits": "18001111", "tenant": "beta", {dest}}}"#), 422, "path_mismatch", Some("tenant")),
        c("PUT", format!("{n}/18001234"), format!(r#"{{"digits": "18001235", {dest}}}"#), 422, "path_mismatch", Some("digits")),
        c("GET", format!("{n}/18x"), String::new(), 400, "invalid_number", Some("digits")),
        c("POST", "/v1/tenants/nope/numbers", format!(r#"{{"digits": "18001111", {dest}}}"#), 404, "unknown_tenant", Some("tenant")),
        // Extensions.
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "short"}"#, 422, "invalid_value", Some("password")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "long enough", "ha1_md5": "00000000000000000000000000000000"}"#, 422, "invalid_value", Some("password")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "ha1_md5": "00000000000000000000000000000000"}"#, 422, "missing_field", Some("ha1_sha256")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "ha1_md5": "xyz", "ha1_sha256": "xyz"}"#, 422, "invalid_ha1", Some("ha1_md5")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A"}"#, 422, "missing_field", Some("password")),
        c("POST", e, r#"{"display_name": "A", "password": "long enough"}"#, 422, "missing_field", Some("ext")),
        c("POST", e, r#"{"ext": "Bad", "display_name": "A", "password": "long enough"}"#, 422, "invalid_value", Some("ext")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A\u0007", "password": "long enough"}"#, 422, "invalid_text", Some("display_name")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "long enough", "forward_to_mobile": {"number": "+84901234567", "when": []}}"#, 422, "no_forward_condition", Some("forward_to_mobile.when")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "long enough", "forward_to_mobile": {"number": "+84901234567", "when": ["sometimes"]}}"#, 422, "invalid_value", Some("forward_to_mobile.when[0]")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "long enough", "forward_to_mobile": {"number": "x", "when": ["busy"]}}"#, 422, "invalid_external_number", Some("forward_to_mobile.number")),
        c("POST", e, r#"{"ext": "3001", "display_name": "A", "password": "long enough", "voicemail": true}"#, 422, "unknown_field", Some("voicemail")),
        c("PUT", format!("{e}/1001"), r#"{"ext": "1002", "display_name": "A"}"#, 422, "path_mismatch", Some("ext")),
        c("PUT", format!("{e}/1001"), r#"{"tenant": "beta", "display_name": "A"}"#, 422, "path_mismatch", Some("tenant")),
        c("GET", format!("{e}/Bad"), String::new(), 400, "invalid_id", Some("ext")),
        // Hunt groups.
        c("POST", hg, r#"{"id": "g", "members": [], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "empty_hunt_group", Some("members")),
        c("POST", hg, r#"{"id": "g", "members": ["1001", "1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "duplicate_member", Some("members[1]")),
        c("POST", hg, r#"{"id": "g", "members": ["1001", "9999"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "unknown_extension", Some("members[1]")),
        c("POST", hg, r#"{"id": "g", "members": ["1001", "Bad"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "invalid_value", Some("members[1]")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 1, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "out_of_bounds", Some("ring_secs")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": "20", "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "wrong_type", Some("ring_secs")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "random", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "invalid_value", Some("strategy")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "hunt_group", "id": "nope"}}"#, 422, "unknown_hunt_group", Some("no_answer.id")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "extension", "id": "9999"}}"#, 422, "unknown_extension", Some("no_answer.id")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "external", "number": "1"}}"#, 422, "invalid_external_number", Some("no_answer.number")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "hunt_group", "id": "g"}}"#, 422, "hunt_group_loop", Some("no_answer")),
        c("POST", hg, r#"{"id": "g", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20}"#, 422, "missing_field", Some("no_answer")),
        c("PUT", format!("{hg}/sales"), r#"{"id": "other", "members": ["1001"], "strategy": "ring_all", "ring_secs": 20, "no_answer": {"type": "ivr", "id": "main"}}"#, 422, "path_mismatch", Some("id")),
        // Queues.
        c("POST", qu, r#"{"id": "q", "name": "Q", "strategy": "round_robin", "max_wait_secs": 60, "max_len": 0}"#, 422, "out_of_bounds", Some("max_len")),
        c("POST", qu, r#"{"id": "q", "name": "Q", "strategy": "round_robin", "max_wait_secs": 100000, "max_len": 5}"#, 422, "out_of_bounds", Some("max_wait_secs")),
        c("POST", qu, r#"{"id": "q", "name": "", "strategy": "round_robin", "max_wait_secs": 60, "max_len": 5}"#, 422, "invalid_text", Some("name")),
        c("POST", qu, r#"{"id": "q", "name": "Q", "strategy": "fifo", "max_wait_secs": 60, "max_len": 5}"#, 422, "invalid_value", Some("strategy")),
        c("POST", qu, r#"{"id": "q", "name": "Q", "strategy": "round_robin", "max_wait_secs": 60}"#, 422, "missing_field", Some("max_len")),
        c("POST", qu, r#"{"id": "q", "name": "Q", "strategy": "round_robin", "max_wait_secs": 1.5, "max_len": 5}"#, 422, "wrong_type", Some("max_wait_secs")),
        c("PUT", format!("{qu}/support"), r#"{"id": "other", "name": "Q", "strategy": "round_robin", "max_wait_secs": 60, "max_len": 5}"#, 422, "path_mismatch", Some("id")),
        c("GET", format!("{qu}/UPPER"), String::new(), 400, "invalid_id", Some("id")),
        // Agents.
        c("POST", ag, r#"{"extension": "1002", "state": "paused"}"#, 422, "missing_field", Some("pause_reason")),
        c("POST", ag, r#"{"extension": "1002", "state": "available", "pause_reason": "x"}"#, 422, "invalid_value", Some("pause_reason")),
        c("POST", ag, r#"{"extension": "1002", "state": "away"}"#, 422, "invalid_value", Some("state")),
        c("POST", ag, r#"{"extension": "1002", "state": "available", "skills": {"english": 101}}"#, 422, "out_of_bounds", Some("skills")),
        c("POST", ag, r#"{"extension": "1002", "state": "available", "skills": {"english": 300}}"#, 422, "invalid_value", Some("skills.english")),
        c("POST", ag, r#"{"extension": "1002", "state": "available", "skills": ["english"]}"#, 422, "wrong_type", Some("skills")),
        c("POST", ag, r#"{"extension": "1002", "state": "paused", "pause_reason": ""}"#, 422, "invalid_text", Some("pause_reason")),
        c("PUT", format!("{ag}/1001"), r#"{"extension": "1002", "state": "available"}"#, 422, "path_mismatch", Some("extension")),
        // Trunks.
        c("POST", tr, r#"{"id": "t", "address": "203.0.113.7", "max_concurrent_calls": 5}"#, 422, "invalid_address", Some("address")),
        c("POST", tr, r#"{"id": "t", "address": "203.0.113.7:0", "max_concurrent_calls": 5}"#, 422, "invalid_address", Some("address")),
        c("POST", tr, r#"{"id": "t", "address": "2001:db8::1:5060", "max_concurrent_calls": 5}"#, 422, "invalid_address", Some("address")),
        c("POST", tr, r#"{"id": "t", "max_concurrent_calls": 5}"#, 422, "missing_field", Some("address")),
        c("POST", tr, r#"{"address": "h:5060", "max_concurrent_calls": 5}"#, 422, "missing_field", Some("id")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060"}"#, 422, "missing_field", Some("max_concurrent_calls")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 1000001}"#, 422, "out_of_bounds", Some("max_concurrent_calls")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "transport": "sctp"}"#, 422, "invalid_value", Some("transport")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": ["192.0.2.1", "nonsense"]}"#, 422, "invalid_trusted_source", Some("trusted_sources[1]")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": ["192.0.2.1/16"]}"#, 422, "invalid_trusted_source", Some("trusted_sources[0]")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": ["0.0.0.0/0"]}"#, 422, "invalid_trusted_source", Some("trusted_sources[0]")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": ["192.0.2.1", "::ffff:192.0.2.1"]}"#, 422, "invalid_trusted_source", Some("trusted_sources[1]")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": "192.0.2.1"}"#, 422, "wrong_type", Some("trusted_sources")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "trusted_sources": ["203.0.113.2"]}"#, 409, "trusted_source_in_use", Some("trusted_sources[0]")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "failover": "nope"}"#, 422, "unknown_trunk", Some("failover")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "failover": "t"}"#, 422, "failover_loop", Some("failover")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "domain": "d.example"}}"#, 422, "missing_field", Some("registration.password")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "password": "p", "domain": "d.example", "expires_secs": 30}}"#, 422, "out_of_bounds", Some("registration.expires_secs")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "password": "p", "domain": "not a domain"}}"#, 422, "invalid_domain", Some("registration.domain")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "", "password": "p", "domain": "d.example"}}"#, 422, "invalid_text", Some("registration.username")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "password": "a\u0000b", "domain": "d.example"}}"#, 422, "invalid_text", Some("registration.password")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "password": "p", "domain": "d.example", "realm": "x"}}"#, 422, "unknown_field", Some("registration.realm")),
        c("POST", tr, r#"{"id": "t", "address": "h:5060", "max_concurrent_calls": 5, "registration": {"username": "u", "password": "p", "domain": "d.example", "password_set": true}}"#, 422, "unknown_field", Some("registration.password_set")),
        c("POST", tr, r#"{"id": "carrier", "address": "h:5060", "max_concurrent_calls": 5}"#, 409, "trunk_exists", Some("id")),
        c("PUT", format!("{tr}/carrier"), r#"{"id": "other", "address": "h:5060", "max_concurrent_calls": 5}"#, 422, "path_mismatch", Some("id")),
        c("PUT", format!("{tr}/nope"), r#"{"address": "h:5060", "max_concurrent_calls": 5}"#, 404, "unknown_trunk", Some("id")),
        c("GET", format!("{tr}/Bad"), String::new(), 400, "invalid_id", Some("id")),
        c("DELETE", format!("{tr}/nope"), String::new(), 404, "unknown_trunk", Some("id")),
        // Call settings and recording.
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"codecs": []}}}}"#), 422, "no_codecs", Some("calls.codecs")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"codecs": ["pcma", "pcma"]}}}}"#), 422, "duplicate_codec", Some("calls.codecs")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"codecs": ["g729"]}}}}"#), 422, "invalid_value", Some("calls.codecs[0]")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"recording": "sometimes"}}}}"#), 422, "invalid_value", Some("calls.recording")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"allow_other_codecs": "yes"}}}}"#), 422, "wrong_type", Some("calls.allow_other_codecs")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"outbound_trunk": "nope"}}}}"#), 422, "unknown_trunk", Some("calls.outbound_trunk")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"outbound_trunk": "Bad Id"}}}}"#), 422, "invalid_value", Some("calls.outbound_trunk")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"caller_id": "18001234"}}}}"#), 422, "caller_id_inbound_only", Some("calls.caller_id")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"caller_id": "02873009999"}}}}"#), 422, "unknown_caller_id", Some("calls.caller_id")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"caller_id": "028 7300"}}}}"#), 422, "invalid_caller_id", Some("calls.caller_id")),
        c("PUT", a, format!(r#"{{"name": "X", {Q}, "calls": {{"codec": ["pcmu"]}}}}"#), 422, "unknown_field", Some("calls.codec")),
        c("POST", "/v1/tenants", format!(r#"{{"id": "x", "name": "X", {Q}, "calls": {{"outbound_trunk": "carrier"}}}}"#), 422, "unknown_trunk", Some("calls.outbound_trunk")),
        c("PUT", format!("{n}/18001234"), format!(r#"{{{dest}, "recording": "maybe"}}"#), 422, "invalid_value", Some("recording")),
        // Tokens, registrations.
        c("POST", format!("{a}/tokens"), r#"{"id": "Bad!"}"#, 422, "invalid_value", Some("id")),
        c("POST", format!("{a}/tokens"), r#"{"id": "ci", "scope": "all"}"#, 422, "unknown_field", Some("scope")),
        c("POST", format!("{a}/tokens"), "{}", 422, "missing_field", Some("id")),
        c("DELETE", format!("{a}/tokens/Bad!"), String::new(), 400, "invalid_id", Some("id")),
        c("GET", "/v1/tenants/Nope/registrations", String::new(), 400, "invalid_id", Some("tenant")),
        // Cluster.
        c("POST", "/v1/cluster/learners", r#"{"id": 2, "raft_addr": "10.0.0.2:7000", "api_addr": "http://10.0.0.2:8080"}"#, 422, "invalid_value", Some("api_addr")),
        c("POST", "/v1/cluster/learners", r#"{"id": 2, "raft_addr": "nohost", "api_addr": "10.0.0.2:8080"}"#, 422, "invalid_value", Some("raft_addr")),
        c("POST", "/v1/cluster/learners", r#"{"id": "two", "raft_addr": "h:1", "api_addr": "h:2"}"#, 422, "wrong_type", Some("id")),
        c("POST", "/v1/cluster/learners", r#"{"id": 2, "raft_addr": "h:1"}"#, 422, "missing_field", Some("api_addr")),
        c("POST", "/v1/cluster/voters/two", String::new(), 400, "invalid_id", Some("id")),
        c("DELETE", "/v1/cluster/members/-1", String::new(), 400, "invalid_id", Some("id")),
    ]);
    cases
}

#[tokio::test]
async fn invalid_input_names_the_field_and_changes_nothing() {
    let h = Harness::seeded().await;
    let before = h.cluster.state();
    let mut wrong = Vec::new();
    for Case {
        method,
        path,
        body,
        status,
        code,
        field,
    } in cases()
    {
        let ct = (!body.is_empty() || method != "GET" && method != "DELETE")
            .then_some("application/json");
        let r = h
            .raw(method, &path, Some(OPERATOR), ct, body.as_bytes())
            .await;
        let got = (
            r.status.as_u16(),
            r.body["error"].as_str(),
            r.body["field"].as_str(),
        );
        let message = r.body["message"].as_str().unwrap_or_default();
        if got != (status, Some(code), field) || message.is_empty() {
            wrong.push(format!("{method} {path} {body}\n  -> {}", r.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(h.cluster.state(), before);
}

#[tokio::test]
async fn bodies_must_be_json() {
    let h = Harness::seeded().await;
    let body = serde_json::to_vec(&tenant("gamma")).expect("encode");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        h.raw("POST", "/v1/tenants", Some(OPERATOR), ct, &body)
            .await
            .error(415, "unsupported_media_type", None);
    }
    h.raw(
        "POST",
        "/v1/tenants",
        Some(OPERATOR),
        Some("application/json; charset=utf-8"),
        &body,
    )
    .await
    .ok(201);
    let huge = vec![b' '; 3 << 20];
    let r = h
        .raw(
            "POST",
            "/v1/tenants",
            Some(OPERATOR),
            Some("application/json"),
            &huge,
        )
        .await;
    r.error(413, "unreadable_body", None);
    // Invalid UTF-8 inside a string.
    h.raw(
        "POST",
        "/v1/tenants",
        Some(OPERATOR),
        Some("application/json"),
        b"{\"id\": \"\xff\"}",
    )
    .await
    .error(400, "malformed_json", None);
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let h = Harness::seeded().await;
    for (method, path) in ROUTES {
        for token in [None, Some("not-a-token")] {
            let r = h
                .raw(method, path, token, Some("application/json"), b"{}")
                .await;
            r.error(401, "unauthorized", None);
            let challenge = r
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok());
            assert!(
                challenge.is_some_and(|c| c.starts_with("Bearer")),
                "{method} {path}"
            );
        }
    }
    // Only the Bearer scheme carries a token, whatever its case.
    for (scheme, status) in [
        ("Basic", StatusCode::UNAUTHORIZED),
        ("bearer", StatusCode::OK),
    ] {
        let r = h
            .app
            .clone()
            .oneshot(
                Request::get("/v1/tenants")
                    .header("authorization", format!("{scheme} {OPERATOR}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(r.status(), status, "{scheme}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::seeded().await;
    h.op("GET", "/v1/nothing", Value::Null)
        .await
        .error(404, "no_such_route", None);
    h.op("PATCH", "/v1/tenants/acme", json!({}))
        .await
        .error(405, "method_not_allowed", None);
}

/// Valid bodies for every write route, to be mutated.
fn writes() -> Vec<(&'static str, &'static str, Value)> {
    let learner = json!({"id": 2, "raft_addr": "10.0.0.2:7000", "api_addr": "10.0.0.2:8080"});
    vec![
        ("POST", "/v1/tenants", tenant("gamma")),
        ("PUT", "/v1/tenants/acme", tenant("acme")),
        ("POST", "/v1/tenants/acme/numbers", number("18009999")),
        (
            "PUT",
            "/v1/tenants/acme/numbers/18001234",
            number("18001234"),
        ),
        ("POST", "/v1/tenants/acme/extensions", extension("3001")),
        ("PUT", "/v1/tenants/acme/extensions/1001", extension("1001")),
        ("POST", "/v1/tenants/acme/hunt-groups", hunt_group("night")),
        (
            "PUT",
            "/v1/tenants/acme/hunt-groups/sales",
            hunt_group("sales"),
        ),
        ("POST", "/v1/tenants/acme/queues", queue("vip")),
        ("PUT", "/v1/tenants/acme/queues/support", queue("support")),
        ("POST", "/v1/tenants/acme/agents", agent("1002")),
        ("PUT", "/v1/tenants/acme/agents/1001", agent("1001")),
        ("POST", "/v1/tenants/acme/tokens", json!({"id": "ci"})),
        ("POST", "/v1/cluster/learners", learner),
        (
            "POST",
            "/v1/tenants/acme/trunks",
            with(trunk("new"), json!({"registration": registration()})),
        ),
        (
            "PUT",
            "/v1/tenants/acme/trunks/carrier",
            with(
                trunk("carrier"),
                json!({"trusted_sources": ["203.0.113.1"], "transport": "tls"}),
            ),
        ),
    ]
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!("Bad Id")),
        Just(json!("x".repeat(70_000))),
        Just(json!([[[[]]]])),
        Just(json!({"type": "extension"})),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a field is replaced with, dropped, or added, every write answers a
    /// 2xx or a 4xx with the error shape: never a 5xx, never a panic.
    #[test]
    fn mutated_bodies_never_fail_the_server(
        route in 0usize..16,
        key_pick in any::<prop::sample::Index>(),
        action in 0u8..3,
        value in odd_value(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let h = Harness::seeded().await;
            let (method, path, mut body) = writes().swap_remove(route);
            if let Some(obj) = body.as_object_mut() {
                let keys: Vec<String> = obj.keys().cloned().collect();
                let key = key_pick.get(&keys).clone();
                match action {
                    0 => { obj.insert(key, value); }
                    1 => { obj.remove(&key); }
                    _ => { obj.insert("unexpected".into(), value); }
                }
            }
            for bytes in [serde_json::to_vec(&body).expect("encode"), garbage.clone()] {
                let r = h.raw(method, path, Some(OPERATOR), Some("application/json"), &bytes).await;
                let status = r.status.as_u16();
                prop_assert!(status < 500, "{method} {path}: {status} {}", r.body);
                if status >= 400 {
                    prop_assert!(r.body["error"].is_string() && r.body["message"].is_string(), "{}", r.body);
                }
            }
            Ok(())
        })?;
    }
}
