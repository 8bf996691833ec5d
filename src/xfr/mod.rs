//! Zone transfers out: AXFR (RFC 5936) streamed from the snapshot being served.

pub mod axfr;
