//! SIP: message codec, transactions, transports, digest authentication.
